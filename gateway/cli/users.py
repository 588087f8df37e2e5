"""`energy-gateway users add|list|sites|disable|reset-password`: API and portal logins, in the registry database."""

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
    site: Annotated[list[str] | None, typer.Option("--site", help="limit an engineer to this site id (repeat for "
                                                                  "several); none: every site")] = None,
) -> None:
    """Add a login.

    The password comes from --password-env or a prompt; with neither, one is generated and printed once. An
    account_manager login whose --manager code the registry does not know creates that account manager (--name,
    --email); one it knows is linked as it is.
    """
    password, shown = _new_password(password_env)
    try:
        _auth(config).add_user(username, password, role, customer=customer, manager=manager, actor="cli",
                               create_manager=True, manager_name=name, manager_email=email, sites=site or [])
    except AuthError as exc:
        typer.echo(f"users add {username}: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps({"username": username, "role": role, "customer": customer, "manager": manager,
                           **({"sites": sorted(set(site))} if site else {}),
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
    auth = _auth(config)
    for u in auth.list_users():
        typer.echo(json.dumps({"username": u.username, "role": u.role, "customer": u.customer, "manager": u.manager,
                               "sites": auth.sites_of(u.username), "disabled": u.disabled,
                               "created_at": u.created_at.isoformat()}))


@app.command()
def sites(
    config: Config,
    username: Annotated[str, typer.Argument()],
    set_: Annotated[list[str] | None, typer.Option("--set", help="the site ids the engineer is limited to (repeat "
                                                                 "--set for several)")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="lift the limit: the engineer sees every site")] = False,
) -> None:
    """Show an engineer's sites, or limit it to others (--set CODE ...), or lift the limit (--clear); audited."""
    auth = _auth(config)
    if set_ or clear:
        if set_ and clear:
            typer.echo("users sites: give --set or --clear, not both", err=True)
            raise typer.Exit(2)
        try:
            auth.set_sites(username, set_ or [], actor="cli")
        except AuthError as exc:
            typer.echo(f"users sites {username}: {exc}", err=True)
            raise typer.Exit(2) from None
    elif username not in {u.username for u in auth.list_users()}:
        typer.echo(f"users sites: no user {username!r}", err=True)
        raise typer.Exit(2)
    typer.echo(json.dumps({"username": username, "sites": auth.sites_of(username)}))


@app.command()
def disable(config: Config, username: Annotated[str, typer.Argument()]) -> None:
    """Disable a login: it can no longer log in, and its tokens and sessions stop working at once."""
    try:
        _auth(config).disable_user(username, actor="cli")
    except AuthError as exc:
        typer.echo(f"users disable: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{username} disabled")
