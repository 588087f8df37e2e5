"""`energy-gateway report`: a customer's monthly report, its daily brief, a manager's portfolio (PDF, HTML, XLSX)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer

if TYPE_CHECKING:
    from gateway.config import GatewayConfig
    from gateway.usecases import UseCases

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="A customer's monthly report, its daily brief, or a manager's portfolio, as PDF, HTML or XLSX, "
                       "in Chinese or English (default: the customer's language; zh for portfolios).")

FORMATS = ("pdf", "html", "xlsx")
Config = Annotated[Path, typer.Option("--config", "-c", help="gateway.toml")]
Lang = Annotated[str, typer.Option("--lang", help="zh or en (default: the customer's language, else zh)")]
Fmt = Annotated[str, typer.Option("--format", help="pdf, html or xlsx (default: from --out's suffix)")]
Month = Annotated[str, typer.Option(help="YYYY-MM (default: last month)")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _open(config: Path) -> tuple[GatewayConfig, UseCases]:
    from gateway.config import ConfigError, load_config
    from gateway.runtime import StartupError, offline_sources
    from gateway.usecases import UseCases

    try:
        cfg = load_config(config, secrets={"store", "database"})  # no API key needed
    except ConfigError as exc:
        raise _fail(str(exc), 1) from None
    try:
        return cfg, UseCases(offline_sources(cfg))
    except StartupError as exc:
        raise _fail(str(exc), 1) from None


def _format(fmt: str, out: Path | None) -> str:
    """The format asked for, else the output file's suffix; exit 2 when neither is pdf, html or xlsx."""
    chosen = (fmt or (out.suffix.lower().lstrip(".") if out is not None else "")).lower()
    if chosen not in FORMATS:
        where = f"{out}: " if out is not None and not fmt else ""
        raise _fail(f"{where}use --format pdf, html or xlsx (or a .pdf, .html or .xlsx file name)")
    return chosen


def _lang(lang: str) -> None:
    if lang and lang not in ("zh", "en"):
        raise _fail(f"--lang {lang!r}: use zh or en")


