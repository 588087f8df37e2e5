"""The reports' contents gathered in one place: the customer's month, its daily brief and a manager's portfolio.

Every figure comes from the use cases (`UseCases.month_bill`, `day_curve`, `services_for`) and the registry; the
renderers in reports/ only format them. Money goes into a report only when `money` is true (the caller's role may
see money) and the customer has a contract on a shipped tariff.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import select

from crm_bridge.registry.models import (
    AccountManager,
    Alert,
    Customer,
    Ticket,
    TierChange,
)
from crm_bridge.registry.repo import manager_portfolio
from crm_bridge.tariffs import MonthBill, MonthUsage
from crm_bridge.tariffs.bill import month_bounds
from forecasting.metrics import point_metrics
from gateway.query import day_bounds
from gateway.usecases.accounts import account_summaries, open_advice_money
from gateway.usecases.errors import BadInput, NoData, NotFound, UseCaseError
from gateway.usecases.figures import UseCases, customer_config
from gateway.usecases.forecast_accuracy import month_accuracy
from reports.i18n import Lang, language
from reports.model import (
    AlertRow,
    CustomerMonthReport,
    DailyBrief,
    DeskFigures,
    ForecastCheck,
    Month,
    PortfolioReport,
    PortfolioRow,
    RequestRow,
    TierChangeRow,
)

if TYPE_CHECKING:
    from gateway.config import GatewayConfig

TREND_MONTHS = 3  # the portfolio's trend: this month and the two before


def report_language(uc: UseCases, customer: str | None, lang: str | None) -> Lang:
    """The language asked for; else the customer's (its `language` in the config); else Chinese."""
    default: Lang = customer_config(uc.gw, customer).language if customer else "zh"
    try:
        return language(lang, default)
    except ValueError as exc:
        raise BadInput(str(exc), "lang") from None


def _month_before(first: date, months: int = 1) -> date:
    for _ in range(months):
        first = (first - timedelta(days=1)).replace(day=1)
    return first


def month_or_none(uc: UseCases, customer: str, first: date, money: bool) -> Month | None:
    """A month's figures from the one month bill; None when the month has no data (or is before the tariff)."""
    figures = _figures_or_none(uc, customer, first, uc.month_frame(customer, first)[0])
    return None if figures is None else Month(first, figures[0], figures[1] if money else None)


def _figures_or_none(uc: UseCases, customer: str, first: date,
                     frame: pd.DataFrame) -> tuple[MonthUsage, MonthBill | None] | None:
    """The month bill of `frame` (the month's intervals), or None where it raises the use cases' errors.

    A month without one kWh value is None at once: its bill always ends in an error (no interval with energy, if
    none comes first), and pricing a month of nothing before finding that out was most of what empty months cost.
    """
    if not frame["kwh"].notna().any():
        return None
    try:
        return uc.month_bill(customer, first, frame)
    except UseCaseError:
        return None


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)  # SQLite hands back naive UTC


def alerts_between(uc: UseCases, customer: str, start: datetime, end: datetime) -> list[AlertRow]:
    """The customer's alerts whose window touches [start, end), oldest first."""
    with uc.gw.db() as s:
        rows = s.scalars(select(Alert).where(Alert.customer_code == customer, Alert.window_start < end,
                                             Alert.window_end >= start).order_by(Alert.opened_at, Alert.id))
        return [AlertRow(_utc(a.opened_at), a.severity, a.type, a.status, a.message) for a in rows]


def open_requests(uc: UseCases, customer: str) -> list[RequestRow]:
    """The customer's service requests not yet closed, oldest first."""
    with uc.gw.db() as s:
        rows = s.scalars(select(Ticket).join(Customer, Customer.id == Ticket.customer_id)
                         .where(Customer.code == customer, Ticket.status != "closed").order_by(Ticket.id))
        return [RequestRow(t.id, t.title, t.kind, t.category, t.status, _utc(t.created_at)) for t in rows]


def forecast_check(actual_kwh: np.ndarray, forecast_kwh: np.ndarray) -> ForecastCheck | None:
    """Forecast against actual over the intervals that have both; None when no interval has a forecast."""
    both = ~(np.isnan(actual_kwh) | np.isnan(forecast_kwh))
    if not both.any():
        return None
    m = point_metrics(actual_kwh, forecast_kwh, mase_scale=1.0, mape_floor=0.0)
    wape = m["wape"]
    return ForecastCheck(actual_kwh=float(actual_kwh[both].sum()), forecast_kwh=float(forecast_kwh[both].sum()),
                         intervals=int(both.sum()), accuracy=None if wape is None else 1.0 - wape)


