"""The periodic jobs of a gateway, registered with the scheduler by the composition root.

Each package keeps its job as a plain function over its inputs (crm_bridge.alerts.evaluate_alerts,
crm_bridge.tiering.classify_accounts, ...); here they get their sessions, the query layer and the clock.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

import pandas as pd

from gateway.intervals import MAX_TOLERANCE_S
from gateway.query import QueryService, day_bounds
from gateway.scheduler import JobSpec

if TYPE_CHECKING:
    from gateway.config import GatewayConfig
    from gateway.runtime import Gateway
    from gateway.store.base import TimeSeriesStore

log = logging.getLogger(__name__)


def alerts_job(gw: Gateway) -> list[int]:
    """Evaluate every alert rule for every customer; returns the ids of alerts opened."""
    from crm_bridge.alerts import evaluate_alerts

    with gw.db() as session:
        return evaluate_alerts(session, gw.query, datetime.now(UTC), plans=lambda c, tz: load_plan(gw, c, tz))


class StoreReadings:
    """crm_bridge.alerts.projection.ReadingSource over the gateway's store: a meter's good raw readings."""

    def __init__(self, store: TimeSeriesStore, meter_device: Mapping[str, str]) -> None:
        self.store, self.devices = store, meter_device

    def _raw(self, meter: str, point: str, start: datetime, end: datetime) -> list[tuple[int, float | int]]:
        device = self.devices.get(meter)
        if device is None:  # a meter of the registry that this gateway does not collect
            return []
        raw = self.store.raw(device, point, int(pd.Timestamp(start).value), int(pd.Timestamp(end).value) + 1)
        values = raw["value"].tolist()  # Python floats, and Python ints for an exact register
        return [(int(t), v) for t, v, q in zip(raw["ts"].tolist(), values, raw["quality"].tolist(), strict=True)
                if q == "good" and v is not None and v == v]  # v == v: not NaN

    def energy_readings(self, meter: str, start: datetime, end: datetime) -> list[tuple[int, float | int]]:
        from collectors.reading import ACTIVE_ENERGY_IMPORT_KWH

        return self._raw(meter, ACTIVE_ENERGY_IMPORT_KWH, start, end)

    def power_readings(self, meter: str, start: datetime, end: datetime) -> list[tuple[int, float | int]]:
        from collectors.reading import ACTIVE_POWER_KW

        return self._raw(meter, ACTIVE_POWER_KW, start, end)


# The running window's projection is three short raw reads per meter (bench/alert_email.py times a run). Every 2 s:
# an alert is opened at most 2 s after its reading reached the store and mailed by the next `notify_send` run
# (notify.send_interval_s, 5 s by default), so the e-mail arrives within about 7 s of the reading.
DEMAND_PROJECTION_INTERVAL_S = 2


def demand_projection_job(gw: Gateway) -> list[int]:
    """Project each account's running 15-min window; returns the ids of `demand_projected` alerts opened."""
    from crm_bridge.alerts.projection import evaluate_demand_projection

    with gw.db() as session:
        outcomes = evaluate_demand_projection(
            session, StoreReadings(gw.store, gw.query.topology.meter_device), datetime.now(UTC))
    return [o.alert_id for o in outcomes if o.alert_id is not None]


def tiering_job(gw: Gateway) -> dict[str, str]:
    """Re-tier the accounts by annual kWh, revenue (their last 12 month bills) and peak kW, keeping manual overrides."""
    from crm_bridge.tiering import classify_accounts, compute_metrics
    from gateway.usecases import UseCases
    from gateway.usecases.accounts import billed_revenue

    now = datetime.now(UTC)
    uc = UseCases(gw)
    with gw.db() as session:
        return classify_accounts(session, compute_metrics(session, gw.query, now,
                                                          revenue=lambda code: billed_revenue(uc, code, now)), now)


