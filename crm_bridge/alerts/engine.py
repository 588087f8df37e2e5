"""Alert lifecycle open -> acknowledged -> resolved; a DB unique key on the open condition forbids duplicates."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_bridge.desk import create_ticket
from crm_bridge.errors import CrmError
from crm_bridge.notify.events import EventKind, alert_event, publish
from crm_bridge.registry.models import Alert, AlertPeriodMark, AlertText

log = logging.getLogger(__name__)
SEVERITIES = ("info", "warning", "critical")


class AlertError(CrmError, ValueError):
    """Bad alert input or lifecycle step."""


def raise_alert(
    session: Session, *, key: str, type: str, severity: str, customer_code: str, meter_code: str | None,
    window_start: datetime, window_end: datetime, message: str, now: datetime, text_key: str | None = None,
    params: dict[str, Any] | None = None,
) -> Alert | None:
    """Open an alert for condition `key`; None if an alert for that key is already open (or acknowledged).

    The check is the database's unique index on `open_key`, so concurrent evaluators cannot duplicate it.
    `text_key` and `params`: the message for the portal's catalogue (JSON values), beside the English `message`.
    """
    if severity not in SEVERITIES:
        raise AlertError(f"alert severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    alert = Alert(
        type=type, severity=severity, customer_code=customer_code, meter_code=meter_code, window_start=window_start,
        window_end=window_end, message=message, status="open", open_key=key, opened_at=now,
    )
    try:
        with session.begin_nested():
            session.add(alert)
            if text_key is not None:
                session.flush()
                session.add(AlertText(alert_id=alert.id, key=text_key, params=params or {}))
    except IntegrityError:
        log.debug("alert %s already open", key)
        return None
    log.info("alert %s opened for %s: %s", type, customer_code, message)
    publish(session, alert_event(EventKind.ALERT_OPENED, alert, now))
    return alert


def mark_period_once(session: Session, rule: str, customer_code: str, period: str) -> bool:
    """True the first time (rule, customer, period) is marked; False afterwards (DB unique constraint)."""
    try:
        with session.begin_nested():
            session.add(AlertPeriodMark(rule=rule, customer_code=customer_code, period=period))
    except IntegrityError:
        return False
    return True


def _get(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise AlertError(f"no alert with id {alert_id}")
    return alert


def acknowledge(session: Session, alert_id: int, now: datetime) -> Alert:
    """Acknowledge an open alert (it stays open for de-duplication until resolved)."""
    alert = _get(session, alert_id)
    if alert.status != "open":
        raise AlertError(f"alert {alert_id} is {alert.status}, only an open alert can be acknowledged")
    alert.status, alert.acknowledged_at = "acknowledged", now
    session.flush()
    return alert


def resolve(session: Session, alert_id: int, now: datetime) -> Alert:
    """Resolve an alert; its condition key is freed so the condition can alert again."""
    alert = _get(session, alert_id)
    if alert.status == "resolved":
        raise AlertError(f"alert {alert_id} is already resolved")
    alert.status, alert.resolved_at, alert.open_key = "resolved", now, None
    session.flush()
    publish(session, alert_event(EventKind.ALERT_RESOLVED, alert, now))
    return alert


def list_alerts(session: Session, customer_code: str | None = None, status: str | None = None) -> list[Alert]:
    """Alerts, newest first, optionally by customer and status."""
    stmt = select(Alert).order_by(Alert.id.desc())
    if customer_code is not None:
        stmt = stmt.where(Alert.customer_code == customer_code)
    if status is not None:
        stmt = stmt.where(Alert.status == status)
    return list(session.scalars(stmt))


def open_ticket(session: Session, alert_id: int, now: datetime, owner_code: str | None = None) -> int:
    """Open a service-desk ticket (category `alert:<type>`) for the alert; returns the ticket id."""
    alert = _get(session, alert_id)
    if alert.ticket_id is not None:
        return alert.ticket_id
    ticket = create_ticket(
        session, alert.customer_code, "request", f"alert:{alert.type}", alert.message, now, owner_code=owner_code
    )
    alert.ticket_id = ticket.id
    session.flush()
    return ticket.id
