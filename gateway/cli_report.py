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
    from gateway.query import QueryError
    from gateway.runtime import build_query, build_store
    from reports.monthly import ReportError, month_figures, render_html, render_xlsx

    try:
        cfg = load_config(config, secrets={"store"})  # the store's password or token; no API key needed
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
                 pd.Timestamp(date.today().replace(day=1)) - pd.offsets.MonthBegin(1))
    except ValueError:
        typer.echo(f"--month {month!r} is not YYYY-MM", err=True)
        raise typer.Exit(2) from None
    start = first.tz_localize(cust.timezone)
    end = (first + pd.offsets.MonthBegin(1)).tz_localize(cust.timezone)
    try:
        frame = build_query(cfg, build_store(cfg)).customer_intervals(customer, start, end)
        figures = month_figures(frame, customer, cust.name or customer, first.strftime("%Y-%m"))
    except (QueryError, ReportError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    if out.suffix.lower() == ".xlsx":
        out.write_bytes(render_xlsx(figures))
    else:
        out.write_text(render_html(figures), encoding="utf-8")
    typer.echo(f"{out}: {figures.month}, {figures.kwh:,.0f} kWh, {figures.missing_intervals} missing intervals")
