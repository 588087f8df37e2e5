"""The service desk and the alerts, in one place: the API routers and the portal pages both call these.

A ticket moves along one workflow (`crm_bridge.desk`) under one role rule (`gateway.auth.roles`): a role with the
desk moves any ticket it sees; a customer may only close its resolved ticket with a rating, or reopen it. The
surfaces check which *customers* a caller sees before they call (an id the caller may not see is a 404 there); the
use cases check what the caller may *do*, and write the audit log, so a portal form and its API route cannot differ.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Select, func, select
from sqlalchemy.orm import QueryableAttribute, Session

from crm_bridge.alerts import AlertError, acknowledge, open_ticket, resolve
from crm_bridge.desk import NEXT, TicketError, create_ticket, transition
from crm_bridge.registry.models import AccountManager, Alert, Customer, Ticket
from crm_bridge.registry.repo import managers_of_customer
from gateway.api.schemas.desk import AlertPublic, TicketPublic, TransitionPublic
from gateway.auth.roles import Capability, allowed
from gateway.usecases.errors import BadInput, Conflict, Forbidden, NotFound

# Moves a role with tickets but not the desk (a customer) may make: close with a rating, or reopen.
CUSTOMER_MOVES = frozenset({"closed", "in_progress"})
# The desk's next move from each status, from the one workflow (closing is the customer's, with a rating).
NEXT_ON_DESK = {status: moves[0] for status, moves in NEXT.items() if moves and moves[0] != "closed"}
TicketStatus = Literal["new", "acknowledged", "in_progress", "resolved", "closed"]
AlertStatus = Literal["open", "acknowledged", "resolved"]
AlertAction = Literal["acknowledge", "resolve", "ticket"]
# Who may take each alert action (the API routes and portal forms declare the same capability).
ALERT_ACTIONS: dict[str, Capability] = {"acknowledge": Capability.ALERT_ACKNOWLEDGE,
                                        "resolve": Capability.ALERT_RESOLVE, "ticket": Capability.TICKET_DESK}
Audit = Callable[[str, str, str | None, str | None, str | None], None]


@dataclass(frozen=True)
class Actor:
    """Who is acting: for the role rule, the scope of lists and the audit log."""

    username: str
    role: str
    customer: str | None  # a customer user's own account
    customers: frozenset[str] | None  # the accounts it sees; None: every one
    client: str | None = None  # its address, for the audit log


def may_move(role: str, to: str) -> bool:
    """The one rule for moving a ticket: the desk moves any; a customer only closes (rates) or reopens."""
    return allowed(role, Capability.TICKET_DESK) or (allowed(role, Capability.TICKETS) and to in CUSTOMER_MOVES)


def alert_public(a: Alert) -> AlertPublic:
    return AlertPublic(id=a.id, type=a.type, severity=a.severity, customer=a.customer_code, meter=a.meter_code,
                       window_start=a.window_start.isoformat(), window_end=a.window_end.isoformat(),
                       message=a.message, status=a.status, opened_at=a.opened_at.isoformat(),
                       acknowledged_at=a.acknowledged_at.isoformat() if a.acknowledged_at else None,
                       resolved_at=a.resolved_at.isoformat() if a.resolved_at else None, ticket_id=a.ticket_id)


def ticket_public(t: Ticket, customer: str, owner: str | None) -> TicketPublic:
    return TicketPublic(id=t.id, customer=customer, kind=t.kind, category=t.category, title=t.title,
                        status=t.status, owner=owner, created_at=t.created_at.isoformat(),
                        ack_target_min=t.ack_target_min, resolve_target_min=t.resolve_target_min,
                        satisfaction=t.satisfaction,
                        transitions=[TransitionPublic(from_status=x.from_status, to=x.to_status, at=x.at.isoformat(),
                                                      note=x.note) for x in t.transitions])


def _scoped(q: Select[Any], column: QueryableAttribute[str], actor: Actor, customer: str | None) -> Select[Any]:
    if customer is not None:
        return q.where(column == customer)
    if actor.customers is not None:
        return q.where(column.in_(sorted(actor.customers)))
    return q


class Desk:
    """Tickets and alerts on one registry session; `audit` records every change (the auth service's log)."""

    def __init__(self, session: Session, audit: Audit, now: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.s = session
        self._audit = audit
        self._now = now

    def owner_of_alert(self, alert_id: int) -> str | None:
        """The customer an alert belongs to; None when there is no such alert."""
        return self.s.scalar(select(Alert.customer_code).where(Alert.id == alert_id))

    def owner_of_ticket(self, ticket_id: int) -> str | None:
        """The customer a ticket belongs to; None when there is no such ticket."""
        return self.s.scalar(select(Customer.code).join(Ticket, Ticket.customer_id == Customer.id)
                             .where(Ticket.id == ticket_id))

    # -- tickets ------------------------------------------------------------------------------------------------

    def ticket(self, ticket_id: int) -> TicketPublic:
        row = self.s.execute(select(Ticket, Customer.code, AccountManager.code)
                             .join(Customer, Customer.id == Ticket.customer_id)
                             .outerjoin(AccountManager, AccountManager.id == Ticket.owner_id)
                             .where(Ticket.id == ticket_id)).one_or_none()
        if row is None:
            raise NotFound(f"ticket {ticket_id} not found", where="ticket_id")
        return ticket_public(row[0], row[1], row[2])

    def ticket_of(self, ticket_id: int, customer: str) -> TicketPublic:
        """The ticket, when it is `customer`'s (NotFound otherwise: a page under one customer shows only its own)."""
        t = self.ticket(ticket_id)
        if t.customer != customer:
            raise NotFound(f"ticket {ticket_id} not found", where="ticket_id")
        return t

    def tickets(self, actor: Actor, customer: str | None = None, status: TicketStatus | None = None,
                limit: int = 50, offset: int = 0) -> tuple[list[TicketPublic], int]:
        """Tickets of the customers `actor` sees (or of `customer`), newest first, and how many there are in all."""
        q = _scoped(select(Ticket.id).join(Customer, Customer.id == Ticket.customer_id), Customer.code, actor,
                    customer)
        if status is not None:
            q = q.where(Ticket.status == status)
        total = self.s.scalar(select(func.count()).select_from(q.subquery())) or 0
        ids: Sequence[int] = self.s.scalars(q.order_by(Ticket.id.desc()).limit(limit).offset(offset)).all()
        return [self.ticket(i) for i in ids], total

    def open_ticket(self, actor: Actor, customer: str | None, kind: str, category: str, title: str) -> TicketPublic:
        """Open a request or complaint; a customer opens for itself; the account's manager owns it."""
        customer = customer or actor.customer
        if customer is None:
            raise BadInput("customer: required for your role", where="customer")
        if not allowed(actor.role, Capability.TICKETS):
            raise Forbidden(f"role {actor.role} may not open service requests")
        owners = managers_of_customer(self.s, customer)
        try:
            t = create_ticket(self.s, customer, kind, category, title, self._now(),
                              owner_code=owners[0].code if owners else None)
        except TicketError as exc:
            raise BadInput(str(exc)) from None
        self.s.commit()
        self._audit(actor.username, "ticket.open", f"ticket:{t.id}", f"{customer} {kind} {category}", actor.client)
        return self.ticket(t.id)

    def move_ticket(self, actor: Actor, ticket_id: int, to: str, note: str | None = None,
                    satisfaction: int | None = None) -> TicketPublic:
        """Move along new -> acknowledged -> in progress -> resolved -> closed (closing needs a 1-5 rating)."""
        if not may_move(actor.role, to):
            raise Forbidden(f"role {actor.role} may close (with a rating) or reopen its ticket, nothing else")
        try:
            transition(self.s, ticket_id, to, self._now(), note=note, satisfaction=satisfaction)
        except TicketError as exc:
            raise Conflict(str(exc)) from None
        self.s.commit()
        action = "ticket.rate" if to == "closed" and satisfaction is not None else "ticket.transition"
        self._audit(actor.username, action, f"ticket:{ticket_id}", str(satisfaction) if action == "ticket.rate"
                    else to, actor.client)
        return self.ticket(ticket_id)

    # -- alerts -------------------------------------------------------------------------------------------------

    def alert(self, alert_id: int) -> AlertPublic:
        a = self.s.get(Alert, alert_id)
        if a is None:
            raise NotFound(f"alert {alert_id} not found", where="alert_id")
        return alert_public(a)

    def alerts(self, actor: Actor, customer: str | None = None, status: AlertStatus | None = None,
               limit: int = 50, offset: int = 0) -> tuple[list[AlertPublic], int]:
        """Alerts of the customers `actor` sees (or of `customer`), newest first, and how many in all."""
        q = _scoped(select(Alert.id), Alert.customer_code, actor, customer)
        if status is not None:
            q = q.where(Alert.status == status)
        total = self.s.scalar(select(func.count()).select_from(q.subquery())) or 0
        ids = self.s.scalars(q.order_by(Alert.opened_at.desc(), Alert.id.desc()).limit(limit).offset(offset)).all()
        return [self.alert(i) for i in ids], total

    def change_alert(self, actor: Actor, alert_id: int, action: AlertAction,
                     customer: str | None = None) -> AlertPublic:
        """Acknowledge, resolve, or open a ticket for an alert (`customer`: it must be that customer's)."""
        if not allowed(actor.role, ALERT_ACTIONS[action]):
            raise Forbidden(f"role {actor.role} may not {action} alerts")
        if customer is not None and self.alert(alert_id).customer != customer:
            raise NotFound(f"alert {alert_id} not found", where="alert_id")
        now = self._now()
        try:
            if action == "acknowledge":
                acknowledge(self.s, alert_id, now)
            elif action == "resolve":
                resolve(self.s, alert_id, now)
            else:
                open_ticket(self.s, alert_id, now)
        except AlertError as exc:
            raise Conflict(str(exc)) from None
        self.s.commit()
        self._audit(actor.username, f"alert.{action}", f"alert:{alert_id}", None, actor.client)
        return self.alert(alert_id)


__all__ = ["ALERT_ACTIONS", "CUSTOMER_MOVES", "NEXT_ON_DESK", "Actor", "Desk", "alert_public", "may_move",
           "ticket_public"]
