"""Notification records, dead letters and a user's notification preferences."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

NotificationStatus = Literal["queued", "held", "digest", "sending", "delivered", "failed", "digested"]


class NotificationPublic(BaseModel):
    """One message to one recipient over one channel, and what became of it."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 41, "event": "alert.opened", "event_key": "alert:17:alert.opened", "customer": "acme",
        "recipient": "wang", "channel": "mail", "address": "wang@utility.example", "language": "zh",
        "subject": "【严重】Acme Steel (acme)：demand_watch 告警", "status": "failed", "attempts": 5,
        "error": "SMTP smtp.utility.example:587: sending ... failed: (421, b'Service not available')",
        "created_at": "2026-12-02T06:40:00+00:00", "next_attempt_at": None, "sent_at": None,
        "dead_letter_id": 3, "replay_of": None}]})

    id: int
    event: str = Field(description="alert.opened, alert.escalated, alert.resolved, ticket.opened, ticket.due_soon, "
                                   "ticket.overdue, ticket.escalated, report.ready, threshold.crossed or digest")
    event_key: str
    customer: str | None
    recipient: str = Field(description="A username, manager:<code> (a manager without a login) or channel:<name>")
    channel: str
    address: str | None
    language: str
    subject: str
    status: NotificationStatus
    attempts: int
    error: str | None = Field(description="Why the last attempt failed (or why it cannot be sent)")
    created_at: str
    next_attempt_at: str | None = Field(description="When it is (re)tried: after backoff, quiet hours or digest")
    sent_at: str | None
    dead_letter_id: int | None
    replay_of: int | None = Field(description="The dead letter this message replays")


class DeadLetterPublic(BaseModel):
    """A delivery that failed for good; `notification_id` is the record it ended, `replays` its later tries."""

    id: int
    url: str = Field(description="Where it was going (SMTP server, webhook or robot URL), without secrets")
    event: str
    error: str
    attempts: int
    at: str
    notification_id: int | None
    replays: list[int]


class ReplayQueued(BaseModel):
    dead_letter_id: int
    notification_id: int
    status: NotificationStatus


class NotificationPreferencesPublic(BaseModel):
    """The caller's own settings (null: the role's default) and what it currently gets."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "username": "cust-acme", "role": "customer", "email": "ops@acme.example", "events": None,
        "channels": None, "quiet_hours": "22:00-07:00", "timezone": None, "digest": False,
        "effective_events": ["alert.opened", "alert.resolved", "threshold.crossed", "report.ready"],
        "effective_channels": ["mail"], "available_events": ["alert.opened", "alert.resolved", "report.ready",
                                                             "threshold.crossed"],
        "available_channels": ["mail", "ops"]}]})

    username: str
    role: str
    email: str | None
    events: list[str] | None
    channels: list[str] | None
    quiet_hours: str | None = Field(description="HH:MM-HH:MM in `timezone` (or the account's): held until the end")
    timezone: str | None
    digest: bool | None
    effective_events: list[str]
    effective_channels: list[str]
    available_events: list[str]
    available_channels: list[str]


class NotificationPreferencesUpdate(BaseModel):
    """Replaces the caller's settings; a null field goes back to the role's default."""

    model_config = ConfigDict(extra="forbid")
    email: str | None = Field(None, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")
    events: list[str] | None = Field(None, max_length=20)
    channels: list[str] | None = Field(None, max_length=20)
    quiet_hours: str | None = Field(None, max_length=11, description="HH:MM-HH:MM, such as 22:00-07:00")
    timezone: str | None = Field(None, max_length=64)
    digest: bool | None = None
