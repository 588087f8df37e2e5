"""The periodic jobs of a gateway, registered with the scheduler by the composition root.

Each package keeps its job as a plain function over its inputs (crm_bridge.alerts.evaluate_alerts,
crm_bridge.tiering.classify_accounts, ...); here they get their sessions, the query layer and the clock.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import pandas as pd

from gateway.scheduler import JobSpec

if TYPE_CHECKING:
    from gateway.runtime import Gateway

log = logging.getLogger(__name__)


def alerts_job(gw: Gateway) -> list[int]:
    """Evaluate every alert rule for every customer; returns the ids of alerts opened."""
    from crm_bridge.alerts import evaluate_alerts

    with gw.db() as session:
        return evaluate_alerts(session, gw.query, datetime.now(UTC))


def tiering_job(gw: Gateway) -> dict[str, str]:
    """Re-tier the accounts by annual kWh, revenue and peak kW, keeping manual overrides."""
    from crm_bridge.tiering import classify_accounts, compute_metrics

    now = datetime.now(UTC)
    with gw.db() as session:
        return classify_accounts(session, compute_metrics(session, gw.query, now), now)


def register_jobs(gw: Gateway) -> None:
    """Register every job this installation has. Only the process with `run_scheduler = true` runs them."""
    gw.scheduler.register(JobSpec(
        name="outbox_expire", func=gw.outbox.expire, trigger="interval", trigger_args={"minutes": 5},
        description="Drop (and count) outbox readings older than outbox.max_age_s",
    ))
    gw.scheduler.register(JobSpec(
        name="alerts", func=lambda: alerts_job(gw), trigger="interval", trigger_args={"minutes": 5},
        description="Evaluate alert rules (thresholds, demand, PF, base load, bill forecast, offline, gaps)",
    ))
    gw.scheduler.register(JobSpec(
        name="forecast", func=lambda: forecast_job(gw), trigger="cron", trigger_args={"hour": 21, "minute": 30},
        description="Day-ahead load forecast for every customer (model chosen per customer by backtest)",
    ))
    gw.scheduler.register(JobSpec(
        name="tiering", func=lambda: tiering_job(gw), trigger="cron", trigger_args={"hour": 3, "minute": 10},
        description="Classify key accounts (ABC) by kWh, revenue and peak kW",
    ))
    register_notification_jobs(gw)
    register_report_jobs(gw)


def register_report_jobs(gw: Gateway) -> None:
    """Customers' monthly reports and daily briefs, handed to the notifier when due (nothing to send with without it).

    The notifier picks the people (the account's managers always, its users by their preferences) and records each
    message; report_jobs keeps each (report, customer, period) to one hand-over across runs and restarts.
    """
    from gateway import notifications
    from gateway.report_jobs import send_due_reports
    from gateway.usecases import UseCases

    if notifications.notifier_of(gw.db) is None:
        return
    deliver = notifications.report_deliverer(gw)
    gw.scheduler.register(JobSpec(
        name="reports", trigger="interval", trigger_args={"minutes": 5},
        func=lambda: send_due_reports(UseCases(gw), deliver, recipients=lambda customer: [customer],
                                      managers=lambda _code: []),
        description="Monthly reports and daily briefs when due on each customer's clock, each handed over once",
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


def load_plan(gw: Gateway, customer: str, tz: str) -> pd.DataFrame | None:
    """The customer's production plan CSV from `forecast.plans_dir`, if there is one."""
    from forecasting import ForecastError, plan_from_frame

    path = gw.config.data_path(gw.config.forecast.plans_dir) / f"{customer}.csv"
    if not path.exists():
        return None
    try:
        return plan_from_frame(pd.read_csv(path, dtype=str, keep_default_na=False), str(path), tz)
    except (ForecastError, OSError, ValueError) as exc:
        log.error("production plan of %s unusable, forecasting without it: %s", customer, exc)
        return None


def forecast_job(gw: Gateway, day: date | None = None) -> dict[str, str]:
    """Forecast `day` (default: tomorrow, local) for every customer from history up to its start; store it.

    Returns customer -> chosen model name, or the error text for a customer that could not be forecast.
    """
    from forecasting import ForecastError, forecast_day_ahead

    cfg = gw.config.forecast
    histories, plans = {}, {}
    for c in gw.config.customers:
        local_today = pd.Timestamp.now(tz=c.timezone).normalize().tz_localize(None)
        target = pd.Timestamp(day) if day is not None else local_today + pd.Timedelta(days=1)
        origin = target.tz_localize(c.timezone)
        start = (target - pd.Timedelta(days=cfg.history_days)).tz_localize(c.timezone)
        histories[c.id] = gw.query.customer_intervals(c.id, start, origin)["kwh"]
        plans[c.id] = load_plan(gw, c.id, c.timezone)
    executor = None
    client = None
    if cfg.dask_scheduler:
        from distributed import Client

        client = Client(cfg.dask_scheduler)
        executor = client.get_executor()
    try:
        results = forecast_day_ahead(histories, plans, executor=executor, holidays_country=cfg.holidays_country)
    finally:
        if client is not None:
            client.close()
    made = time.time_ns()
    outcome: dict[str, str] = {}
    for cid, fc in results.items():
        if isinstance(fc, ForecastError):
            log.error("forecast failed: %s", fc)
            outcome[cid] = f"error: {fc}"
            continue
        gw.query.store_forecast(cid, fc, made)
        outcome[cid] = str(fc.attrs.get("model", "?"))
    return outcome