def register_jobs(gw: Gateway) -> None:
    """Register every job this installation has.

    Only the process with `run_scheduler = true` runs them, and on a shared PostgreSQL registry only the one of those
    that holds the scheduler lease (gateway.scheduler_lease).
    """
    from gateway.scheduler_lease import lease_for

    bind = gw.db.kw.get("bind")
    if gw.scheduler.lease is None and bind is not None:
        gw.scheduler.lease = lease_for(bind)
    gw.scheduler.register(JobSpec(
        name="outbox_expire", func=gw.outbox.expire, trigger="interval", trigger_args={"minutes": 5},
        description="Drop (and count) outbox readings older than outbox.max_age_s",
    ))
    gw.scheduler.register(JobSpec(
        name="alerts", func=lambda: alerts_job(gw), trigger="interval", trigger_args={"minutes": 5},
        description="Evaluate alert rules (thresholds, demand, PF, base load, bill forecast, offline, gaps)",
    ))
    gw.scheduler.register(JobSpec(
        name="demand_projection", func=lambda: demand_projection_job(gw), trigger="interval",
        trigger_args={"seconds": DEMAND_PROJECTION_INTERVAL_S},
        description="Project each account's running 15-min demand window; warn before it ends over the limit",
    ))
    groups = forecast_groups(gw.config)
    zones = frozenset(zone for _, zone, _ in groups)
    for name, zone, primary in groups:
        gw.scheduler.register(JobSpec(
            name=name, func=functools.partial(forecast_job, gw, zone=zone, covered=zones if primary else None),
            trigger="cron",
            trigger_args={"hour": FORECAST_ISSUE_AT.hour, "minute": FORECAST_ISSUE_AT.minute, "timezone": zone},
            description=f"Day-ahead load forecast at {FORECAST_ISSUE_AT:%H:%M} {zone} for its customers (model "
                        "chosen per customer by backtest)",
        ))
    gw.scheduler.register(JobSpec(
        name="tiering", func=lambda: tiering_job(gw), trigger="cron", trigger_args={"hour": 3, "minute": 10},
        description="Classify key accounts (ABC) by kWh, revenue and peak kW",
    ))
    register_notification_jobs(gw)
    register_report_jobs(gw)


def register_report_jobs(gw: Gateway) -> None:
    """Reports on their owners' schedules, handed to the notifier when due (nothing to send with without it).

    Each customer's monthly report and daily brief, each account manager's portfolio (gateway/report_jobs.py); the
    notifier records each message, and report_jobs keeps each (report, owner, period) to one hand-over across runs
    and restarts.
    """
    from gateway import notifications

    if notifications.notifier_of(gw.db) is None:
        return

    def run() -> object:
        from gateway.report_jobs import report_job  # forecasting and statsmodels only when the job runs

        return report_job(gw)

    gw.scheduler.register(JobSpec(
        name="reports", trigger="interval", trigger_args={"minutes": 5}, func=run,
        description="Monthly reports and daily briefs on each customer's schedule, portfolios on each manager's; "
                    "each handed over once",
    ))


def register_notification_jobs(gw: Gateway) -> None:
    """Put the notifier on the registry's sessions and register its jobs (none while `[notify]` has no channel)."""
    from gateway import notifications

    if notifications.install_notifications(gw) is None:
        return
    gw.scheduler.register(JobSpec(
        name="notify_send", func=lambda: notifications.send_job(gw), trigger="interval",
        trigger_args={"seconds": gw.config.notify.send_interval_s},
        description="Send queued notifications (e-mail, webhooks, WeCom, DingTalk); retry failures with backoff",
    ))
    gw.scheduler.register(JobSpec(
        name="notify_escalate", func=lambda: notifications.escalation_job(gw), trigger="interval",
        trigger_args={"minutes": 1},
        description="Escalate alerts and requests not acknowledged in time; warn of requests nearing their deadline",
    ))
    gw.scheduler.register(JobSpec(
        name="notify_digest", func=lambda: notifications.digest_job(gw), trigger="interval",
        trigger_args={"minutes": 5}, description="Send each user's daily digest when its time has come",
    ))


TONNES = ("t", "吨")  # the units of an uploaded plan whose output is the forecast's planned_output_t


def load_plan(gw: ForecastSources, customer: str, tz: str) -> pd.DataFrame | None:
    """The customer's production plan: the CSV of `forecast.plans_dir` and the plan uploaded in the portal or API.

    The one plan of the forecast, the saving advice (gateway.usecases.services) and the base-load alert: rows on
    tz-aware starts as forecasting.plan_from_frame makes them. The upload (registry `production_day`, kind plan,
    see _uploaded_plan) gives one row per local day from its midnight: `operating` (1/0), `shift` (the count) and
    `planned_output_t` when its unit is tonnes ("t", "吨"); an output in another unit is not read by the forecast
    (it has no column for it), and an uploaded day with none of the three is left out. Where the file and the
    upload both give a day, the upload wins the whole day (it is newer and made by a person; a column it leaves
    empty is unknown that day) and one log line per call says on which days. An uploaded day holds that day only:
    at the next midnight the file's row in effect then resumes, else nothing holds. A file that cannot be read is
    logged and left out; a source without a registry (no `db`) reads the file only. None when neither gives a row.
    """
    from forecasting import ForecastError, plan_from_frame

    path = gw.config.data_path(gw.config.forecast.plans_dir) / f"{customer}.csv"
    file_plan = None
    if path.exists():
        try:
            file_plan = plan_from_frame(pd.read_csv(path, dtype=str, keep_default_na=False), str(path), tz)
        except (ForecastError, OSError, ValueError) as exc:
            log.error("production plan of %s unusable, forecasting without it: %s", customer, exc)
    uploaded = _uploaded_plan(gw, customer, tz)
    if uploaded is None or uploaded.empty:
        return file_plan
    return _merged_plan(file_plan, uploaded, customer, tz)


