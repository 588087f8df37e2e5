"""`energy-gateway outbox`: look into the durable outbox, and put dead-lettered readings back in line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from gateway.config import GatewayConfig
    from gateway.outbox import Outbox

app = typer.Typer(no_args_is_help=True, add_completion=False)
Config = Annotated[Path, typer.Option("--config", "-c", help="gateway.toml")]


def _outbox(config: Path) -> tuple[GatewayConfig, Outbox]:
    from gateway.config import ConfigError, load_config
    from gateway.outbox import Outbox

    try:
        cfg = load_config(config, secrets=())  # no secret is needed to read the outbox
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    path = cfg.data_path(cfg.outbox.path)
    if not path.exists():
        typer.echo(f"{path}: no outbox yet (the gateway has not run with this config)", err=True)
        raise typer.Exit(1)
    return cfg, Outbox(path, max_rows=cfg.outbox.max_rows, max_age_s=cfg.outbox.max_age_s, policy=cfg.outbox.policy)


@app.command()
def status(config: Config) -> None:
    """Readings waiting, age of the oldest, drops per reason and dead letters, as JSON."""
    _, ob = _outbox(config)
    typer.echo(json.dumps({"path": str(ob.path), "waiting": ob.depth, "oldest_age_s": round(ob.oldest_age_s(), 1),
                           "dropped_by_reason": ob.drops, "dead_letters": len(ob.dead_letters())}))


@app.command("dead-letters")
def dead_letters(config: Config, limit: Annotated[int, typer.Option(min=1)] = 50) -> None:
    """The readings the store refused, with the store's reason, one JSON object a line."""
    _, ob = _outbox(config)
    for reading, reason in ob.dead_letters()[:limit]:
        typer.echo(json.dumps({"device": reading.device, "point": reading.point, "value": reading.value,
                               "quality": str(reading.quality), "source_ts": reading.source_time.isoformat(),
                               "reason": reason}, ensure_ascii=False))


@app.command()
def requeue(config: Config) -> None:
    """Move every dead-lettered reading back into the outbox (after fixing what made the store refuse it)."""
    _, ob = _outbox(config)
    n = ob.requeue_dead_letters()
    typer.echo(f"{n} readings moved back into the outbox; the running gateway delivers them")
