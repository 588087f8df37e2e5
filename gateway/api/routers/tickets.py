"""Service desk: open a request or complaint, follow it, move it through the workflow, rate it at close.

The workflow and the role rule are the use cases' (`gateway/usecases/desk.py`), shared with the portal.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.deps import Page, PageParams
from gateway.api.roles import Capability, needs
from gateway.api.schemas.desk import TicketPublic
from gateway.api.scope import AccessDep, ActorDep, DeskDep, GatewayDep, TicketId, customer_in_scope
from gateway.usecases.desk import TicketStatus

router = APIRouter(prefix="/api/v1/tickets", tags=["tickets"], dependencies=[needs(Capability.TICKETS)])


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


class Rating(BaseModel):
    model_config = ConfigDict(extra="forbid")
    satisfaction: int = Field(ge=1, le=5)
    note: str | None = Field(None, max_length=2000)


@router.get("")
def list_tickets(desk: DeskDep, actor: ActorDep, access: AccessDep, gw: GatewayDep, page: PageParams,
                 status: Annotated[TicketStatus | None, Query()] = None,
                 customer: Annotated[str | None, Query(max_length=128)] = None) -> Page[TicketPublic]:
    """Tickets of the customers the caller may see: a manager's queue, a customer's own requests."""
    if customer is not None:
        customer_in_scope(access, gw, customer)
    items, total = desk.tickets(actor, customer, status, page.limit, page.offset)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post("", status_code=201)
def open_ticket(body: NewTicket, desk: DeskDep, actor: ActorDep, access: AccessDep, gw: GatewayDep) -> TicketPublic:
    """Open a ticket; a customer opens for itself, the owner is the account's manager."""
    customer = body.customer or actor.customer
    if customer is not None:
        customer_in_scope(access, gw, customer)
    return desk.open_ticket(actor, customer, body.kind, body.category, body.title)


@router.get("/{ticket_id}")
def get_ticket(ticket_id: TicketId, desk: DeskDep) -> TicketPublic:
    return desk.ticket(ticket_id)


@router.post("/{ticket_id}/transition")
def move_ticket(ticket_id: TicketId, body: Move, desk: DeskDep, actor: ActorDep) -> TicketPublic:
    """Move the ticket along new -> acknowledged -> in progress -> resolved -> closed (closing needs a 1-5 rating)."""
    return desk.move_ticket(actor, ticket_id, body.to, body.note, body.satisfaction)


@router.post("/{ticket_id}/rate")
def rate_ticket(ticket_id: TicketId, body: Rating, desk: DeskDep, actor: ActorDep) -> TicketPublic:
    """Close a resolved ticket with the customer's satisfaction score (1-5)."""
    return desk.move_ticket(actor, ticket_id, "closed", body.note, body.satisfaction)