def _uploaded_plan(gw: ForecastSources, customer: str, tz: str) -> pd.DataFrame | None:
    """The customer's uploaded plan days as plan rows at local midnight (operating, shift, planned_output_t).

    A day's plant row (line "") is the day's plan; a day with only per-line rows is their sum: the outputs added,
    shifts and operating as crm_bridge.services.production_io.plant_shifts combines them (the most shifts any line
    runs, operating when any line does; 0 shifts without a flag is a stopped day).
    """
    from sqlalchemy import select

    from crm_bridge.registry.performance_models import ProductionDay
    from crm_bridge.services.production_io import plant_shifts
    from crm_bridge.tariffs.bill import local_midnight

    db = getattr(gw, "db", None)
    if db is None:
        return None
    with db() as s:
        rows = s.execute(select(ProductionDay.day, ProductionDay.line, ProductionDay.output, ProductionDay.unit,
                                ProductionDay.shifts, ProductionDay.operating).where(
            ProductionDay.customer_code == customer, ProductionDay.kind == "plan")).all()
    by_day: dict[date, list[Any]] = {}
    for r in rows:
        by_day.setdefault(r.day, []).append(r)
    days: dict[date, tuple[float, float, float]] = {}
    for day in sorted(by_day):
        plant = [r for r in by_day[day] if r.line == ""]
        group = plant or by_day[day]
        count, flag = plant_shifts(group)
        shift = float("nan") if count is None else float(count)
        operating = float("nan") if flag is None else float(flag)
        tonnes = all(r.unit.strip().lower() in TONNES for r in group)
        output = float(sum(r.output for r in group)) if tonnes else float("nan")
        if not (shift == shift or operating == operating or output == output):  # x == x: not NaN
            continue  # nothing the forecast reads: the file (if any) holds the day
        days[day] = (operating, shift, output)
    if not days:
        return None
    starts = pd.DatetimeIndex([local_midnight(d, tz) for d in days])
    return pd.DataFrame(list(days.values()), index=starts, columns=["operating", "shift", "planned_output_t"])


def _merged_plan(file_plan: pd.DataFrame | None, uploaded: pd.DataFrame, customer: str, tz: str) -> pd.DataFrame:
    """`uploaded` (day rows at local midnight) over `file_plan`: the upload's days replace the file's rows."""
    from crm_bridge.tariffs.bill import local_midnight

    up_days = pd.DatetimeIndex(uploaded.index).tz_localize(None).normalize()
    file_plan = file_plan if file_plan is not None else pd.DataFrame(index=pd.DatetimeIndex([], tz=tz))
    file_local = pd.DatetimeIndex(file_plan.index).tz_convert(tz).tz_localize(None).normalize()
    overridden = file_local.isin(up_days)
    if overridden.any():
        both = sorted(set(file_local[overridden]))
        log.info("production plan of %s: the uploaded plan replaces the plan file on %d day(s) (%s..%s)", customer,
                 len(both), both[0].date(), both[-1].date())
    kept = file_plan[~overridden]
    # Each uploaded day ends at its next midnight: there the file's row in effect resumes (else an empty row, so
    # the day's plan is never carried into the next).
    nexts = (up_days + pd.Timedelta(days=1))
    nexts = nexts[~nexts.isin(up_days)]
    resume_at = pd.DatetimeIndex([local_midnight(n.date(), tz) for n in nexts])
    resume_at = resume_at[~resume_at.isin(kept.index)]
    pos = file_plan.index.searchsorted(resume_at, side="right") - 1
    resumed = pd.DataFrame(index=resume_at, columns=file_plan.columns)
    for i, p in enumerate(pos):
        if p >= 0:
            resumed.iloc[i] = file_plan.iloc[p]
    parts = [f.astype({c: float for c in f.columns if c != "_end"}) for f in (kept, uploaded, resumed) if len(f)]
    merged = pd.concat(parts).sort_index()
    values = [c for c in merged.columns if c != "_end"]
    merged = merged.drop(columns=[c for c in values if merged[c].isna().all()])
    if "_end" in merged.columns:
        merged["_end"] = pd.to_datetime(merged["_end"], utc=True)
    return merged.tz_convert(tz)