def _month_forecast(uc: UseCases, customer: str, first: date, frame: pd.DataFrame | None = None,
                    forecast: pd.DataFrame | None = None) -> ForecastCheck | None:
    tz = ZoneInfo(customer_config(uc.gw, customer).timezone)
    start, end = month_bounds(first, tz)
    if forecast is None:
        forecast = uc.gw.query.forecast(customer, start, end)
    if forecast["forecast"].notna().sum() == 0:
        return None
    if frame is None:
        frame, _ = uc.month_frame(customer, first)
    with_energy = frame["status"].isin(("measured", "estimated")) if "status" in frame.columns else frame["kwh"].notna()
    actual = frame["kwh"].where(with_energy).to_numpy(dtype=float)
    return forecast_check(actual, forecast["forecast"].reindex(frame.index).to_numpy(dtype=float))


def customer_month(uc: UseCases, customer: str, first: date, lang: str | None = None,
                   money: bool = True) -> CustomerMonthReport:
    """The monthly customer report's contents.

    The month bill, the months to compare, the charts' data, alerts, advice, open requests and data quality. Raises
    the use cases' errors (NoData for a month without data).

    The month and the EARLIER_MONTHS before it come from one store read, and each month's bill is made once: the
    month before is both a column of the comparison and one of the services' earlier peaks.
    """
    from gateway.usecases.services import EARLIER_MONTHS, earlier_peaks, services_for

    c = customer_config(uc.gw, customer)
    tz = ZoneInfo(c.timezone)
    first = first.replace(day=1)
    frames = uc.month_frames(customer, [_month_before(first, k) for k in range(EARLIER_MONTHS, -1, -1)])
    usage, bill = uc.month_bill(customer, first, frames[first])
    month = Month(first, usage, bill if money else None)
    figures: dict[date, tuple[MonthUsage, MonthBill | None] | None] = {}

    def earlier(m: date) -> tuple[MonthUsage, MonthBill | None] | None:
        if m not in figures:
            figures[m] = _figures_or_none(uc, customer, m, frames[m])
        return figures[m]

    start, end = month_bounds(first, tz)
    # A month that is over: one forecast read serves the services (the month and 32 days on) and the accuracy check
    forecast = uc.gw.query.forecast(customer, start, end + timedelta(days=32)) if end <= datetime.now(tz) else None
    advice: list[dict[str, Any]] | None = None
    if month.bill is not None:
        try:
            peaks = earlier_peaks(uc, customer, first, lambda m: None if (f := earlier(m)) is None else f[0])
            advice = list(services_for(uc, customer, first, frames[first], peaks, forecast)["advice"])
        except UseCaseError:
            advice = []
    prior = _month_before(first)
    before = earlier(prior)
    peak_day = uc.day_curve(customer, usage.peak_at.astimezone(tz).date()) if usage.peak_kw else None
    checked = _month_forecast(uc, customer, first, frames[first],
                              None if forecast is None else forecast.iloc[:len(frames[first])])
    return CustomerMonthReport(
        customer=customer, name=c.name or customer, lang=report_language(uc, customer, lang), timezone=c.timezone,
        made_at=datetime.now(tz), month=month,
        before=None if before is None else Month(prior, before[0], before[1] if money else None),
        last_year=month_or_none(uc, customer, first.replace(year=first.year - 1), money), peak_day=peak_day,
        forecast=checked, alerts=alerts_between(uc, customer, start, end), advice=advice,
        requests=open_requests(uc, customer), forecast_accuracy=month_accuracy(uc, customer, first, frames[first]))


def daily_brief(uc: UseCases, customer: str, day: date, lang: str | None = None, money: bool = True) -> DailyBrief:
    """One local day against its forecast and the same weekday a week before, its energy cost and its alerts."""
    c = customer_config(uc.gw, customer)
    tz = ZoneInfo(c.timezone)
    curve = uc.day_curve(customer, day)
    if curve["summary"]["kwh"] is None:
        raise NoData(f"no data for {customer} on {day}")
    before = uc.day_curve(customer, day - timedelta(days=7))["summary"]
    pts = curve["points"]
    check = forecast_check(np.array([np.nan if p["actual_kw"] is None or p["status"] not in ("measured", "estimated")
                                     else p["actual_kw"] / 4 for p in pts], dtype=float),
                           np.array([np.nan if p["forecast_kw"] is None else p["forecast_kw"] / 4 for p in pts],
                                    dtype=float))
    cost = uc.day_cost(customer, day) if money else None
    start, end = day_bounds(str(day), tz)
    return DailyBrief(customer=customer, name=c.name or customer, lang=report_language(uc, customer, lang),
                      timezone=c.timezone, made_at=datetime.now(tz), day=day, curve=curve,
                      last_week=before if before["kwh"] is not None else None, forecast=check,
                      cost=cost[0] if cost else None, currency=cost[1] if cost else "CNY",
                      alerts=alerts_between(uc, customer, start, end))


