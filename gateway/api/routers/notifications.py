"""Notifications: records and dead letters for admins (list, replay), and every user's own preferences.

The work is `gateway/usecases/notifications.py`'s; this router only declares who may call what.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from gateway.api.deps import Page, PageParams, get_auth
from gateway.api.roles import Capability, needs
from gateway.api.schemas.notifications import (
    DeadLetterPublic,
    NotificationPreferencesPublic,
    NotificationPreferencesUpdate,
    NotificationPublic,
    NotificationStatus,
    ReplayQueued,
)
from gateway.api.scope import ActorDep, GatewayDep, SessionDep
from gateway.auth import AuthService
from gateway.notifications import notifier_of
from gateway.usecases.notifications import Notifications

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])
ADMIN = [needs(Capability.USERS)]


def get_notifications(session: SessionDep, gw: GatewayDep,
                      auth: Annotated[AuthService, Depends(get_auth)]) -> Notifications:
    return Notifications(session, gw.config.notify, notifier_of(gw.db), auth.audit)


NotificationsDep = Annotated[Notifications, Depends(get_notifications)]


@router.get("", dependencies=ADMIN)
def list_notifications(
    notes: NotificationsDep, page: PageParams,
    status: Annotated[NotificationStatus | None, Query(description="Only records in this state")] = None,
    recipient: Annotated[str | None, Query(max_length=200)] = None,
    customer: Annotated[str | None, Query(max_length=64)] = None,
    event: Annotated[str | None, Query(max_length=40, description="An event kind, such as alert.opened")] = None,
    channel: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[NotificationPublic]:
    """Every notification recorded, newest first: who, what event, channel, delivered or failed and why."""
    items, total = notes.records(page.limit, page.offset, status, recipient, customer, event, channel)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/dead-letters", dependencies=ADMIN)
def list_dead_letters(notes: NotificationsDep, page: PageParams) -> Page[DeadLetterPublic]:
    """Deliveries that failed after their last retry, newest first, with the replays made of each."""
    items, total = notes.dead_letters(page.limit, page.offset)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post("/dead-letters/{dead_letter_id}/replay", status_code=202, dependencies=ADMIN)
def replay_dead_letter(dead_letter_id: Annotated[int, Path(ge=1, le=2**31 - 1)], notes: NotificationsDep,
                       actor: ActorDep) -> ReplayQueued:
    """Queue a failed message again (the send job delivers it); 409 while an earlier replay is still pending."""
    return notes.replay(actor, dead_letter_id)


@router.get("/preferences")
def get_preferences(notes: NotificationsDep, actor: ActorDep) -> NotificationPreferencesPublic:
    """The caller's notification settings and what they come to with the role's defaults."""
    return notes.preferences(actor)


@router.put("/preferences")
def put_preferences(body: NotificationPreferencesUpdate, notes: NotificationsDep,
                    actor: ActorDep) -> NotificationPreferencesPublic:
    """Replace the caller's notification settings (which events, which channels, quiet hours, digest, e-mail)."""
    return notes.set_preferences(actor, body)