# When the nightly day-ahead forecast is issued, local time: the one source of register_jobs' "forecast" cron, and
# a backfilled issue is dated, and sees the data, as the live one of that night would have.
FORECAST_ISSUE_AT = dt_time(21, 30)
BACKFILL_BATCH_DAYS = 7  # days per forecast batch: a year of histories for every customer at once would not fit


class ForecastSources(Protocol):
    """What the forecast jobs read: the config and the query layer (a running Gateway, or a CLI's OfflineSources)."""

    @property
    def config(self) -> GatewayConfig: ...

    @property
    def query(self) -> QueryService: ...


def _run_forecasts(gw: ForecastSources, histories: Mapping[str, pd.Series], plans: Mapping[str, pd.DataFrame | None],
                   executor: Executor | None = None) -> dict[str, Any]:
    """forecast_day_ahead over the histories, on `executor`, else the Dask cluster of [forecast], else a local pool."""
    from forecasting import forecast_day_ahead

    cfg = gw.config.forecast
    client = None
    if executor is None and cfg.dask_scheduler:
        from distributed import Client

        client = Client(cfg.dask_scheduler)
        executor = client.get_executor()
    try:
        return dict(forecast_day_ahead(histories, plans, executor=executor, holidays_country=cfg.holidays_country))
    finally:
        if client is not None:
            client.close()


def forecast_groups(cfg: GatewayConfig) -> list[tuple[str, str, bool]]:
    """The day-ahead jobs: (job name, time zone, whether it also takes zones without a job), one per customer zone.

    Each fires at FORECAST_ISSUE_AT on its customers' own clock, the time a backfilled issue is dated at
    (backfill_issue_time) and the accuracy assumes. The first zone in the config's order is the job `forecast`,
    which also forecasts the customers of a zone that has no job yet (one added by a reload, until the restart
    gives it its own); any other zone is `forecast:<zone>`. Customers are read at run time, so one a reload adds
    is forecast from the next run.
    """
    zones = list(dict.fromkeys(c.timezone for c in cfg.customers)) or [cfg.gateway.timezone]
    return [("forecast" if i == 0 else f"forecast:{zone}", zone, i == 0) for i, zone in enumerate(zones)]


def forecast_job(gw: Gateway, day: date | None = None, zone: str | None = None,
                 covered: frozenset[str] | None = None) -> dict[str, str]:
    """Forecast `day` (default: tomorrow, local) for every customer from history up to its start; store it.

    `zone`: only the customers on that clock, and with `covered` (the zones that had a job when the jobs were
    registered) also those of any other zone.

    Each run is a new issue (gateway.query.QueryService.store_forecast), kept beside the earlier ones. Returns
    customer -> chosen model name, or the error text for a customer that could not be forecast.
    """
    from forecasting import ForecastError

    cfg = gw.config.forecast
    histories, plans = {}, {}
    for c in gw.config.customers:
        if zone is not None and c.timezone != zone and (covered is None or c.timezone in covered):
            continue
        local_today = pd.Timestamp.now(tz=c.timezone).normalize().tz_localize(None)
        target = pd.Timestamp(day) if day is not None else local_today + pd.Timedelta(days=1)
        origin = target.tz_localize(c.timezone)
        start = (target - pd.Timedelta(days=cfg.history_days)).tz_localize(c.timezone)
        histories[c.id] = gw.query.customer_intervals(c.id, start, origin)["kwh"]
        plans[c.id] = load_plan(gw, c.id, c.timezone)
    results = _run_forecasts(gw, histories, plans)
    made = time.time_ns()
    outcome: dict[str, str] = {}
    for cid, fc in results.items():
        if isinstance(fc, ForecastError):
            log.error("forecast failed: %s", fc)
            outcome[cid] = f"error: {fc}"
            continue
        model = str(fc.attrs.get("model", "?"))
        gw.query.store_forecast(cid, fc, made, model=model)
        outcome[cid] = model
    return outcome


def _fixed(t: datetime) -> Callable[[], datetime]:
    return lambda: t


def backfill_issue_time(day: date, tz: str) -> pd.Timestamp:
    """When the live job would have issued `day`'s forecast: FORECAST_ISSUE_AT on the local day before."""
    return pd.Timestamp(datetime.combine(day - timedelta(days=1), FORECAST_ISSUE_AT)).tz_localize(
        tz, ambiguous=False, nonexistent="shift_forward")


