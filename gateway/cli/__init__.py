"""The one command line: `energy-gateway`."""

from __future__ import annotations

import importlib
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main
from typer.core import TyperGroup

if TYPE_CHECKING:
    from gateway.collector_role import CollectorRole
    from gateway.runtime import Gateway

# Sub-commands owned by other modules, each exposing a Typer `app`. They are imported when used (or asked for
# their own --help), never to list them: some import pandas, asyncua or pymodbus, which take a second to load.
SUBAPPS: dict[str, tuple[str, str]] = {
    "forecast": ("gateway.cli.forecast", "Load forecasting: backtests."),
    "modbus": ("gateway.cli.modbus", "Modbus tools: probe a device's registers."),
    "opcua": ("gateway.cli.opcua", "OPC UA tools: browse a server, in a terminal or a desktop window."),
    "users": ("gateway.cli.users", "Manage logins: add, list, disable."),
    "jobs": ("gateway.cli.jobs", "Scheduled jobs: list them with their last and next runs, run one now."),
    "registry": ("gateway.cli.registry", "The registry in bulk: import and export customers, sites, meters, "
                 "contracts, equipment, contacts, managers (XLSX or CSV)."),
    "report": ("gateway.cli.report",
               "Reports: a customer's month, its daily brief, a manager's portfolio (PDF, HTML, XLSX)."),
    "export": ("gateway.cli.export", "Exports such as Green Button XML."),
    "outbox": ("gateway.cli.outbox", "The durable outbox: status, dead letters, requeue."),
    "tariffs": ("gateway.cli.tariffs", "Tariffs: import a file as new versions, list every tariff's versions."),
}
# The commands that run until stopped: their stop signals are handled from the first line of main().
LONG_RUNNING = ("run", "demo")


