"""The one command line: `energy-gateway`."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from gateway.config import ConfigError, load_config

app = typer.Typer(
    name="energy-gateway",
    help="Industrial energy-monitoring and customer-service gateway.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Path to gateway.toml")]

# Sub-commands owned by other modules; each exposes a Typer `app`.
_SUBAPPS = {
    "forecast": ("gateway.cli_forecast", "Load forecasting: backtests."),
    "modbus": ("gateway.cli_modbus", "Modbus tools: probe a device's registers."),
    "opcua": ("gateway.cli_opcua", "OPC UA tools: browse a server."),
    "users": ("gateway.cli_users", "Manage logins: add, list, disable."),
    "report": ("gateway.cli_report", "Customer and portfolio reports."),
    "export": ("gateway.cli_export", "Exports such as Green Button XML."),
    "outbox": ("gateway.cli_outbox", "The durable outbox: status, dead letters, requeue."),
}
for _name, (_module, _help) in _SUBAPPS.items():
    try:
        _mod = importlib.import_module(_module)
    except ModuleNotFoundError as _exc:
        if _exc.name != _module:
            raise
        continue
    app.add_typer(_mod.app, name=_name, help=_help)


def _fail(exc: Exception, code: int = 1) -> typer.Exit:
    typer.echo(str(exc), err=True)
    return typer.Exit(code)


def _setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@app.command("check-config")
def check_config(config: ConfigOpt) -> None:
    """Validate gateway.toml; every error names the file, the key path and why."""
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        raise _fail(exc) from None
    typer.echo(
        f"{config}: OK ({len(cfg.customers)} customers, {len(cfg.sites)} sites, {len(cfg.meters)} meters, "
        f"{len(cfg.devices)} devices, store {cfg.store.type})"
    )


@app.command()
def run(config: ConfigOpt) -> None:
    """Production: collectors, pipeline, scheduler and API until SIGTERM (which flushes and exits cleanly)."""
    from gateway.runtime import Gateway, install_stop_signals

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        raise _fail(exc) from None
    _setup_logging(cfg.gateway.log_level)
    gw = Gateway.from_config(cfg)
    from gateway.jobs import register_jobs

    register_jobs(gw)

    async def main() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop)
        await gw.run(stop, on_ready=lambda: logging.getLogger("gateway").info("gateway %s running",
                                                                                cfg.gateway.name))

    asyncio.run(main())
    typer.echo(json.dumps({k: v for k, v in gw.pipeline.stats().items() if k != "last_error"}))


@app.command()
def collect(
    config: ConfigOpt,
    once: Annotated[bool, typer.Option("--once", help="Poll every configured point once and exit")] = False,
) -> None:
    """One poll of every configured point, printed as JSON lines (nothing is stored)."""
    from gateway.runtime import Tagger, build_collectors

    if not once:
        raise _fail(ValueError("only --once is supported here; `energy-gateway run` collects continuously"), 2)
    try:
        cfg = load_config(config, environ={"GATEWAY_SECRET_KEY": "x" * 32} | dict(__import__("os").environ))
    except ConfigError as exc:
        raise _fail(exc) from None
    _setup_logging("WARNING")
    tagger = Tagger(cfg.tags_by_device())

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
) -> None:
    """Everything on embedded defaults with simulated Modbus and OPC UA meters on loopback."""
    from gateway.demo import prepare_demo, run_demo

    _setup_logging("WARNING")
    try:
        prepared = prepare_demo(data_dir, port)
    except ConfigError as exc:
        raise _fail(exc) from None
    summary = asyncio.run(run_demo(prepared, duration))
    typer.echo(json.dumps(summary))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