def backfill_forecasts(gw: ForecastSources, first: date, last: date, customers: Sequence[str] | None = None,
                       executor: Executor | None = None) -> dict[str, dict[str, str]]:
    """Issue the day-ahead forecasts the customers would have had for the local days `first`..`last` (inclusive).

    Each day's issue is dated FORECAST_ISSUE_AT the evening before and made from the intervals known by then only
    (the rest of that evening is unknown, as it was to the live job); it is stored marked backfilled. A day that
    already has a day-ahead issue, or has not begun yet, is skipped. Runs BACKFILL_BATCH_DAYS days at a time (all
    customers in one batch) on `executor`, else the job's. Returns customer -> day -> the model, `skipped: ...` or
    `error: ...`.
    """
    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    if (last - first).days > 366:
        raise ValueError(f"--from {first} --to {last}: at most 367 days at a time")
    known = {c.id: c.timezone for c in gw.config.customers}
    unknown = [c for c in customers or () if c not in known]
    if unknown:
        raise ValueError(f"unknown customer(s): {', '.join(unknown)}")
    chosen = list(dict.fromkeys(customers)) if customers else list(known)
    outcome: dict[str, dict[str, str]] = {cid: {} for cid in chosen}
    plans = {cid: load_plan(gw, cid, known[cid]) for cid in chosen}
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    own = None
    if executor is None and not gw.config.forecast.dask_scheduler:
        own = executor = ProcessPoolExecutor(max_workers=os.cpu_count() or 1)  # one pool for every batch
    try:
        for i in range(0, len(days), BACKFILL_BATCH_DAYS):
            _backfill_batch(gw, days[i : i + BACKFILL_BATCH_DAYS], {c: known[c] for c in chosen}, plans, executor,
                            outcome)
    finally:
        if own is not None:
            own.shutdown()
    return outcome


def _backfill_batch(gw: ForecastSources, days: Sequence[date], zones: Mapping[str, str],
                    plans: Mapping[str, pd.DataFrame | None], executor: Executor | None,
                    outcome: dict[str, dict[str, str]]) -> None:
    """Backfill `days` for the customers of `zones` (id -> time zone) in one forecast batch; note each in outcome."""
    from forecasting import ForecastError

    q = gw.query
    histories: dict[str, pd.Series] = {}
    issues: dict[str, tuple[str, date, int]] = {}
    for cid, tz in zones.items():
        today = datetime.now(ZoneInfo(tz)).date()
        for day in days:
            origin, end = day_bounds(day.isoformat(), tz)
            if day > today:
                outcome[cid][day.isoformat()] = "skipped: the day has not begun"
                continue
            if q.forecast(cid, origin, end)["day_ahead"].any():
                outcome[cid][day.isoformat()] = "skipped: has a day-ahead forecast"
                continue
            issued = backfill_issue_time(day, tz)
            start = pd.Timestamp(origin) - pd.Timedelta(days=gw.config.forecast.history_days)
            # The intervals as they were known at the issue time: with the query layer's clock set two boundary
            # tolerances before it, no reading after it is read (a boundary's window reaches one tolerance past
            # it), nothing is estimated across it, and the rest of the evening is pending (NaN).
            as_of = (issued - pd.Timedelta(seconds=2 * MAX_TOLERANCE_S)).to_pydatetime()
            then = QueryService(q.store, q.topology, max_estimate_s=q.max_estimate_ns / 10**9,
                                min_power_coverage=q.min_power_coverage, clock=_fixed(as_of))
            history = then.customer_intervals(cid, start, origin)["kwh"]
            ends = pd.DatetimeIndex(history.index) + pd.Timedelta(minutes=15)
            key = f"{cid}\x00{day.isoformat()}"
            histories[key] = history.where(ends <= pd.Timestamp(as_of))
            issues[key] = (cid, day, int(issued.value))
    if not histories:
        return
    results = _run_forecasts(gw, histories, {k: plans[issues[k][0]] for k in histories}, executor)
    for key, fc in results.items():
        cid, day, issued_ns = issues[key]
        if isinstance(fc, ForecastError):
            log.error("backfill of %s for %s failed: %s", cid, day, fc)
            outcome[cid][day.isoformat()] = f"error: {fc}"
            continue
        model = str(fc.attrs.get("model", "?"))
        q.store_forecast(cid, fc, issued_ns, model=model, backfilled=True)
        outcome[cid][day.isoformat()] = model
