"""`energy-gateway report`: the monthly customer report as self-contained HTML or XLSX."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command()
def customer(
    config: Annotated[Path, typer.Option("--config", "-c", help="gateway.toml")],
    customer: Annotated[str, typer.Option("--customer", help="customer id")],
    month: Annotated[str, typer.Option(help="YYYY-MM (default: last month)")] = "",
    out: Annotated[Path, typer.Option(help="report.html or report.xlsx")] = Path("report.html"),
) -> None:
    """One customer's month: energy, peak demand and when, power factor, load factor, days, daily profile."""
    import pandas as pd

    from gateway.config import ConfigError, load_config
    from gateway.runtime import StartupError, offline_sources
    from gateway.usecases import UseCaseError, UseCases

    try:
        cfg = load_config(config, secrets={"store", "database"})  # no API key needed
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    cust = next((c for c in cfg.customers if c.id == customer), None)
    if cust is None:
        typer.echo(f"unknown customer {customer!r}; known: {', '.join(c.id for c in cfg.customers)}", err=True)
        raise typer.Exit(2)
    if out.suffix.lower() not in (".html", ".xlsx"):
        typer.echo(f"{out}: use a .html or .xlsx file name", err=True)
        raise typer.Exit(2)
    try:
        first = (pd.Timestamp(month + "-01") if month else
                 pd.Timestamp(date.today().replace(day=1)) - pd.offsets.MonthBegin(1)).date()
    except ValueError:
        typer.echo(f"--month {month!r} is not YYYY-MM", err=True)
        raise typer.Exit(2) from None
    try:
        uc = UseCases(offline_sources(cfg))
        usage, bill = uc.month_bill(customer, first)
        out.write_bytes(uc.report(customer, first, out.suffix.lower().lstrip(".")))
    except StartupError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    except UseCaseError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    money = f", total {bill.total:,.2f} {bill.currency}" if bill is not None else ""
    typer.echo(f"{out}: {usage.month}, {usage.energy_kwh:,.0f} kWh, peak {usage.peak_kw:,.0f} kW, "
               f"{usage.intervals.missing} missing, {usage.intervals.estimated} estimated, "
               f"{usage.intervals.pending} pending intervals{money}")
