"""Alerts, service-desk tickets, desk statistics and customers' own alert limits."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AlertPublic(BaseModel):
    id: int
    type: str
    severity: str
    customer: str
    meter: str | None
    window_start: str
    window_end: str
    message: str = Field(description="In English; `message_key` and `message_params` give it in any language")
    message_key: str | None = Field(None, description="The message's key in the portal's catalogue")
    message_params: dict[str, Any] = Field(default_factory=dict)
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


class CommentPublic(BaseModel):
    id: int
    author: str
    author_role: str
    body: str
    internal: bool = Field(description="An internal note: only the desk (managers, admins) sees it")
    at: str


class AttachmentPublic(BaseModel):
    id: int
    name: str
    content_type: str = Field(description="Read from the file's content: image/png, image/jpeg, image/gif, "
                                          "image/webp, application/pdf or text/plain")
    size: int
    uploaded_by: str
    at: str


class TicketPublic(BaseModel):
    id: int
    customer: str
    customer_name: str
    kind: str = Field(description="request or complaint")
    category: str
    title: str
    description: str | None
    contact: str | None
    status: str = Field(description="new, acknowledged, in_progress, resolved or closed")
    owner: str | None = Field(description="The assignee: an account manager's code")
    owner_name: str | None
    created_at: str
    ack_target_min: int
    resolve_target_min: int
    due_at: str | None = Field(description="The next deadline (acknowledge while new, then resolve); null after")
    due_target: str | None = Field(description="ack or resolve: which target `due_at` is")
    overdue: bool
    satisfaction: int | None
    alert_id: int | None = Field(description="The alert this ticket was opened for")
    transitions: list[TransitionPublic]
    comments: list[CommentPublic] = Field(description="The thread; internal notes only for the desk")
    attachments: list[AttachmentPublic] = Field(default_factory=list)


class GroupStatsPublic(BaseModel):
    count: int
    acknowledged: int
    resolved: int
    mean_ack_min: float | None
    mean_resolve_min: float | None
    ack_breaches: int = Field(description="Acknowledged after the target, or still not and past it")
    resolve_breaches: int
    mean_satisfaction: float | None


class DeskStats(BaseModel):
    category: dict[str, GroupStatsPublic]
    manager: dict[str, GroupStatsPublic]
    tier: dict[str, GroupStatsPublic]


class AlertRule(BaseModel):
    """A customer's own limits for the account (`site` null) or one of its sites; a null limit is not watched."""

    model_config = ConfigDict(extra="forbid")
    site: str | None = Field(None, max_length=200, description="A site id of the customer; null: the whole account")
    kw_demand: float | None = Field(None, gt=0, le=1e7, description="15-min demand above this (kW) alerts")
    daily_kwh: float | None = Field(None, gt=0, le=1e9, description="The local day's energy so far above this")
    pf_floor: float | None = Field(None, ge=0.5, le=1.0, description="Month-to-date power factor below this")
    bill_to_date: float | None = Field(None, gt=0, le=1e10, description="Month-to-date energy cost above this")


class AlertRules(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[AlertRule] = Field(max_length=100)


class AlertRulesPublic(AlertRules):
    customer: str
    updated_at: str | None
    updated_by: str | None