class LazyGroup(TyperGroup):
    """The top-level group: a sub-app's module is imported when the sub-command is resolved, not to list it."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(name for name in SUBAPPS if name not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands or cmd_name not in SUBAPPS:
            return super().get_command(ctx, cmd_name)
        module, help_text = SUBAPPS[cmd_name]
        if self._listing:
            return TyperGroup(name=cmd_name, help=help_text)  # a listing needs the name and the line of help only
        holder = typer.Typer()
        holder.add_typer(importlib.import_module(module).app, name=cmd_name, help=help_text)
        cmd = typer.main.get_group(holder).commands[cmd_name]
        self.commands[cmd_name] = cmd
        return cmd

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if not args or args[0] in self.commands or args[0] in SUBAPPS:
            return super().resolve_command(ctx, args)
        # An unknown name: "Did you mean ...?" looks among all names, so show it the sub-apps without importing.
        self._listing = True
        loaded = dict(self.commands)
        self.commands.update({name: self.get_command(ctx, name) for name in SUBAPPS if name not in loaded})
        try:
            return super().resolve_command(ctx, args)
        finally:
            self._listing = False
            self.commands.clear()
            self.commands.update(loaded)


app = typer.Typer(
    name="energy-gateway",
    help="Industrial energy-monitoring and customer-service gateway.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=LazyGroup,
)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Path to gateway.toml")]

# Top-level commands kept in their own module (light: gateway.backup loads only when one runs).
from gateway.cli.backup import backup as _backup  # noqa: E402
from gateway.cli.backup import restore as _restore  # noqa: E402

app.command("backup")(_backup)
app.command("restore")(_restore)


def _fail(exc: Exception, code: int = 1) -> typer.Exit:
    typer.echo(str(exc), err=True)
    return typer.Exit(code)


@app.command("check-config")
def check_config(config: ConfigOpt) -> None:
    """Validate gateway.toml; every error names the file, the key path and why."""
    from gateway.config import ConfigError, load_config

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        raise _fail(exc) from None
    typer.echo(
        f"{config}: OK ({len(cfg.customers)} customers, {len(cfg.sites)} sites, {len(cfg.meters)} meters, "
        f"{len(cfg.devices)} devices, store {cfg.store.type})"
    )


async def _run_until_stopped(gw: Gateway | CollectorRole) -> None:
    import asyncio
    import logging

    from gateway.lifecycle import stop_signals

    stop = asyncio.Event()
    stop_signals.attach(stop)  # a signal during start-up stopped the process already; from here one flushes
    try:
        await gw.run(stop, on_ready=lambda: logging.getLogger("gateway").info("gateway %s running",
                                                                                gw.config.gateway.name))
    finally:
        stop_signals.detach()


class Role(StrEnum):
    ALL = "all"
    COLLECTOR = "collector"


@app.command()
def run(
    config: ConfigOpt,
    role: Annotated[Role | None, typer.Option(
        help="all: collectors, pipeline, scheduler and API (as the config switches them); collector: only the "
             "meters -> outbox -> store path, with /metrics, /health and /ready, without the web stack. "
             "Default: the config's gateway.role")] = None,
) -> None:
    """Production: collectors, pipeline, scheduler and API until SIGTERM (which flushes and exits cleanly)."""
    import asyncio
    import os

    from gateway.config import ALL_SECRETS, ConfigError, check_secrets, load_config
    from gateway.logs import setup_logging
    from gateway.runtime import StartupError

    try:
        cfg = load_config(config, secrets=())
        if (role or Role(cfg.gateway.role)) is Role.COLLECTOR:
            from gateway.collector_role import CollectorRole

            check_secrets(cfg, config, os.environ, {"store", "devices"})  # no API key, database or notify secret
            setup_logging(cfg)
            gw: Gateway | CollectorRole = CollectorRole.from_config(cfg)
        else:
            from gateway.runtime import Gateway

            check_secrets(cfg, config, os.environ, ALL_SECRETS)
            setup_logging(cfg)
            gw = Gateway.from_config(cfg)
            from gateway.jobs import register_jobs

            register_jobs(gw)
        asyncio.run(_run_until_stopped(gw))
    except (ConfigError, StartupError) as exc:
        raise _fail(exc) from None
    typer.echo(json.dumps({k: v for k, v in gw.pipeline.stats().items() if k != "last_error"}))


@app.command()
def collect(
    config: ConfigOpt,
    once: Annotated[bool, typer.Option("--once", help="Poll every configured point once and exit")] = False,
) -> None:
    """One poll of every configured point, printed as JSON lines (nothing is stored)."""
    import asyncio

    from gateway.config import ConfigError, load_config
    from gateway.directory import Directory
    from gateway.logs import setup_logging
    from gateway.runtime import build_collectors
    from gateway.tagger import Tagger

    if not once:
        raise _fail(ValueError("only --once is supported here; `energy-gateway run` collects continuously"), 2)
    try:
        cfg = load_config(config, secrets={"devices"})  # the devices' passwords; no store, database or API key
    except ConfigError as exc:
        raise _fail(exc) from None
    setup_logging(cfg)
    tagger = Tagger(Directory.from_config(cfg).tags)

    async def poll() -> int:
        n = 0
        for c in build_collectors(cfg):
            for r in tagger(await c.poll_once()):
                typer.echo(json.dumps({
                    "device": r.device, "point": r.point, "value": r.value, "unit": r.unit,
                    "quality": str(r.quality), "source_ts": r.source_time.isoformat(),
                    "gateway_ts": r.gateway_time.isoformat(), "customer": r.customer, "site": r.site,
                    "meter": r.meter,
                }, ensure_ascii=False))
                n += 1
        return n

    asyncio.run(poll())


@app.command()
def demo(
    duration: Annotated[float | None, typer.Option(help="Exit by itself after S seconds")] = None,
    port: Annotated[int, typer.Option(help="API/portal port on 127.0.0.1 (0: any free port)")] = 8080,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="State and generated gateway.toml")] = Path(
        "demo-data"
    ),
    smtp: Annotated[str | None, typer.Option(
        "--smtp", help="HOST:PORT of an SMTP server for every notification of the demo's users (no TLS, no login)")]
    = None,
) -> None:
    """Everything on embedded defaults with simulated Modbus and OPC UA meters on loopback."""
    import asyncio

    from gateway.config import ConfigError
    from gateway.demo.run import prepare_demo, run_demo
    from gateway.logs import setup_logging
    from gateway.runtime import StartupError

    setup_logging(level="WARNING")
    try:
        prepared = prepare_demo(data_dir, port, smtp)
        setup_logging(prepared.gateway.config)
        summary = asyncio.run(run_demo(prepared, duration))
    except (ConfigError, StartupError) as exc:
        raise _fail(exc) from None
    typer.echo(json.dumps(summary))


def main() -> None:
    if sys.argv[1:2] and sys.argv[1] in LONG_RUNNING:
        from gateway.lifecycle import StopRequested, stop_signals

        stop_signals.install()  # first of all: a SIGTERM while the heavy modules load is a clean stop
        try:
            app()
        except StopRequested as exc:
            print(exc, file=sys.stderr)
            raise SystemExit(0) from None
        return
    app()


if __name__ == "__main__":
    main()
