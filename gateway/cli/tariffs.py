"""`energy-gateway tariffs import|list`: new tariff versions from a file, and every tariff's versions.

The engine is `gateway/usecases/tariffs.py`; the rules a file must keep (validation, no overlap, no gap, no
rewritten history) are `crm_bridge/tariffs/versions.py`.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

app = typer.Typer(no_args_is_help=True, add_completion=False)
Config = Annotated[Path, typer.Option("--config", "-c", help="gateway.toml")]


def _registry(config: Path) -> tuple[sessionmaker[Session], Any]:
    """The registry (migrated, seeded from the config) and an auth service for its audit log; exit 1 naming why not."""
    from gateway.auth import AuthService
    from gateway.config import ConfigError, load_config
    from gateway.runtime import StartupError, open_registry

    try:
        cfg = load_config(config, secrets={"database"})
        db = open_registry(cfg, os.environ)
        AuthService.create_tables(db.kw["bind"])
    except (ConfigError, StartupError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    # The CLI never issues tokens: a throwaway key keeps AuthService whole without the gateway's secret.
    return db, AuthService(db, secrets.token_urlsafe(32))


@app.command("import")
def import_(
    config: Config,
    file: Annotated[Path, typer.Argument(help="a tariff TOML file in the shipped layout (crm_bridge/data/tariffs)")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="check the file against the history; change nothing")]
    = False,
) -> None:
    """Import a tariff file's new versions into the registry.

    Versions already on file unchanged are skipped, so importing twice changes nothing. Exit 2 for a file that does
    not validate (each key path and why), exit 1 for versions that overlap, leave a gap or rewrite history.
    """
    from gateway.usecases.desk import Actor
    from gateway.usecases.errors import BadInput, Conflict
    from gateway.usecases.tariffs import Tariffs

    try:
        text = file.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        typer.echo(f"{file}: cannot be read ({exc})", err=True)
        raise typer.Exit(2) from None
    db, auth = _registry(config)
    actor = Actor(f"cli:{getpass.getuser()}", "admin", None, None)
    with db() as s:
        try:
            out = Tariffs(s, auth.audit).import_text(text, file.name, actor, dry_run=dry_run)
        except BadInput as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None
        except Conflict as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
    typer.echo(out.model_dump_json())


@app.command("list")
def list_(
    config: Config,
    tariff: Annotated[str | None, typer.Option("--tariff", help="only this tariff id")] = None,
) -> None:
    """Every tariff with its versions (valid_from, valid_to, shipped or registry), one JSON object a line."""
    from gateway.usecases.errors import NotFound
    from gateway.usecases.tariffs import Tariffs

    db, auth = _registry(config)
    with db() as s:
        book = Tariffs(s, auth.audit)
        try:
            rows = [book.summary(tariff)] if tariff else book.all()
        except NotFound as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
    for r in rows:
        typer.echo(json.dumps(r.model_dump(mode="json"), ensure_ascii=False))
