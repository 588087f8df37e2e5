"""`energy-gateway jobs`: the scheduled jobs with their last and next runs, and running one of them now."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer

if TYPE_CHECKING:
    from gateway.runtime import Gateway

app = typer.Typer(no_args_is_help=True, add_completion=False)
Config = Annotated[Path, typer.Option("--config", "-c", help="gateway.toml")]


@contextlib.contextmanager
def _gateway(config: Path) -> Iterator[Gateway]:
    """The gateway of `config` with its jobs registered (nothing started), closed afterwards."""
    from gateway.config import ConfigError, load_config
    from gateway.jobs import register_jobs
    from gateway.logs import setup_logging
    from gateway.runtime import Gateway, StartupError

    try:
        # The jobs read the store and the registry and may notify; they poll no device and serve no API.
        cfg = load_config(config, secrets={"store", "database", "notify"})
        setup_logging(cfg)
        gw = Gateway.from_config(cfg)
    except (ConfigError, StartupError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    try:
        register_jobs(gw)
        yield gw
    finally:
        gw.store.close()
        gw.outbox.close()


def _when(ts: float | None, tz: ZoneInfo) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds")


def _schedule(trigger: str, args: dict[str, Any]) -> str:
    """A job's schedule as written in gateway/jobs.py: `interval minutes=5`, `cron hour=21 minute=30`."""
    return " ".join([trigger, *(f"{k}={v}" for k, v in args.items())])


def job_rows(gw: Gateway) -> list[dict[str, Any]]:
    """Every registered job with its schedule, last run and outcome, and next run (from the scheduler's state file).

    The next run is known only while a scheduler process runs on this machine with this data folder; otherwise
    it is None and `scheduled` is False.
    """
    from gateway.scheduler import read_state, scheduler_alive

    path = gw.scheduler.state_path
    state = read_state(path) if path is not None else {}
    alive = scheduler_alive(state)
    tz = ZoneInfo(gw.config.gateway.timezone)
    rows = []
    for spec in gw.scheduler.specs:
        entry = state.get("jobs", {}).get(spec.name, {})
        rows.append({
            "name": spec.name,
            "schedule": _schedule(spec.trigger, spec.trigger_args),
            "description": spec.description,
            "last_run": _when(entry.get("last_run"), tz),
            "last_outcome": entry.get("outcome"),
            "next_run": _when(entry.get("next_run"), tz) if alive else None,
            "scheduled": alive,
        })
    return rows


@app.command("list")
def list_jobs(
    config: Config,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per job")] = False,
) -> None:
    """The scheduled jobs: schedule, last run and its outcome, next run (while the scheduler process runs)."""
    with _gateway(config) as gw:
        rows = job_rows(gw)
        role = gw.config.gateway.run_scheduler
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("job", "schedule", "last run", "next run", "what it does")
    for row in rows:
        last = f"{row['last_run']} ({row['last_outcome']})" if row["last_run"] else "never"
        table.add_row(row["name"], row["schedule"], last, row["next_run"] or "-", row["description"])
    console = Console(width=160)
    console.print(table)
    if not role:
        console.print("This process has the scheduler role off (gateway.run_scheduler = false): it runs no jobs.")
    elif not any(r["scheduled"] for r in rows):
        console.print("No scheduler is running with this data folder: next runs are known once `run` has started.")


@app.command("run")
def run_job(config: Config,
            name: Annotated[str, typer.Argument(help="The job's name, as `jobs list` shows it")]) -> None:
    """Run one job now, in this process; its outcome is recorded as the job's last run."""
    import time

    with _gateway(config) as gw:
        names = [s.name for s in gw.scheduler.specs]
        if name not in names:
            typer.echo(f"jobs run: no job {name!r}; the jobs are: {', '.join(names)}", err=True)
            raise typer.Exit(2)
        started = time.monotonic()
        try:
            result = gw.scheduler.run_now(name)
        except Exception as exc:  # noqa: BLE001 - any failure of the job is its outcome, reported in one line
            reason = (str(exc) or type(exc).__name__).strip().splitlines()[0]
            typer.echo(f"jobs run: {name} failed: {reason}", err=True)
            raise typer.Exit(1) from None
    typer.echo(json.dumps({"job": name, "outcome": "ok", "duration_s": round(time.monotonic() - started, 3),
                           "result": _summary(result)}, ensure_ascii=False, default=str))


def _summary(result: Any) -> Any:
    """What a job returned, short enough for one line: small values as they are, collections by their size."""
    if result is None or isinstance(result, (bool, int, float, str)):
        return result
    if isinstance(result, (list, tuple, set, dict)):
        return {"count": len(result)} if len(result) > 20 else result
    return str(result)
