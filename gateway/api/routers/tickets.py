"""Service desk: open a request or complaint, follow it, move it through the workflow, rate it at close."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from crm_bridge.desk import TicketError, create_ticket, transition
from crm_bridge.registry.models import AccountManager, Customer, Ticket
from crm_bridge.registry.repo import managers_of_customer
from gateway.api.deps import Page, PageParams, client_of, get_auth
from gateway.api.errors import ApiError, forbidden
from gateway.api.roles import Capability, allowed, needs
from gateway.api.schemas.desk import TicketPublic, TransitionPublic
from gateway.api.scope import AccessDep, GatewayDep, TicketId, customer_in_scope
from gateway.auth import AuthService

router = APIRouter(prefix="/api/v1/tickets", tags=["tickets"], dependencies=[needs(Capability.TICKETS)])
AuthDep = Annotated[AuthService, Depends(get_auth)]
# What a role with tickets but not the desk (a customer) may do: rate and close, or reopen when not satisfied.
CUSTOMER_MOVES = {"closed", "in_progress"}


class NewTicket(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer: str | None = Field(None, max_length=128, description="Required for managers and admins")
    kind: Literal["request", "complaint"] = "request"
    category: str = Field(min_length=1, max_length=60)
    title: str = Field(min_length=1, max_length=300)


class Move(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: Literal["acknowledged", "in_progress", "resolved", "closed"]
    note: str | None = Field(None, max_length=2000)
    satisfaction: int | None = Field(None, ge=1, le=5)


def ticket_public(t: Ticket, customer: str, owner: str | None) -> TicketPublic:
    return TicketPublic(id=t.id, customer=customer, kind=t.kind, category=t.category, title=t.title,
                        status=t.status, owner=owner, created_at=t.created_at.isoformat(),
                        ack_target_min=t.ack_target_min, resolve_target_min=t.resolve_target_min,
                        satisfaction=t.satisfaction,
                        transitions=[TransitionPublic(from_status=x.from_status, to=x.to_status, at=x.at.isoformat(),
                                                      note=x.note) for x in t.transitions])


def _load(gw: GatewayDep, ticket_id: int) -> TicketPublic:
    with gw.db() as s:
        row = s.execute(select(Ticket, Customer.code, AccountManager.code)
                        .join(Customer, Customer.id == Ticket.customer_id)
                        .outerjoin(AccountManager, AccountManager.id == Ticket.owner_id)
                        .where(Ticket.id == ticket_id)).one()
        return ticket_public(row[0], row[1], row[2])


@router.get("")
def list_tickets(gw: GatewayDep, access: AccessDep, page: PageParams,
                 status: Annotated[Literal["new", "acknowledged", "in_progress", "resolved", "closed"] | None,
                                   Query()] = None,
                 customer: Annotated[str | None, Query(max_length=128)] = None) -> Page[TicketPublic]:
    """Tickets of the customers the caller may see: a manager's queue, a customer's own requests."""
    q = select(Ticket.id).join(Customer, Customer.id == Ticket.customer_id)
    if customer is not None:
        q = q.where(Customer.code == customer_in_scope(access, gw, customer))
    elif access.customers is not None:
        q = q.where(Customer.code.in_(sorted(access.customers)))
    if status is not None:
        q = q.where(Ticket.status == status)
    with gw.db() as s:
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        ids = list(s.scalars(q.order_by(Ticket.id.desc()).limit(page.limit).offset(page.offset)))
    return Page(items=[_load(gw, i) for i in ids], total=total, limit=page.limit, offset=page.offset)


@router.post("", status_code=201)
def open_ticket(body: NewTicket, gw: GatewayDep, access: AccessDep, auth: AuthDep, request: Request) -> TicketPublic:
    """Open a ticket; a customer opens for itself, the owner is the account's manager."""
    p = access.principal
    customer = body.customer or p.customer
    if customer is None:
        raise ApiError(422, "customer: required for your role")
    customer_in_scope(access, gw, customer)
    with gw.db() as s:
        owners = managers_of_customer(s, customer)
        try:
            t = create_ticket(s, customer, body.kind, body.category, body.title, datetime.now(UTC),
                              owner_code=owners[0].code if owners else None)
        except TicketError as exc:
            raise ApiError(422, str(exc)) from None
        s.commit()
        tid = t.id
    auth.audit(p.username, "ticket.open", f"ticket:{tid}", f"{customer} {body.kind} {body.category}",
               client_of(request))
    return _load(gw, tid)


@router.get("/{ticket_id}")
def get_ticket(ticket_id: TicketId, gw: GatewayDep) -> TicketPublic:
    return _load(gw, ticket_id)


@router.post("/{ticket_id}/transition")
def move_ticket(ticket_id: TicketId, body: Move, gw: GatewayDep, access: AccessDep, auth: AuthDep,
                request: Request) -> TicketPublic:
    """Move the ticket along new -> acknowledged -> in progress -> resolved -> closed (closing needs a 1-5 rating)."""
    p = access.principal
    if body.to not in CUSTOMER_MOVES and not allowed(p.role, Capability.TICKET_DESK):
        raise forbidden(f"role {p.role} may close (with a rating) or reopen its ticket, nothing else")
    with gw.db() as s:
        try:
            transition(s, ticket_id, body.to, datetime.now(UTC), note=body.note, satisfaction=body.satisfaction)
        except TicketError as exc:
            raise ApiError(409, str(exc)) from None
        s.commit()
    auth.audit(p.username, "ticket.transition", f"ticket:{ticket_id}", body.to, client_of(request))
    return _load(gw, ticket_id)


class Rating(BaseModel):
    model_config = ConfigDict(extra="forbid")
    satisfaction: int = Field(ge=1, le=5)
    note: str | None = Field(None, max_length=2000)


@router.post("/{ticket_id}/rate")
def rate_ticket(ticket_id: TicketId, body: Rating, gw: GatewayDep, access: AccessDep, auth: AuthDep,
                request: Request) -> TicketPublic:
    """Close a resolved ticket with the customer's satisfaction score (1-5)."""
    return move_ticket(ticket_id, Move(to="closed", note=body.note, satisfaction=body.satisfaction), gw, access,
                       auth, request)
