"""`energy-gateway users add|list|disable|reset-password`: API and portal logins, kept in the registry database."""

from __future__ import annotations

import getpass
import json
import os
import secrets
from pathlib import Path
from typing import Annotated

import typer

from gateway.auth import ROLES, AuthError, AuthService
from gateway.config import ConfigError, load_config

app = typer.Typer(no_args_is_help=True, add_completion=False)
Config = Annotated[Path, typer.Option("--config", "-c", help="gateway.toml")]


def _auth(config: Path) -> AuthService:
    from gateway.runtime import StartupError, open_registry

    try:
        cfg = load_config(config, secrets={"database"})  # users need the registry, not the signing key
        db = open_registry(cfg, os.environ)  # migrated, and in step with the config's customers
        AuthService.create_tables(db.kw["bind"])
    except (ConfigError, StartupError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    # The CLI never issues tokens: a throwaway key keeps AuthService whole without the gateway's secret.
    return AuthService(db, secrets.token_urlsafe(32))


@app.command()
def add(
    config: Config,
    username: Annotated[str, typer.Argument(help="login name")],
    role: Annotated[str, typer.Option(help=" | ".join(ROLES))],
    customer: Annotated[str | None, typer.Option(help="customer id (role customer)")] = None,
    manager: Annotated[str | None, typer.Option(help="account-manager code (role account_manager); an unknown "
                                                     "code is created")] = None,
    name: Annotated[str | None, typer.Option(help="the new account manager's name (default: its code)")] = None,
    email: Annotated[str | None, typer.Option(help="the new account manager's e-mail")] = None,
    password_env: Annotated[str | None, typer.Option(help="read the password from this environment variable")]
    = None,
) -> None:
    """Add a login.

    The password comes from --password-env or a prompt; with neither, one is generated and printed once. An
    account_manager login whose --manager code the registry does not know creates that account manager (--name,
    --email); one it knows is linked as it is.
    """
    password, shown = _new_password(password_env)
    try:
        _auth(config).add_user(username, password, role, customer=customer, manager=manager, actor="cli",
                               create_manager=True, manager_name=name, manager_email=email)
    except AuthError as exc:
        typer.echo(f"users add {username}: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps({"username": username, "role": role, "customer": customer, "manager": manager,
                           **({"password": shown} if shown else {})}))


def _new_password(password_env: str | None) -> tuple[str, str | None]:
    """The password from --password-env, a prompt, or generated (and then shown once): (password, shown)."""
    if password_env:
        password = os.environ.get(password_env, "")
        if not password:
            typer.echo(f"--password-env: environment variable {password_env} is not set", err=True)
            raise typer.Exit(2)
        return password, None
    if os.isatty(0):
        return getpass.getpass("password: "), None
    password = secrets.token_urlsafe(12)
    return password, password


@app.command("reset-password")
def reset_password(
    config: Config,
    username: Annotated[str, typer.Argument()],
    password_env: Annotated[str | None, typer.Option(help="read the new password from this environment variable")]
    = None,
) -> None:
    """Set a new password for a login (an admin's reset): its tokens and portal sessions end at once.

    The password comes from --password-env or a prompt; with neither, one is generated and printed once, to hand
    over out of band.
    """
    password, shown = _new_password(password_env)
    try:
        _auth(config).reset_password(username, password, actor="cli")
    except AuthError as exc:
        typer.echo(f"users reset-password {username}: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps({"username": username, "reset": True, **({"password": shown} if shown else {})}))


@app.command("list")
def list_(config: Config) -> None:
    """Every login, one JSON object a line."""
    for u in _auth(config).list_users():
        typer.echo(json.dumps({"username": u.username, "role": u.role, "customer": u.customer, "manager": u.manager,
                               "disabled": u.disabled, "created_at": u.created_at.isoformat()}))


@app.command()
def disable(config: Config, username: Annotated[str, typer.Argument()]) -> None:
    """Disable a login: it can no longer log in, and its tokens and sessions stop working at once."""
    try:
        _auth(config).disable_user(username, actor="cli")
    except AuthError as exc:
        typer.echo(f"users disable: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{username} disabled")
