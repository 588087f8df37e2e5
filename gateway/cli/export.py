"""`energy-gateway export`: a customer's interval data as Green Button XML, CSV or XLSX."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from gateway.config import CustomerConfig
    from gateway.usecases import UseCases

app = typer.Typer(no_args_is_help=True, add_completion=False)


def _usecases(config: Path, customer: str, start: date, end: date) -> tuple[UseCases, CustomerConfig]:
    from gateway.config import ConfigError, load_config
    from gateway.runtime import StartupError, offline_sources
    from gateway.usecases import UseCases

    try:
        cfg = load_config(config, secrets={"store", "database"})  # no API key needed
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    if end < start:
        typer.echo(f"--to {end} is before --from {start}", err=True)
        raise typer.Exit(2)
    cust = next((c for c in cfg.customers if c.id == customer), None)
    if cust is None:
        typer.echo(f"unknown customer {customer!r}; known: {', '.join(c.id for c in cfg.customers)}", err=True)
        raise typer.Exit(2)
    try:
        return UseCases(offline_sources(cfg)), cust
    except StartupError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(str(exc), err=True)
    return typer.Exit(2)


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
    from gateway.usecases import UseCaseError
    from reports.greenbutton import CURRENCY_CODES

    end = _day(to, "--to") if to else date.today() - timedelta(days=1)
    start = _day(from_, "--from") if from_ else end - timedelta(days=29)
    if currency not in CURRENCY_CODES:
        typer.echo(f"--currency {currency!r}: use one of {', '.join(CURRENCY_CODES)}", err=True)
        raise typer.Exit(2)
    uc, _ = _usecases(config, customer, start, end)
    try:
        frame = uc.intervals(customer, start, end)
        out.write_bytes(uc.greenbutton(customer, start, end, currency=currency))
    except UseCaseError as exc:
        raise _fail(exc) from None
    counts = {str(k): int(n) for k, n in frame["status"].value_counts().items()} if "status" in frame else {}
    typer.echo(f"{out}: {int(counts.get('measured', 0))} measured and {int(counts.get('estimated', 0))} estimated "
               f"intervals; {int(counts.get('missing', 0))} missing and {int(counts.get('pending', 0))} pending "
               "left out")


@app.command()
def table(config: Config, customer: Customer, out: Out, from_: From = "", to: To = "") -> None:
    """CSV or XLSX (by the file's suffix) of the customer's 15-min kWh, kvarh, kW and PF."""
    from gateway.usecases import UseCaseError
    from reports.tables import to_csv, to_xlsx

    end = _day(to, "--to") if to else date.today() - timedelta(days=1)
    start = _day(from_, "--from") if from_ else end - timedelta(days=29)
    if out.suffix.lower() not in (".csv", ".xlsx"):
        typer.echo(f"{out}: use a .csv or .xlsx file name", err=True)
        raise typer.Exit(2)
    uc, cust = _usecases(config, customer, start, end)
    try:
        frame = uc.intervals(customer, start, end)
    except UseCaseError as exc:
        raise _fail(exc) from None
    if out.suffix.lower() == ".xlsx":
        out.write_bytes(to_xlsx(frame, f"{cust.name or customer} {start}..{end}"))
    else:
        out.write_text(to_csv(frame), encoding="utf-8")
    typer.echo(f"{out}: {len(frame)} intervals")
