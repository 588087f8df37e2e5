"""Alerts and service-desk tickets."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AlertPublic(BaseModel):
    id: int
    type: str
    severity: str
    customer: str
    meter: str | None
    window_start: str
    window_end: str
    message: str
    status: str = Field(description="open, acknowledged or resolved")
    opened_at: str
    acknowledged_at: str | None
    resolved_at: str | None
    ticket_id: int | None


class TransitionPublic(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_status: str | None = Field(alias="from", description="null for the first: the ticket was opened")
    to: str
    at: str
    note: str | None


class TicketPublic(BaseModel):
    id: int
    customer: str
    kind: str = Field(description="request or complaint")
    category: str
    title: str
    status: str = Field(description="new, acknowledged, in_progress, resolved or closed")
    owner: str | None = Field(description="The account manager's code")
    created_at: str
    ack_target_min: int
    resolve_target_min: int
    satisfaction: int | None
    transitions: list[TransitionPublic]