@dataclass(frozen=True)
class ManagerInfo:
    code: str
    name: str
    email: str | None
    customers: list[str]  # configured customer ids assigned to the manager, in config order


def manager_info(uc: UseCases, code: str) -> ManagerInfo:
    """The account manager with this code and its configured accounts; NotFound when there is none."""
    with uc.gw.db() as s:
        m = s.scalar(select(AccountManager).where(AccountManager.code == code))
        if m is None:
            raise NotFound(f"no account manager {code!r}", "manager")
        codes = {c.code for c in manager_portfolio(s, code)}
        info = ManagerInfo(m.code, m.name, m.email, [c.id for c in uc.gw.config.customers if c.id in codes])
    return info


def portfolio(uc: UseCases, manager: str, first: date, lang: str | None = None) -> PortfolioReport:
    """An account manager's accounts for one month.

    Tiers and their changes, kWh and bill over TREND_MONTHS months, the largest changes, money in open advice, open
    alerts and requests, request response times against target, satisfaction.
    """
    from crm_bridge.desk.workflow import desk_stats

    info = manager_info(uc, manager)
    tz = ZoneInfo(uc.gw.config.gateway.timezone)
    first = first.replace(day=1)
    firsts = [_month_before(first, k) for k in range(TREND_MONTHS - 1, -1, -1)]
    start, end = month_bounds(first, tz)
    rows: list[PortfolioRow] = []
    changes: list[TierChangeRow] = []
    currency = "CNY"
    with uc.gw.db() as s:
        ids = {c.code: c.id for c in s.scalars(select(Customer).where(Customer.code.in_(info.customers)))}
        summary = {e.customer: e for e in account_summaries(s, info.customers)}
        for cid in info.customers:
            months = [month_or_none(uc, cid, m, money=True) for m in firsts]
            bills = [m.bill for m in months if m is not None and m.bill is not None]
            currency = bills[-1].currency if bills else currency
            entry = summary.get(cid)
            rows.append(PortfolioRow(
                customer=cid, name=customer_config(uc.gw, cid).name or cid,
                tier=entry.tier if entry else None, months=months,
                open_advice_per_month=open_advice_money(uc, cid, first),
                open_alerts=entry.open_alerts if entry else 0, open_requests=entry.open_tickets if entry else 0))
        by_id = {v: k for k, v in ids.items()}
        for ch in s.scalars(select(TierChange).where(TierChange.customer_id.in_(list(by_id)),
                                                     TierChange.at >= start, TierChange.at < end)
                            .order_by(TierChange.at)):
            changes.append(TierChangeRow(by_id[ch.customer_id], ch.old_tier, ch.new_tier, ch.reason, _utc(ch.at)))
        stats = desk_stats(s, datetime.now(UTC))["manager"].get(manager)
    desk = None if stats is None else DeskFigures(
        count=stats.count, acknowledged=stats.acknowledged, resolved=stats.resolved,
        mean_ack_min=stats.mean_ack_min, mean_resolve_min=stats.mean_resolve_min,
        ack_breaches=int(stats.ack_breaches), resolve_breaches=int(stats.resolve_breaches),
        mean_satisfaction=stats.mean_satisfaction)
    return PortfolioReport(manager=info.code, manager_name=info.name, lang=report_language(uc, None, lang),
                           timezone=str(tz), made_at=datetime.now(tz), month=first, month_firsts=firsts, rows=rows,
                           tier_changes=changes, desk=desk, currency=currency)


def render_report(report: Any, fmt: str) -> bytes:
    """The report as html, pdf or xlsx bytes; BadInput for another format."""
    from reports.render import FORMATS, render

    if fmt not in FORMATS:
        raise BadInput(f"format {fmt!r}: use one of {', '.join(FORMATS)}", "format")
    return render(report, fmt)


def customer_report(uc: UseCases, customer: str, first: date, fmt: str, lang: str | None = None,
                    money: bool = True) -> bytes:
    """The monthly customer report as html, pdf or xlsx."""
    return render_report(customer_month(uc, customer, first, lang, money), fmt)


def brief_report(uc: UseCases, customer: str, day: date, fmt: str, lang: str | None = None,
                 money: bool = True) -> bytes:
    """The daily brief as html, pdf or xlsx."""
    return render_report(daily_brief(uc, customer, day, lang, money), fmt)


