"""`energy-gateway backup` and `restore`: the gateway's own files, copied while it runs, put back when it is stopped.

The logic is in gateway/backup.py; this module is its command line and imports it only when a command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from gateway.config import GatewayConfig

app = typer.Typer(no_args_is_help=True, add_completion=False)
Config = Annotated[Path, typer.Option("--config", "-c", help="gateway.toml")]


def _config(config: Path, tool: str) -> GatewayConfig:
    from gateway.config import ConfigError, load_config

    try:
        return load_config(config, secrets=())  # files only: no store, database or API secret is needed
    except ConfigError as exc:
        typer.echo(f"{tool}: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command("backup")
def backup(config: Config,
           out: Annotated[Path, typer.Option("--out", help="A new (or empty) folder for the backup")]) -> None:
    """Copy the embedded store, the outbox and the SQLite registry into a folder; safe while the gateway runs."""
    from gateway.backup import BackupError
    from gateway.backup import backup as take

    cfg = _config(config, "backup")
    try:
        manifest = take(cfg, out)
    except (BackupError, OSError) as exc:
        typer.echo(f"backup: {exc}", err=True)
        raise typer.Exit(1) from None
    for part, why in manifest["skipped"].items():
        typer.echo(f"backup: {part} not included: {why}", err=True)
    typer.echo(json.dumps({"out": str(out), **{k: manifest[k] for k in ("created", "registry_revision", "files")}},
                          ensure_ascii=False))


@app.command("restore")
def restore(config: Config,
            source: Annotated[Path, typer.Option("--from", help="A folder made by `energy-gateway backup`")]) -> None:
    """Put a backup in place of the config's files; refused while a gateway runs on them, or for another schema."""
    from gateway.backup import BackupError
    from gateway.backup import restore as put_back

    cfg = _config(config, "restore")
    try:
        result = put_back(cfg, source)
    except (BackupError, OSError) as exc:
        typer.echo(f"restore: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(result, ensure_ascii=False))
