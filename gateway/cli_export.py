"""`energy-gateway export`: a customer's interval data as Green Button XML, CSV or XLSX."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    import pandas as pd

    from gateway.config import CustomerConfig

app = typer.Typer(no_args_is_help=True, add_completion=False)


def _intervals(config: Path, customer: str, start: date, end: date) -> tuple[pd.DataFrame, CustomerConfig]:
    from gateway.config import ConfigError, load_config
    from gateway.query import QueryError, day_bounds
    from gateway.runtime import build_query, build_store

    try:
        cfg = load_config(config, secrets={"store"})  # the store's password or token; no API key needed
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    if end < start:
        typer.echo(f"--to {end} is before --from {start}", err=True)
        raise typer.Exit(2)
    q = build_query(cfg, build_store(cfg))
    tz = next((c.timezone for c in cfg.customers if c.id == customer), None)
    if tz is None:
        typer.echo(f"unknown customer {customer!r}; known: {', '.join(c.id for c in cfg.customers)}", err=True)
        raise typer.Exit(2)
    s, _ = day_bounds(str(start), tz)
    _, e = day_bounds(str(end), tz)
    try:
        return q.customer_intervals(customer, s, e), next(c for c in cfg.customers if c.id == customer)
    except QueryError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


Config = Annotated[Path, typer.Option("--config", "-c", help="gateway.toml")]
Customer = Annotated[str, typer.Option(help="customer id")]
From = Annotated[str, typer.Option("--from", help="first local day, YYYY-MM-DD")]
To = Annotated[str, typer.Option("--to", help="last local day, YYYY-MM-DD (inclusive)")]
Out = Annotated[Path, typer.Option(help="output file")]


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        typer.echo(f"{option} {value!r} is not a date (YYYY-MM-DD)", err=True)
        raise typer.Exit(2) from None


@app.command()
def greenbutton(
    config: Config,
    customer: Customer,
    out: Out,
    from_: From = "",
    to: To = "",
    currency: Annotated[str, typer.Option(help="CNY, USD or EUR")] = "CNY",
) -> None:
    """NAESB ESPI (Green Button) XML of the customer's 15-min energy."""
    from reports.greenbutton import CURRENCY_CODES, export_espi

    end = _day(to, "--to") if to else date.today() - timedelta(days=1)
    start = _day(from_, "--from") if from_ else end - timedelta(days=29)
    if currency not in CURRENCY_CODES:
        typer.echo(f"--currency {currency!r}: use one of {', '.join(CURRENCY_CODES)}", err=True)
        raise typer.Exit(2)
    frame, cust = _intervals(config, customer, start, end)
    out.write_bytes(export_espi(frame, customer=customer, title=cust.name or customer, currency=currency))
    typer.echo(f"{out}: {int((~frame['missing']).sum())} intervals, {int(frame['missing'].sum())} missing left out")


@app.command()
def table(config: Config, customer: Customer, out: Out, from_: From = "", to: To = "") -> None:
    """CSV or XLSX (by the file's suffix) of the customer's 15-min kWh, kvarh, kW and PF."""
    from reports.tables import to_csv, to_xlsx

    end = _day(to, "--to") if to else date.today() - timedelta(days=1)
    start = _day(from_, "--from") if from_ else end - timedelta(days=29)
    frame, cust = _intervals(config, customer, start, end)
    if out.suffix.lower() == ".xlsx":
        out.write_bytes(to_xlsx(frame, f"{cust.name or customer} {start}..{end}"))
    elif out.suffix.lower() == ".csv":
        out.write_text(to_csv(frame), encoding="utf-8")
    else:
        typer.echo(f"{out}: use a .csv or .xlsx file name", err=True)
        raise typer.Exit(2)
    typer.echo(f"{out}: {len(frame)} intervals")
