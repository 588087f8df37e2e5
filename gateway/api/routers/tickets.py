"""Service desk: open a request or complaint, follow it, comment, assign, move it through the workflow, rate it.

The workflow and the role rule are the use cases' (`gateway/usecases/desk.py`), shared with the portal.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, File, Path, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from crm_bridge.desk.attachments import MAX_BYTES
from gateway.api.deps import Page, PageParams
from gateway.api.errors import not_found
from gateway.api.roles import Capability, needs
from gateway.api.schemas.desk import DeskStats, TicketPublic
from gateway.api.scope import AccessDep, ActorDep, DeskDep, GatewayDep, TicketId, customer_in_scope
from gateway.usecases.desk import TicketStatus

router = APIRouter(prefix="/api/v1/tickets", tags=["tickets"], dependencies=[needs(Capability.TICKETS)])


class NewTicket(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer: str | None = Field(None, max_length=128, description="Required for managers and admins")
    kind: Literal["request", "complaint"] = "request"
    category: str = Field(min_length=1, max_length=60)
    title: str = Field(min_length=1, max_length=300)
    description: str | None = Field(None, max_length=10_000)
    contact: str | None = Field(None, max_length=200, description="Who to call back: a name, a phone, an address")


class NewComment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=10_000)
    internal: bool = Field(False, description="A note for the desk only (managers, admins); never shown to the "
                                              "customer")


class Assignment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    manager: str = Field(min_length=1, max_length=64, description="An account manager of the ticket's customer")


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
    return desk.open_ticket(actor, customer, body.kind, body.category, body.title, body.description, body.contact)


_FILE = {"schema": {"type": "string", "format": "binary"}}


@router.get("/attachments/{attachment_id}", response_class=Response, responses={200: {
    "description": "The file (Content-Disposition: attachment), with the type read from its content",
    "content": {kind: _FILE for kind in ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf",
                                         "text/plain")}}})
def get_attachment(attachment_id: Annotated[int, Path(ge=1, le=2**62, description="Attachment id")], desk: DeskDep,
                   access: AccessDep) -> Response:
    """A ticket's file, as a download (never shown inline); 404 unless the caller sees the ticket's customer."""
    if not access.sees(desk.owner_of_attachment(attachment_id)):
        raise not_found("attachment", attachment_id)
    name, kind, data = desk.attachment(attachment_id)
    return Response(data, media_type=kind,
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"})


@router.get("/stats", dependencies=[needs(Capability.TICKET_DESK)])
def ticket_stats(desk: DeskDep, actor: ActorDep) -> DeskStats:
    """Response and resolution times against target, breaches and satisfaction per manager, category and tier.

    Over the tickets of the customers the caller sees.
    """
    return desk.stats(actor)


@router.get("/{ticket_id}")
def get_ticket(ticket_id: TicketId, desk: DeskDep, actor: ActorDep) -> TicketPublic:
    """The ticket with its thread (internal notes only for the desk) and its due time."""
    return desk.ticket(ticket_id, actor)


@router.post("/{ticket_id}/comments", status_code=201)
def comment_ticket(ticket_id: TicketId, body: NewComment, desk: DeskDep, actor: ActorDep) -> TicketPublic:
    """Add to the thread; `internal` notes are the desk's (403 for a customer)."""
    return desk.comment(actor, ticket_id, body.body, body.internal)


@router.post("/{ticket_id}/attachments", status_code=201)
async def attach_file(ticket_id: TicketId, file: Annotated[UploadFile, File()], desk: DeskDep,
                      actor: ActorDep) -> TicketPublic:
    """Attach a picture (PNG, JPEG, GIF, WebP), a PDF or plain text, 5 MB at most.

    The type is read from the content, never from the name; 422 naming `file` otherwise.
    """
    data = await file.read(MAX_BYTES + 1)
    return desk.attach(actor, ticket_id, file.filename or "attachment", data)


@router.post("/{ticket_id}/assign", dependencies=[needs(Capability.TICKET_DESK)])
def assign_ticket(ticket_id: TicketId, body: Assignment, desk: DeskDep, actor: ActorDep) -> TicketPublic:
    """Give the ticket to one of its customer's account managers (422 naming `manager` otherwise)."""
    return desk.assign(actor, ticket_id, body.manager)


@router.post("/{ticket_id}/transition")
def move_ticket(ticket_id: TicketId, body: Move, desk: DeskDep, actor: ActorDep) -> TicketPublic:
    """Move the ticket along new -> acknowledged -> in progress -> resolved -> closed (closing needs a 1-5 rating)."""
    return desk.move_ticket(actor, ticket_id, body.to, body.note, body.satisfaction)


@router.post("/{ticket_id}/rate")
def rate_ticket(ticket_id: TicketId, body: Rating, desk: DeskDep, actor: ActorDep) -> TicketPublic:
    """Close a resolved ticket with the customer's satisfaction score (1-5)."""
    return desk.move_ticket(actor, ticket_id, "closed", body.note, body.satisfaction)
