"""`energy-gateway registry import|export`: onboarding accounts in bulk from a spreadsheet, and back.

The engine is `gateway/usecases/registry_import.py`; this module is its command line.

One sheet per kind (an XLSX workbook's sheets, or CSV files named after the kind: customers.csv, sites.csv, ...),
in the order they depend on each other: managers, customers, sites, meters, contracts, equipment, contacts. Each
row is checked with the registry API's own models and rules (`gateway.api.schemas.registry`,
`gateway.usecases.registry.contract_problems`) and against the other rows and the registry; every error is reported
by sheet, row and column. An import is all or nothing: with any error, or with --dry-run, nothing is changed.
Rows are matched by their key (a code; a contract by customer and valid_from; equipment and contacts by customer and
name): a new key is created, a known one updated where it differs, so importing the same file twice changes nothing,
and `export` writes the same layout, so a manager can round-trip a spreadsheet.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

app = typer.Typer(no_args_is_help=True, add_completion=False)
Config = Annotated[Path, typer.Option("--config", "-c", help="gateway.toml")]


def _registry(config: Path) -> tuple[sessionmaker[Session], Any]:
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
    return db, AuthService(db, secrets.token_urlsafe(32))


def _paths(files: list[Path]) -> Iterator[Path]:
    for f in files:
        if f.is_dir():
            yield from sorted(p for p in f.iterdir() if p.suffix.lower() == ".csv")
        else:
            yield f


@app.command("import")
def import_(
    config: Config,
    files: Annotated[list[Path], typer.Argument(help="FILE.xlsx, or CSV files named by kind (customers.csv ...), "
                                                     "or a folder of them")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="check every row and report; change nothing")] = False,
) -> None:
    """Import accounts: every row's error by sheet, row and column; nothing changes unless every row holds.

    Prints one line per error, then a JSON summary (created, updated, unchanged per sheet). Exit 1 on errors.
    """
    from gateway.progress import progress
    from gateway.usecases.registry_import import KINDS, SheetError, import_rows, read_sheets

    try:
        rows = read_sheets(_paths(files))
    except SheetError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    db, auth = _registry(config)
    with progress("import", sum(len(r) for r in rows.values())) as bar:
        out = import_rows(db, {kind: bar.tracked(r) for kind, r in rows.items()}, dry_run=dry_run)
    for p in out.problems:
        typer.echo(str(p))
    if out.applied and any(out.created[k] + out.updated[k] for k in KINDS):
        auth.audit(f"cli:{getpass.getuser()}", "registry.import", ", ".join(str(f) for f in files),
                   json.dumps({"created": out.created, "updated": out.updated}), None)
    typer.echo(json.dumps({**out.summary(), "dry_run": dry_run}, ensure_ascii=False))
    if out.problems:
        raise typer.Exit(1)


@app.command("export")
def export(
    config: Config,
    out: Annotated[Path, typer.Option("--out", "-o", help="FILE.xlsx, or a folder for one CSV per kind")],
) -> None:
    """Export the registry in the import's layout."""
    from gateway.usecases.registry_import import export_rows, write_sheets

    db, _ = _registry(config)
    written = write_sheets(export_rows(db), out)
    typer.echo(json.dumps({"written": [str(p) for p in written]}))
