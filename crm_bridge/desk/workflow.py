"""Ticket lifecycle new -> acknowledged -> in_progress -> resolved -> closed, with timestamps and statistics."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_bridge.errors import CrmError
from crm_bridge.notify.events import EventKind, publish, ticket_event
from crm_bridge.registry.models import AccountManager, Ticket, TicketComment, TicketTransition, TierRecord
from crm_bridge.registry.repo import customer_by_code

log = logging.getLogger(__name__)

KINDS = ("request", "complaint")
NEXT: dict[str, tuple[str, ...]] = {
    "new": ("acknowledged",),
    "acknowledged": ("in_progress",),
    "in_progress": ("resolved",),
    "resolved": ("closed", "in_progress"),  # reopen if the customer is not satisfied
    "closed": (),
}
_DEFAULT_TIER = "C"


class TicketError(CrmError, ValueError):
    """Bad service-desk input."""


class InvalidTransitionError(TicketError):
    """A status change the workflow does not allow."""


@cache
def _targets() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((Path(__file__).parent / "response_targets.json").read_text())
    return data


def create_ticket(
    session: Session, customer_code: str, kind: str, category: str, title: str, now: datetime,
    owner_code: str | None = None, description: str | None = None, contact: str | None = None,
) -> Ticket:
    """Open a ticket for `customer_code`; targets follow the customer's effective tier."""
    if kind not in KINDS:
        raise TicketError(f"ticket kind {kind!r} is not one of {', '.join(KINDS)}")
    if now.tzinfo is None:
        raise TicketError("ticket time must be timezone-aware")
    customer = customer_by_code(session, customer_code)
    tier_rec = session.get(TierRecord, customer.id)
    tier = tier_rec.effective if tier_rec is not None else _DEFAULT_TIER
    target = _targets()[tier][kind]
    owner = _manager(session, owner_code) if owner_code is not None else None
    ticket = Ticket(
        customer_id=customer.id, kind=kind, category=category, title=title, owner_id=owner.id if owner else None,
        description=description or None, contact=contact or None,
        status="new", created_at=now, ack_target_min=int(target["ack"]), resolve_target_min=int(target["resolve"]),
    )
    ticket.transitions.append(TicketTransition(from_status=None, to_status="new", at=now))
    session.add(ticket)
    session.flush()
    log.info("ticket %s opened for %s (%s/%s, tier %s)", ticket.id, customer_code, kind, category, tier)
    due = now + timedelta(minutes=ticket.ack_target_min)
    publish(session, ticket_event(EventKind.TICKET_OPENED, ticket, customer_code, now, due))
    return ticket


def _manager(session: Session, code: str) -> AccountManager:
    owner = session.scalar(select(AccountManager).where(AccountManager.code == code))
    if owner is None:
        raise TicketError(f"ticket owner {code!r} is not an account manager")
    return owner


def ticket_by_id(session: Session, ticket_id: int) -> Ticket:
    """The ticket `ticket_id` (TicketError when there is none)."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise TicketError(f"no ticket with id {ticket_id}")
    return ticket


def assign(session: Session, ticket_id: int, owner_code: str) -> Ticket:
    """Give ticket `ticket_id` to the account manager `owner_code` (the assignee the desk and the customer see)."""
    ticket = ticket_by_id(session, ticket_id)
    ticket.owner_id = _manager(session, owner_code).id
    session.flush()
    return ticket


def add_comment(session: Session, ticket_id: int, author: str, author_role: str, body: str, now: datetime,
                internal: bool = False) -> TicketComment:
    """Add a comment to the ticket's thread; `internal`: a note for the desk that the customer never sees."""
    ticket = ticket_by_id(session, ticket_id)
    text = body.strip()
    if not text:
        raise TicketError("comment: empty")
    comment = TicketComment(author=author, author_role=author_role, body=text, internal=internal, at=now)
    ticket.comments.append(comment)
    session.flush()
    return comment


@dataclass(frozen=True)
class Due:
    """The deadline a ticket is working to: `ack` while new, `resolve` until resolved; None once resolved."""

    target: str | None
    at: datetime | None
    overdue: bool


def due(ticket: Ticket, now: datetime) -> Due:
    """The ticket's next deadline from its tier's targets, and whether `now` is past it."""
    created = _aware(ticket.created_at)
    if ticket.status == "new":
        at = created + timedelta(minutes=ticket.ack_target_min)
        return Due("ack", at, _aware(now) > at)
    if ticket.status in ("acknowledged", "in_progress"):
        at = created + timedelta(minutes=ticket.resolve_target_min)
        return Due("resolve", at, _aware(now) > at)
    return Due(None, None, False)


