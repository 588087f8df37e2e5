"""`energy-gateway tariffs import|list`: new tariff versions from a file, and every tariff's versions.

The engine is `gateway/usecases/tariffs.py`; the rules a file must keep (validation, no overlap, no gap, no
rewritten history) are `crm_bridge/tariffs/versions.py`.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)
Config = Annotated[Path, typer.Option("--config", "-c", help="gateway.toml")]


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
    from gateway.cli.registry import _registry

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
    from gateway.cli.registry import _registry
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
