"""The service desk and the alerts, in one place: the API routers and the portal pages both call these.

A ticket moves along one workflow (`crm_bridge.desk`) under one role rule (`gateway.auth.roles`): a role with the
desk moves any ticket it sees; a customer may only close its resolved ticket with a rating, or reopen it. The
surfaces check which *customers* a caller sees before they call (an id the caller may not see is a 404 there); the
use cases check what the caller may *do*, and write the audit log, so a portal form and its API route cannot differ.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import QueryableAttribute, Session

from crm_bridge.alerts import AlertError, acknowledge, open_ticket, resolve
from crm_bridge.alerts.own_rules import replace_rules, rules_of
from crm_bridge.desk import NEXT, TicketError, add_comment, assign, create_ticket, desk_stats, due, transition
from crm_bridge.desk.attachments import attach
from crm_bridge.registry.models import (
    AccountManager,
    AdviceRequest,
    Alert,
    AlertText,
    Customer,
    Site,
    Ticket,
    TicketAttachment,
)
from crm_bridge.registry.repo import managers_of_customer
from gateway.api.schemas.desk import (
    AlertPublic,
    AlertRule,
    AlertRulesPublic,
    AttachmentPublic,
    CommentPublic,
    DeskStats,
    GroupStatsPublic,
    TicketPublic,
    TransitionPublic,
)
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


class AdviceLinkPublic(BaseModel):
    """The piece of advice a request was opened for, as it stood then (title in English; key and values for others)."""

    ticket_id: int
    customer: str
    advice_key: str
    advice_month: str
    title: str
    text_key: str | None
    params: dict[str, Any]
    money_per_month: float
    currency: str


class AdviceRequestPublic(BaseModel):
    """A request opened for a piece of advice: the link and the ticket."""

    advice: AdviceLinkPublic
    ticket: TicketPublic


def advice_month(today: date) -> str:
    """YYYY-MM of the month the advice is drawn from (`advice_for`: this month from the 8th, else the one before)."""
    first = today.replace(day=1)
    return f"{first if today.day >= 8 else (first - timedelta(days=1)).replace(day=1):%Y-%m}"


def _link_public(r: AdviceRequest) -> AdviceLinkPublic:
    return AdviceLinkPublic(ticket_id=r.ticket_id, customer=r.customer_code, advice_key=r.advice_key,
                            advice_month=r.advice_month, title=r.title, text_key=r.text_key, params=dict(r.params),
                            money_per_month=r.money_per_month, currency=r.currency)


def may_move(role: str, to: str) -> bool:
    """The one rule for moving a ticket: the desk moves any; a customer only closes (rates) or reopens."""
    return allowed(role, Capability.TICKET_DESK) or (allowed(role, Capability.TICKETS) and to in CUSTOMER_MOVES)


def alert_public(a: Alert, text: AlertText | None = None) -> AlertPublic:
    return AlertPublic(id=a.id, type=a.type, severity=a.severity, customer=a.customer_code, meter=a.meter_code,
                       window_start=a.window_start.isoformat(), window_end=a.window_end.isoformat(),
                       message=a.message, message_key=text.key if text else None,
                       message_params=dict(text.params) if text else {}, status=a.status,
                       opened_at=a.opened_at.isoformat(),
                       acknowledged_at=a.acknowledged_at.isoformat() if a.acknowledged_at else None,
                       resolved_at=a.resolved_at.isoformat() if a.resolved_at else None, ticket_id=a.ticket_id)


def ticket_public(t: Ticket, customer: Customer, owner: AccountManager | None, now: datetime,
                  alert_id: int | None = None, internal: bool = False) -> TicketPublic:
    """The ticket as callers see it; `internal`: with the desk's internal notes."""
    d = due(t, now)
    return TicketPublic(id=t.id, customer=customer.code, customer_name=customer.name, kind=t.kind,
                        category=t.category, title=t.title, description=t.description, contact=t.contact,
                        status=t.status, owner=owner.code if owner else None, owner_name=owner.name if owner else None,
                        created_at=t.created_at.isoformat(), ack_target_min=t.ack_target_min,
                        resolve_target_min=t.resolve_target_min, due_at=d.at.isoformat() if d.at else None,
                        due_target=d.target, overdue=d.overdue, satisfaction=t.satisfaction, alert_id=alert_id,
                        transitions=[TransitionPublic(from_status=x.from_status, to=x.to_status, at=x.at.isoformat(),
                                                      note=x.note) for x in t.transitions],
                        comments=[CommentPublic(id=c.id, author=c.author, author_role=c.author_role, body=c.body,
                                                internal=c.internal, at=c.at.isoformat())
                                  for c in t.comments if internal or not c.internal],
                        attachments=[AttachmentPublic(id=a.id, name=a.name, content_type=a.content_type, size=a.size,
                                                      uploaded_by=a.uploaded_by, at=a.at.isoformat())
                                     for a in t.attachments])


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

    def ticket(self, ticket_id: int, actor: Actor | None = None) -> TicketPublic:
        """One ticket; internal notes only when `actor` holds the desk (without an actor: none)."""
        row = self.s.execute(select(Ticket, Customer, AccountManager)
                             .join(Customer, Customer.id == Ticket.customer_id)
                             .outerjoin(AccountManager, AccountManager.id == Ticket.owner_id)
                             .where(Ticket.id == ticket_id)).one_or_none()
        if row is None:
            raise NotFound(f"ticket {ticket_id} not found", where="ticket_id")
        alert_id = self.s.scalar(select(Alert.id).where(Alert.ticket_id == ticket_id).order_by(Alert.id).limit(1))
        internal = actor is not None and allowed(actor.role, Capability.TICKET_DESK)
        return ticket_public(row[0], row[1], row[2], self._now(), alert_id, internal)

    def ticket_of(self, ticket_id: int, customer: str, actor: Actor | None = None) -> TicketPublic:
        """The ticket, when it is `customer`'s (NotFound otherwise: a page under one customer shows only its own)."""
        t = self.ticket(ticket_id, actor)
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
        return [self.ticket(i, actor) for i in ids], total

    def open_ticket(self, actor: Actor, customer: str | None, kind: str, category: str, title: str,
                    description: str | None = None, contact: str | None = None) -> TicketPublic:
        """Open a request or complaint; a customer opens for itself; the account's manager owns it."""
        customer = customer or actor.customer
        if customer is None:
            raise BadInput("customer: required for your role", where="customer")
        if not allowed(actor.role, Capability.TICKETS):
            raise Forbidden(f"role {actor.role} may not open service requests")
        owners = managers_of_customer(self.s, customer)
        try:
            t = create_ticket(self.s, customer, kind, category, title, self._now(),
                              owner_code=owners[0].code if owners else None, description=description,
                              contact=contact)
        except TicketError as exc:
            raise BadInput(str(exc)) from None
        self.s.commit()
        self._audit(actor.username, "ticket.open", f"ticket:{t.id}", f"{customer} {kind} {category}", actor.client)
        return self.ticket(t.id, actor)

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
        return self.ticket(ticket_id, actor)

    def comment(self, actor: Actor, ticket_id: int, body: str, internal: bool = False) -> TicketPublic:
        """Add to the ticket's thread; an internal note (the desk's only) is never shown to the customer."""
        if not allowed(actor.role, Capability.TICKETS):
            raise Forbidden(f"role {actor.role} may not comment on service requests")
        if internal and not allowed(actor.role, Capability.TICKET_DESK):
            raise Forbidden(f"role {actor.role} may not write internal notes")
        try:
            add_comment(self.s, ticket_id, actor.username, actor.role, body, self._now(), internal=internal)
        except TicketError as exc:
            raise BadInput(str(exc), where="body") from None
        self.s.commit()
        self._audit(actor.username, "ticket.note" if internal else "ticket.comment", f"ticket:{ticket_id}", None,
                    actor.client)
        return self.ticket(ticket_id, actor)

    def attach(self, actor: Actor, ticket_id: int, name: str, data: bytes) -> TicketPublic:
        """Attach a file (5 MB at most, its type read from its content); BadInput naming `file` otherwise."""
        if not allowed(actor.role, Capability.TICKETS):
            raise Forbidden(f"role {actor.role} may not attach files to service requests")
        try:
            a = attach(self.s, ticket_id, name, data, actor.username, self._now())
        except TicketError as exc:
            raise BadInput(str(exc), where="file") from None
        self.s.commit()
        self._audit(actor.username, "ticket.attach", f"ticket:{ticket_id}", f"{a.name} {a.content_type} {a.size}",
                    actor.client)
        return self.ticket(ticket_id, actor)

    def owner_of_attachment(self, attachment_id: int) -> str | None:
        """The customer whose ticket holds the attachment; None when there is no such attachment."""
        return self.s.scalar(select(Customer.code).join(Ticket, Ticket.customer_id == Customer.id)
                             .join(TicketAttachment, TicketAttachment.ticket_id == Ticket.id)
                             .where(TicketAttachment.id == attachment_id))

    def attachment(self, attachment_id: int) -> tuple[str, str, bytes]:
        """(name, content type, bytes) of a ticket's file (the surfaces check the caller sees its ticket first)."""
        a = self.s.get(TicketAttachment, attachment_id)
        if a is None:
            raise NotFound(f"attachment {attachment_id} not found", where="attachment_id")
        return a.name, a.content_type, a.data

    def assign(self, actor: Actor, ticket_id: int, manager: str) -> TicketPublic:
        """Give the ticket to an account manager of the ticket's customer."""
        if not allowed(actor.role, Capability.TICKET_DESK):
            raise Forbidden(f"role {actor.role} may not assign tickets")
        customer = self.owner_of_ticket(ticket_id)
        if customer is None:
            raise NotFound(f"ticket {ticket_id} not found", where="ticket_id")
        if manager not in {m.code for m in managers_of_customer(self.s, customer)}:
            raise BadInput(f"manager: {manager!r} is not an account manager of {customer}", where="manager")
        try:
            assign(self.s, ticket_id, manager)
        except TicketError as exc:
            raise BadInput(str(exc), where="manager") from None
        self.s.commit()
        self._audit(actor.username, "ticket.assign", f"ticket:{ticket_id}", manager, actor.client)
        return self.ticket(ticket_id, actor)

    def managers_of(self, customer: str) -> list[tuple[str, str]]:
        """(code, name) of the customer's account managers: whom its tickets may be assigned to."""
        return [(m.code, m.name) for m in managers_of_customer(self.s, customer)]

    def stats(self, actor: Actor) -> DeskStats:
        """Response and resolution against target, and satisfaction, per manager, category and tier."""
        if not allowed(actor.role, Capability.TICKET_DESK):
            raise Forbidden(f"role {actor.role} may not see the desk's statistics")
        ids = None
        if actor.customers is not None:
            ids = set(self.s.scalars(select(Customer.id).where(Customer.code.in_(sorted(actor.customers)))))
        raw = desk_stats(self.s, self._now(), ids)
        return DeskStats(**{dim: {k: GroupStatsPublic(**vars(v)) for k, v in groups.items()}
                            for dim, groups in raw.items()})

    # -- customers' own alert limits ------------------------------------------------------------------------------

    def alert_rules(self, customer: str) -> AlertRulesPublic:
        rows = rules_of(self.s, customer)
        last = max(rows, key=lambda r: r.updated_at, default=None)
        return AlertRulesPublic(
            customer=customer, updated_at=last.updated_at.isoformat() if last else None,
            updated_by=last.updated_by if last else None,
            rules=[AlertRule(site=r.site_code, kw_demand=r.kw_demand, daily_kwh=r.daily_kwh, pf_floor=r.pf_floor,
                             bill_to_date=r.bill_to_date) for r in rows])

    def set_alert_rules(self, actor: Actor, customer: str, rules: Sequence[AlertRule]) -> AlertRulesPublic:
        """Replace the customer's limits; each site must be the customer's, and named once."""
        if not allowed(actor.role, Capability.CONTRACTS):
            raise Forbidden(f"role {actor.role} may not set a customer's alert limits")
        sites = set(self.s.scalars(select(Site.code).join(Customer, Customer.id == Site.customer_id)
                                   .where(Customer.code == customer)))
        seen: set[str | None] = set()
        for i, r in enumerate(rules):
            if r.site is not None and r.site not in sites:
                raise BadInput(f"rules.{i}.site: {r.site!r} is not a site of {customer}", where=f"rules.{i}.site")
            if r.site in seen:
                raise BadInput(f"rules.{i}.site: {r.site or 'the whole account'} is named twice",
                               where=f"rules.{i}.site")
            seen.add(r.site)
        replace_rules(self.s, customer, [r.model_dump() for r in rules], actor.username, self._now())
        self.s.commit()
        self._audit(actor.username, "alert_rules.set", f"customer:{customer}", f"{len(rules)} rules", actor.client)
        return self.alert_rules(customer)

    # -- advice turned into requests ------------------------------------------------------------------------------

    def advice_links(self, customer: str, month: str) -> dict[str, int]:
        """The ticket opened for each advice key of the customer's advice of `month` (YYYY-MM)."""
        rows = self.s.execute(select(AdviceRequest.advice_key, AdviceRequest.ticket_id)
                              .where(AdviceRequest.customer_code == customer, AdviceRequest.advice_month == month))
        return {key: tid for key, tid in rows}

    def advice_of_ticket(self, ticket_id: int) -> AdviceLinkPublic | None:
        """The advice a ticket was opened for; None for a ticket opened otherwise."""
        row = self.s.get(AdviceRequest, ticket_id)
        return _link_public(row) if row is not None else None

    def open_advice_request(self, actor: Actor, customer: str, key: str, month: str,
                            advice: Sequence[Mapping[str, Any]], language: str) -> AdviceRequestPublic:
        """Open a request (category `advice`) for the item `key` of the customer's `advice` of `month`, once.

        The rule is the alerts': the desk opens it (the account's manager owns it). The ticket's title is the
        advice's in the account's `language` (everyone reads one stored title); the link keeps the advice's key and
        values, so the request page shows it in each reader's. NotFound for a key the advice lacks; Conflict when
        the item already has its request.
        """
        from gateway.portal.i18n import advice_title

        if not allowed(actor.role, Capability.TICKET_DESK):
            raise Forbidden(f"role {actor.role} may not open a request for advice")
        item = next((a for a in advice if a.get("kind") == key), None)
        if item is None:
            raise NotFound(f"advice {key!r} not found for {customer} ({month})", where="key")
        existing = self.advice_links(customer, month).get(key)
        if existing is not None:
            raise Conflict(f"advice {key!r} of {customer} ({month}) already has request {existing}",
                           code="advice_linked")
        owners = managers_of_customer(self.s, customer)
        money, currency = float(item.get("money_per_month") or 0.0), str(item.get("currency") or "CNY")
        title = str(item.get("title") or key)
        try:
            with self.s.begin_nested():
                t = create_ticket(self.s, customer, "request", "advice", advice_title(item, language)[:300],
                                  self._now(), owner_code=owners[0].code if owners else None)
                link = AdviceRequest(ticket_id=t.id, customer_code=customer, advice_key=key, advice_month=month,
                                     title=title[:300], text_key=item.get("text_key"),
                                     params=dict(item.get("params") or {}), money_per_month=money,
                                     currency=currency[:3])
                self.s.add(link)
                self.s.flush()
        except IntegrityError:  # another click got there first
            raise Conflict(f"advice {key!r} of {customer} ({month}) already has a request",
                           code="advice_linked") from None
        except TicketError as exc:
            raise BadInput(str(exc)) from None
        self.s.commit()
        self._audit(actor.username, "ticket.open", f"ticket:{t.id}", f"{customer} advice {key} {month}", actor.client)
        return AdviceRequestPublic(advice=_link_public(link), ticket=self.ticket(t.id, actor))

    # -- alerts -------------------------------------------------------------------------------------------------

    def alert(self, alert_id: int) -> AlertPublic:
        a = self.s.get(Alert, alert_id)
        if a is None:
            raise NotFound(f"alert {alert_id} not found", where="alert_id")
        return alert_public(a, self.s.get(AlertText, alert_id))

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
                owners = managers_of_customer(self.s, self.alert(alert_id).customer)
                open_ticket(self.s, alert_id, now, owner_code=owners[0].code if owners else None)
        except AlertError as exc:
            raise Conflict(str(exc)) from None
        self.s.commit()
        self._audit(actor.username, f"alert.{action}", f"alert:{alert_id}", None, actor.client)
        return self.alert(alert_id)


__all__ = ["ALERT_ACTIONS", "CUSTOMER_MOVES", "NEXT_ON_DESK", "Actor", "AdviceLinkPublic", "AdviceRequestPublic",
           "Desk", "advice_month", "alert_public", "may_move", "ticket_public"]