def portfolio_report(uc: UseCases, manager: str, first: date, fmt: str, lang: str | None = None) -> bytes:
    """The account manager's portfolio report as html, pdf or xlsx."""
    return render_report(portfolio(uc, manager, first, lang), fmt)


# -- many monthly reports at once, through the shared batch executor ---------------------------------------------------
# The executor is the one the forecast job uses (ARCHITECTURE.md, "Scaling past one machine"): Dask's when
# `[forecast] dask_scheduler` names a scheduler, else a local process pool. Each worker opens the stores once and keeps
# its use cases, fonts and templates for every report it makes after that.

# Loaded by the fork server before it forks the pool's workers, so a worker starts in milliseconds, not seconds.
WORKER_PRELOAD = ("gateway.usecases.reports", "gateway.usecases.services", "reports.render", "weasyprint")


@dataclass(frozen=True)
class MonthReportJob:
    """One monthly report to make: whose, which month (its first day), the format, the language, money or not."""

    customer: str
    month: date
    fmt: str = "pdf"
    lang: str | None = None  # None: the customer's language
    money: bool = True


@dataclass(frozen=True)
class MonthReportResult:
    """A made report (`content`), or why there is none (`error`: the use cases' message, e.g. no data).

    `cpu_s`: the worker's CPU time for it (gathering and rendering), which a busy machine does not inflate.
    """

    job: MonthReportJob
    content: bytes | None
    error: str = ""
    cpu_s: float = 0.0


_WORKER_USES: dict[str, UseCases] = {}  # per process: config fingerprint -> use cases on the stores it names


def _worker_uses(cfg: GatewayConfig) -> UseCases:
    """The use cases of the calling process on the stores `cfg` names, opened at its first report and kept.

    Opened for reading only: the process that hands out the work has migrated the registry and brought it in step
    with the config already (a worker doing it too would only queue on the database's lock).
    """
    from sqlalchemy.orm import sessionmaker

    from crm_bridge.registry import make_engine
    from gateway.directory import Directory
    from gateway.runtime import build_query, build_store
    from gateway.usecases.figures import OfflineSources

    key = cfg.model_dump_json()
    uses = _WORKER_USES.get(key)
    if uses is None:
        db = sessionmaker(make_engine(cfg.database.resolve(cfg.gateway.data_dir, os.environ)), expire_on_commit=False)
        uses = UseCases(OfflineSources(cfg, build_query(cfg, build_store(cfg)), db, Directory.from_config(cfg)))
        _WORKER_USES.clear()  # a reloaded config replaces the one before
        _WORKER_USES[key] = uses
    return uses


def make_month_report(cfg: GatewayConfig, job: MonthReportJob) -> MonthReportResult:
    """One monthly report, made in the calling process with its kept use cases (what each batch worker runs)."""
    uses = _worker_uses(cfg)
    cpu = time.process_time()
    try:
        data = customer_report(uses, job.customer, job.month, job.fmt, job.lang, job.money)
    except UseCaseError as exc:  # the message, not the exception, crosses back: it pickles whatever its class
        return MonthReportResult(job, None, str(exc), time.process_time() - cpu)
    return MonthReportResult(job, data, cpu_s=time.process_time() - cpu)


@contextmanager
def report_executor(cfg: GatewayConfig, workers: int | None = None) -> Iterator[Executor]:
    """The shared batch executor: Dask's when `[forecast] dask_scheduler` is set, else a local process pool.

    The pool has `workers` processes (default: every core), forked from a fork server that has loaded
    WORKER_PRELOAD; a fork server, not a plain fork, because a running gateway has threads (scheduler, API, store
    readers) whose locks a forked child could inherit held. Dask's workers must reach the same stores and registry
    as this process (InfluxDB and PostgreSQL; an embedded store only on this machine).
    """
    if cfg.forecast.dask_scheduler:
        from distributed import Client

        client = Client(cfg.forecast.dask_scheduler)
        try:
            yield client.get_executor()
        finally:
            client.close()
        return
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(WORKER_PRELOAD))
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1, mp_context=ctx) as pool:
        yield pool


def month_reports(cfg: GatewayConfig, jobs: Sequence[MonthReportJob],
                  executor: Executor | None = None) -> Iterator[MonthReportResult]:
    """Make every job's monthly report in parallel through `executor` (default: `report_executor(cfg)`).

    Yields each result as it is done, so a caller can show progress and write files while the rest are made; a job
    without data yields its error and the others go on. An error that is not the use cases' (a broken store, a
    renderer failure) stops the batch, as it would stop one report.
    """
    with report_executor(cfg) if executor is None else nullcontext(executor) as pool:
        futures = [pool.submit(make_month_report, cfg, job) for job in jobs]
        for done in as_completed(futures):
            yield done.result()
