"""The periodic jobs of a gateway, registered with the scheduler by the composition root.

Each package keeps its job as a plain function over its inputs (crm_bridge.alerts.evaluate_alerts,
crm_bridge.tiering.classify_accounts, ...); here they get their sessions, the query layer and the clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gateway.scheduler import JobSpec

if TYPE_CHECKING:
    from gateway.runtime import Gateway


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
        name="tiering", func=lambda: tiering_job(gw), trigger="cron", trigger_args={"hour": 3, "minute": 10},
        description="Classify key accounts (ABC) by kWh, revenue and peak kW",
    ))