def transition(
    session: Session, ticket_id: int, to_status: str, now: datetime, note: str | None = None,
    satisfaction: int | None = None,
) -> Ticket:
    """Move ticket `ticket_id` to `to_status`; closing requires a satisfaction score 1-5."""
    ticket = ticket_by_id(session, ticket_id)
    if to_status not in NEXT[ticket.status]:
        allowed = ", ".join(NEXT[ticket.status]) or "nothing (closed)"
        raise InvalidTransitionError(
            f"ticket {ticket_id}: cannot go from {ticket.status!r} to {to_status!r}; allowed: {allowed}"
        )
    if to_status == "closed":
        if satisfaction is None or not 1 <= satisfaction <= 5:
            raise TicketError(f"ticket {ticket_id}: closing needs a satisfaction score 1-5, got {satisfaction!r}")
        ticket.satisfaction = satisfaction
    elif satisfaction is not None:
        raise TicketError(f"ticket {ticket_id}: satisfaction is recorded only at close")
    last = ticket.transitions[-1].at if ticket.transitions else ticket.created_at
    if _aware(now) < _aware(last):
        raise TicketError(f"ticket {ticket_id}: transition time {now} is before the previous one {last}")
    ticket.transitions.append(TicketTransition(from_status=ticket.status, to_status=to_status, at=now, note=note))
    ticket.status = to_status
    session.flush()
    return ticket


def list_tickets(
    session: Session, customer_code: str | None = None, status: str | None = None, owner_code: str | None = None
) -> list[Ticket]:
    """Tickets filtered by customer, status and owner, oldest first."""
    stmt = select(Ticket).order_by(Ticket.id)
    if customer_code is not None:
        stmt = stmt.where(Ticket.customer_id == customer_by_code(session, customer_code).id)
    if status is not None:
        stmt = stmt.where(Ticket.status == status)
    if owner_code is not None:
        stmt = stmt.join(AccountManager, AccountManager.id == Ticket.owner_id).where(AccountManager.code == owner_code)
    return list(session.scalars(stmt))


def _aware(t: datetime) -> datetime:
    # SQLite returns naive datetimes for timezone=True columns; every value we store is UTC-normalised aware.
    from datetime import UTC

    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


@dataclass
class GroupStats:
    """Statistics of one group (a category or a manager)."""

    count: int = 0
    acknowledged: int = 0
    resolved: int = 0
    mean_ack_min: float | None = None
    mean_resolve_min: float | None = None
    ack_breaches: int = 0
    resolve_breaches: int = 0
    mean_satisfaction: float | None = None


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def desk_stats(session: Session, now: datetime,
               customers: set[int] | None = None) -> dict[str, dict[str, GroupStats]]:
    """Per category, manager and tier: counts, mean minutes to ack/resolve, breaches, mean satisfaction.

    {"category": {...}, "manager": {...}, "tier": {...}}; a ticket's tier is its customer's effective tier now (C
    without a record).

    An open ticket past its target at `now` counts as a breach too. `customers`: only these customers' tickets.
    """
    groups: dict[str, dict[str, list[Ticket]]] = {"category": {}, "manager": {}, "tier": {}}
    managers = {m.id: m.code for m in session.scalars(select(AccountManager))}
    tiers = {r.customer_id: r.effective for r in session.scalars(select(TierRecord))}
    stmt = select(Ticket)
    if customers is not None:
        stmt = stmt.where(Ticket.customer_id.in_(sorted(customers)))
    for t in session.scalars(stmt):
        groups["category"].setdefault(t.category, []).append(t)
        groups["manager"].setdefault(managers.get(t.owner_id or -1, "(unassigned)"), []).append(t)
        groups["tier"].setdefault(tiers.get(t.customer_id, _DEFAULT_TIER), []).append(t)
    out: dict[str, dict[str, GroupStats]] = {"category": {}, "manager": {}, "tier": {}}
    for dim, by_key in groups.items():
        for key, tickets in by_key.items():
            st = GroupStats(count=len(tickets))
            acks: list[float] = []
            res: list[float] = []
            sats: list[float] = []
            for t in tickets:
                created = _aware(t.created_at)
                first = {tr.to_status: _aware(tr.at) for tr in reversed(t.transitions)}
                ack_at, res_at = first.get("acknowledged"), first.get("resolved")
                if ack_at is not None:
                    acks.append((ack_at - created).total_seconds() / 60)
                if res_at is not None:
                    res.append((res_at - created).total_seconds() / 60)
                ack_ref = ack_at if ack_at is not None else _aware(now)
                res_ref = res_at if res_at is not None else _aware(now)
                st.ack_breaches += (ack_ref - created).total_seconds() / 60 > t.ack_target_min
                st.resolve_breaches += (res_ref - created).total_seconds() / 60 > t.resolve_target_min
                if t.satisfaction is not None:
                    sats.append(float(t.satisfaction))
            st.acknowledged, st.resolved = len(acks), len(res)
            st.mean_ack_min, st.mean_resolve_min, st.mean_satisfaction = _mean(acks), _mean(res), _mean(sats)
            out[dim][key] = st
    return out