def _month(month: str, tz: str) -> date:
    if not month:
        today = datetime.now(ZoneInfo(tz)).date()
        return (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    try:
        return date.fromisoformat(month + "-01")
    except ValueError:
        raise _fail(f"--month {month!r} is not YYYY-MM") from None


def _day(day: str, tz: str) -> date:
    if not day:
        return datetime.now(ZoneInfo(tz)).date() - timedelta(days=1)
    try:
        return date.fromisoformat(day)
    except ValueError:
        raise _fail(f"--day {day!r} is not a date (YYYY-MM-DD)") from None


def _known(cfg: GatewayConfig, customer: str) -> None:
    if not any(c.id == customer for c in cfg.customers):
        raise _fail(f"unknown customer {customer!r}; known: {', '.join(c.id for c in cfg.customers)}")


@app.command()
def customer(
    config: Config,
    customer: Annotated[str, typer.Option("--customer", help="customer id")] = "",
    every: Annotated[bool, typer.Option("--all", help="every configured customer, one file each in --out-dir")] = False,
    month: Month = "",
    out: Annotated[Path | None, typer.Option(help="report.pdf, report.html or report.xlsx")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out-dir", help="folder for --all: <customer>_<month>.<fmt>")]
    = None,
    fmt: Fmt = "",
    lang: Lang = "",
) -> None:
    """One customer's month: bill, comparisons, charts, peak, load factor, forecast, alerts, advice, data quality.

    The bill by TOU band, the basic-charge modes, PF adjustment and total; the month before and last year; peak
    demand and when; forecast accuracy; open requests. `--all` writes every customer's report into `--out-dir`.
    """
    from gateway.usecases import UseCaseError
    from gateway.usecases.reports import customer_month, render_report

    _lang(lang)
    if every == bool(customer):
        raise _fail("give --customer ID or --all")
    if every and out_dir is None:
        raise _fail("--all writes one file per customer: give --out-dir")
    if not every and out is None:
        out = Path("report.pdf")
    kind = _format(fmt, None if every else out)
    cfg, uc = _open(config)
    if not every:
        _known(cfg, customer)
        first = _month(month, next(c.timezone for c in cfg.customers if c.id == customer))
        assert out is not None
        try:
            report = customer_month(uc, customer, first, lang or None)
            out.write_bytes(render_report(report, kind))
        except UseCaseError as exc:
            raise _fail(str(exc)) from None
        u, b = report.month.usage, report.month.bill
        money = f", total {b.total:,.2f} {b.currency}" if b is not None else ""
        typer.echo(f"{out}: {u.month}, {u.energy_kwh:,.0f} kWh, peak {u.peak_kw:,.0f} kW, "
                   f"{u.intervals.missing} missing, {u.intervals.estimated} estimated, "
                   f"{u.intervals.pending} pending intervals{money}")
        return
    assert out_dir is not None
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    from gateway.progress import progress
    from gateway.usecases.reports import MonthReportJob, month_reports

    jobs = [MonthReportJob(c.id, _month(month, c.timezone), kind, lang or None) for c in cfg.customers]
    # Made in parallel by the shared batch executor (every core, or the Dask cluster of [forecast]), each file
    # written as its report comes back
    with progress("reports", len(jobs)) as bar:
        for done in bar.track(month_reports(cfg, jobs)):
            if done.content is None:
                typer.echo(f"\n{done.job.customer}: {done.error}", err=True)
                failed += 1
                continue
            (out_dir / f"{done.job.customer}_{done.job.month:%Y-%m}.{kind}").write_bytes(done.content)
    typer.echo(f"{out_dir}: {len(cfg.customers) - failed} reports, {failed} without data")
    if failed == len(cfg.customers):
        raise typer.Exit(2)


@app.command()
def brief(
    config: Config,
    customer: Annotated[str, typer.Option("--customer", help="customer id")],
    day: Annotated[str, typer.Option(help="local day YYYY-MM-DD (default: yesterday on the customer's clock)")] = "",
    out: Annotated[Path, typer.Option(help="brief.pdf, brief.html or brief.xlsx")] = Path("brief.pdf"),
    fmt: Fmt = "",
    lang: Lang = "",
) -> None:
    """One customer's day on one page: against its forecast and the same weekday last week, its cost, its alerts."""
    from gateway.usecases import UseCaseError
    from gateway.usecases.reports import daily_brief, render_report

    _lang(lang)
    kind = _format(fmt, out)
    cfg, uc = _open(config)
    _known(cfg, customer)
    the_day = _day(day, next(c.timezone for c in cfg.customers if c.id == customer))
    try:
        report = daily_brief(uc, customer, the_day, lang or None)
        out.write_bytes(render_report(report, kind))
    except UseCaseError as exc:
        raise _fail(str(exc)) from None
    s = report.curve["summary"]
    cost = f", energy cost {report.cost:,.2f} {report.currency}" if report.cost is not None else ""
    typer.echo(f"{out}: {the_day}, {s['kwh']:,.0f} kWh, peak {s['peak_kw']:,.0f} kW, {len(report.alerts)} alerts"
               f"{cost}")


app.command("daily", hidden=True, help="The same as `brief`.")(brief)


@app.command()
def portfolio(
    config: Config,
    manager: Annotated[str, typer.Option("--manager", help="account manager code")],
    month: Month = "",
    out: Annotated[Path, typer.Option(help="portfolio.pdf, portfolio.html or portfolio.xlsx")] = Path("portfolio.pdf"),
    fmt: Fmt = "",
    lang: Lang = "",
) -> None:
    """An account manager's accounts: tiers, trends, largest changes, open advice, alerts, requests, response times.

    Tiers and tier changes, kWh and bill trends, the largest changes, money in open advice, open alerts and
    requests, request response times against target, satisfaction.
    """
    from gateway.usecases import UseCaseError
    from gateway.usecases.reports import portfolio as gather
    from gateway.usecases.reports import render_report

    _lang(lang)
    kind = _format(fmt, out)
    cfg, uc = _open(config)
    first = _month(month, cfg.gateway.timezone)
    try:
        report = gather(uc, manager, first, lang or None)
        out.write_bytes(render_report(report, kind))
    except UseCaseError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"{out}: {manager}, {first:%Y-%m}, {len(report.rows)} accounts")

