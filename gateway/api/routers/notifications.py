"""Notifications: records and dead letters for admins (list, replay), and every user's own preferences."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy import func, select

from crm_bridge.notify.config import NotifyConfig, parse_quiet_hours
from crm_bridge.notify.events import allowed_events
from crm_bridge.notify.mail import NotifyError
from crm_bridge.registry.models import DeadLetter, Notification, NotificationEvent, NotificationPreference
from gateway.api.deps import CurrentPrincipal, Page, PageParams, get_auth
from gateway.api.errors import ApiError
from gateway.api.roles import Capability, needs
from gateway.api.schemas.notifications import (
    DeadLetterPublic,
    NotificationPreferencesPublic,
    NotificationPreferencesUpdate,
    NotificationPublic,
    NotificationStatus,
    ReplayQueued,
)
from gateway.api.scope import GatewayDep, SessionDep
from gateway.auth import AuthService, Principal
from gateway.notifications import notifier_of

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])
ADMIN = [needs(Capability.USERS)]


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def _public(n: Notification, ev: NotificationEvent) -> NotificationPublic:
    return NotificationPublic(
        id=n.id, event=ev.kind, event_key=ev.key, customer=ev.customer_code, recipient=n.recipient, channel=n.channel,
        address=n.address, language=n.language, subject=n.subject, status=n.status,  # type: ignore[arg-type]
        attempts=n.attempts, error=n.error, created_at=n.created_at.isoformat(),
        next_attempt_at=_iso(n.next_attempt_at), sent_at=_iso(n.sent_at), dead_letter_id=n.dead_letter_id,
        replay_of=n.replay_of)


@router.get("", dependencies=ADMIN)
def list_notifications(
    session: SessionDep, page: PageParams,
    status: Annotated[NotificationStatus | None, Query(description="Only records in this state")] = None,
    recipient: Annotated[str | None, Query(max_length=200)] = None,
    customer: Annotated[str | None, Query(max_length=64)] = None,
    event: Annotated[str | None, Query(max_length=40, description="An event kind, such as alert.opened")] = None,
    channel: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[NotificationPublic]:
    """Every notification recorded, newest first: who, what event, channel, delivered or failed and why."""
    stmt = select(Notification, NotificationEvent).join(NotificationEvent,
                                                        NotificationEvent.id == Notification.event_id)
    for column, value in ((Notification.status, status), (Notification.recipient, recipient),
                          (NotificationEvent.customer_code, customer), (NotificationEvent.kind, event),
                          (Notification.channel, channel)):
        if value is not None:
            stmt = stmt.where(column == value)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.execute(stmt.order_by(Notification.id.desc()).limit(page.limit).offset(page.offset))
    return Page(items=[_public(n, ev) for n, ev in rows], total=total, limit=page.limit, offset=page.offset)


@router.get("/dead-letters", dependencies=ADMIN)
def list_dead_letters(session: SessionDep, page: PageParams) -> Page[DeadLetterPublic]:
    """Deliveries that failed after their last retry, newest first, with the replays made of each."""
    total = session.scalar(select(func.count()).select_from(DeadLetter)) or 0
    letters = list(session.scalars(select(DeadLetter).order_by(DeadLetter.id.desc()).limit(page.limit)
                                   .offset(page.offset)))
    ids = [d.id for d in letters]
    ended = {dl: nid for dl, nid in session.execute(select(Notification.dead_letter_id, Notification.id)
                                                    .where(Notification.dead_letter_id.in_(ids)))}
    replays: dict[int, list[int]] = {}
    for of, nid in session.execute(select(Notification.replay_of, Notification.id)
                                   .where(Notification.replay_of.in_(ids)).order_by(Notification.id)):
        if of is not None:
            replays.setdefault(of, []).append(nid)
    items = [DeadLetterPublic(id=d.id, url=d.url, event=d.event, error=d.error, attempts=d.attempts,
                              at=d.at.isoformat(), notification_id=ended.get(d.id), replays=replays.get(d.id, []))
             for d in letters]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post("/dead-letters/{dead_letter_id}/replay", status_code=202, dependencies=ADMIN)
def replay_dead_letter(
    dead_letter_id: Annotated[int, Path(ge=1, le=2**31 - 1)], session: SessionDep, gw: GatewayDep,
    p: CurrentPrincipal, auth: Annotated[AuthService, Depends(get_auth)],
) -> ReplayQueued:
    """Queue a failed message again (the send job delivers it); 409 while an earlier replay is still pending."""
    notifier = notifier_of(gw.db)
    if notifier is None:
        raise ApiError(409, "notifications are not configured ([notify] has no channel)", code="not_configured")
    if session.get(DeadLetter, dead_letter_id) is None:
        raise ApiError(404, f"dead letter {dead_letter_id} not found")
    try:
        n = notifier.replay(session, dead_letter_id)
    except NotifyError as exc:
        raise ApiError(409, str(exc), code="not_replayable") from None
    session.commit()
    auth.audit(p.username, "notify.replay", f"dead_letter:{dead_letter_id}", f"notification {n.id}")
    return ReplayQueued(dead_letter_id=dead_letter_id, notification_id=n.id, status="queued")


def _config(gw: GatewayDep) -> NotifyConfig:
    return gw.config.notify


ConfigDep = Annotated[NotifyConfig, Depends(_config)]


def _available(p: Principal) -> list[str]:
    return [k.value for k in allowed_events(p.role)]


def _preferences(cfg: NotifyConfig, p: Principal, row: NotificationPreference | None) -> NotificationPreferencesPublic:
    defaults = cfg.role_defaults(p.role)
    events = row.events if row is not None and row.events is not None else [e.value for e in defaults.events]
    channels = (row.channels if row is not None and row.channels else None) or defaults.channels \
        or cfg.email_channels()
    quiet = f"{row.quiet_start}-{row.quiet_end}" if row is not None and row.quiet_start and row.quiet_end else None
    return NotificationPreferencesPublic(
        username=p.username, role=p.role, email=row.email if row else None, events=row.events if row else None,
        channels=row.channels if row else None, quiet_hours=quiet, timezone=row.timezone if row else None,
        digest=row.digest if row else None, effective_events=list(events), effective_channels=list(channels),
        available_events=_available(p), available_channels=sorted(cfg.channels))


@router.get("/preferences")
def get_preferences(p: CurrentPrincipal, session: SessionDep, cfg: ConfigDep) -> NotificationPreferencesPublic:
    """The caller's notification settings and what they come to with the role's defaults."""
    return _preferences(cfg, p, session.get(NotificationPreference, p.username))


def _check(body: NotificationPreferencesUpdate, cfg: NotifyConfig, p: Principal) -> None:
    available = _available(p)
    for i, e in enumerate(body.events or []):
        if e not in available:
            raise ApiError(422, f"events[{i}]: {e!r} is not an event you can receive (one of {', '.join(available)})",
                           detail={"field": f"events[{i}]"})
    for i, c in enumerate(body.channels or []):
        if c not in cfg.channels:
            known = ", ".join(sorted(cfg.channels)) or "none"
            raise ApiError(422, f"channels[{i}]: no channel {c!r} (channels: {known})",
                           detail={"field": f"channels[{i}]"})
    if body.quiet_hours:
        try:
            parse_quiet_hours(body.quiet_hours)
        except ValueError as exc:
            raise ApiError(422, f"quiet_hours: {exc}", detail={"field": "quiet_hours"}) from None
    if body.timezone:
        try:
            ZoneInfo(body.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ApiError(422, f"timezone: unknown time zone {body.timezone!r} (such as Asia/Shanghai)",
                           detail={"field": "timezone"}) from None


@router.put("/preferences")
def put_preferences(body: NotificationPreferencesUpdate, p: CurrentPrincipal, session: SessionDep, cfg: ConfigDep,
                    auth: Annotated[AuthService, Depends(get_auth)]) -> NotificationPreferencesPublic:
    """Replace the caller's notification settings (which events, which channels, quiet hours, digest, e-mail)."""
    _check(body, cfg, p)
    row = session.get(NotificationPreference, p.username) or NotificationPreference(username=p.username)
    start, _, end = (body.quiet_hours or "").strip().partition("-")
    row.email, row.events, row.channels = body.email, body.events, body.channels
    row.quiet_start, row.quiet_end = (start, end) if body.quiet_hours else (None, None)
    row.timezone, row.digest, row.updated_at = body.timezone, body.digest, datetime.now(UTC)
    session.add(row)
    session.commit()
    auth.audit(p.username, "notify.preferences", p.username, None)
    return _preferences(cfg, p, row)
