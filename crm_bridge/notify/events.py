"""What people are told about: the notification events, and `publish` that hands one to the session's notifier.

The alert engine and the service desk call `publish(session, event)` inside their own transaction. The notifier is
found in `session.info[PUBLISHER]` (the composition root puts it on its sessionmaker); without one, publishing does
nothing, so code and tests that do not notify are unchanged. The notifier only writes rows (the event, one queued
message per recipient) in the caller's transaction: sending happens later, in a job, so a slow or broken channel
never holds up the alert engine or a request, and the event and its messages commit (or roll back) with the alert
or ticket that caused them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crm_bridge.registry.models import Alert, Ticket

log = logging.getLogger(__name__)

PUBLISHER = "crm_bridge.notify.publisher"


class EventKind(StrEnum):
    """The events a user can choose to hear about (values are what the config and the API use)."""

    ALERT_OPENED = "alert.opened"
    ALERT_ESCALATED = "alert.escalated"
    ALERT_RESOLVED = "alert.resolved"
    TICKET_OPENED = "ticket.opened"  # a new request or complaint
    TICKET_DUE_SOON = "ticket.due_soon"
    TICKET_OVERDUE = "ticket.overdue"
    TICKET_ESCALATED = "ticket.escalated"
    REPORT_READY = "report.ready"
    THRESHOLD_CROSSED = "threshold.crossed"  # a customer's own kW / kWh limit
    DIGEST = "digest"  # the daily digest itself; not something to subscribe to


SUBSCRIBABLE: tuple[EventKind, ...] = tuple(k for k in EventKind if k is not EventKind.DIGEST)
# Events about the utility's own follow-up: never sent to customers.
INTERNAL: frozenset[EventKind] = frozenset({
    EventKind.ALERT_ESCALATED, EventKind.TICKET_DUE_SOON, EventKind.TICKET_OVERDUE, EventKind.TICKET_ESCALATED,
})


def allowed_events(role: str) -> tuple[EventKind, ...]:
    """The events a role may hear of, as the roles table lets it see them.

    Customers nothing internal to the utility; engineers no tickets and no reports (no service desk, no money);
    admins and account managers everything.
    """
    if role == "customer":
        return tuple(k for k in SUBSCRIBABLE if k not in INTERNAL)
    if role == "engineer":
        return (EventKind.ALERT_OPENED, EventKind.ALERT_ESCALATED, EventKind.ALERT_RESOLVED,
                EventKind.THRESHOLD_CROSSED)
    if role in ("admin", "account_manager"):
        return SUBSCRIBABLE
    return ()


@dataclass(frozen=True)
class Attachment:
    """A file sent with a notification (a report): name, MIME type and bytes."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Event:
    """One event. `key` identifies it for good: a second event with the same key is not sent again.

    `data` holds JSON values the message texts are made from (numbers stay numbers, times ISO 8601 strings), so
    every recipient gets them formatted in its own language and time zone.
    """

    kind: EventKind
    key: str
    customer: str | None
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    severity: str | None = None
    attachment: Attachment | None = None
    # Extra usernames to reach besides the usual audience (escalation targets).
    extra_recipients: tuple[str, ...] = ()


Publisher = Callable[["Session", Event], object]


def publish(session: Session, event: Event) -> None:
    """Hand `event` to the notifier of `session`, if it has one; a failure is logged, never raised.

    The notifier writes in a savepoint, so a failure leaves the caller's own changes (the alert, the ticket) intact.
    """
    publisher: Publisher | None = session.info.get(PUBLISHER)
    if publisher is None:
        return
    try:
        publisher(session, event)
    except Exception:  # a notification problem must never stop an alert or a ticket
        log.exception("notification %s (%s) could not be queued", event.key, event.kind.value)


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def alert_event(kind: EventKind, alert: Alert, at: datetime) -> Event:
    """The event of an alert opened, escalated or resolved (a customer's threshold alert opens THRESHOLD_CROSSED).

    An alert with a message key (its `AlertText`, read in the alert's own session) carries it and its values as
    `message_key` and `message_params`, so each recipient can be told the message in their language.
    """
    from sqlalchemy.orm import object_session

    from crm_bridge.registry.models import AlertText

    if kind is EventKind.ALERT_OPENED and alert.type.startswith("threshold_"):
        kind = EventKind.THRESHOLD_CROSSED
    data: dict[str, Any] = {
        "alert_id": alert.id, "type": alert.type, "severity": alert.severity, "message": alert.message,
        "meter": alert.meter_code, "window_start": _iso(alert.window_start), "window_end": _iso(alert.window_end),
        "opened_at": _iso(alert.opened_at)}
    session = object_session(alert)
    found = session.get(AlertText, alert.id) if session is not None and alert.id is not None else None
    if found is not None:
        data |= {"message_key": found.key, "message_params": dict(found.params or {})}
    return Event(kind=kind, key=f"alert:{alert.id}:{kind.value}", customer=alert.customer_code, at=at,
                 severity=alert.severity, data=data)


def ticket_event(kind: EventKind, ticket: Ticket, customer: str, at: datetime, due: datetime | None = None) -> Event:
    """The event of a ticket opened, nearing or past its deadline, or escalated."""
    return Event(
        kind=kind, key=f"ticket:{ticket.id}:{kind.value}", customer=customer, at=at,
        severity="warning" if ticket.kind == "complaint" else "info",
        data={"ticket_id": ticket.id, "kind": ticket.kind, "category": ticket.category, "title": ticket.title,
              "status": ticket.status, "created_at": _iso(ticket.created_at), "due": _iso(due)},
    )


def notify_report(
    session: Session, customer: str, *, period: str, attachment: Attachment, at: datetime,
    title: Mapping[str, str] | None = None, amount: float | None = None, currency: str = "CNY", key: str | None = None,
) -> None:
    """Tell a customer's people and its account managers that a report is ready, with the file attached.

    `title` by language (`{"zh": "月度报告", "en": "monthly report"}`; default: the monthly report's); `amount` a
    total shown in each recipient's currency format. Queued in `session` (the caller commits) and sent by the
    notifier's job; the key (default: customer, period and file name) makes a second call for the same report a
    no-op.
    """
    data: dict[str, Any] = {"period": period, "attachment": attachment.filename, "amount": amount,
                            "currency": currency}
    for lang, text in (title or {}).items():
        data[f"title_{lang}"] = text
    publish(session, Event(kind=EventKind.REPORT_READY, key=key or f"report:{customer}:{period}:{attachment.filename}",
                           customer=customer, at=at, data=data, severity="info", attachment=attachment))
