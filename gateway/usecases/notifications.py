"""Notification records, dead letters and each user's preferences: the use cases behind /api/v1/notifications.

Who may call which is the surface's rule (records and dead letters are an admin's); what a user may choose
(events its role can hear of, channels that exist, a valid quiet-hours span and zone) is checked here, each refusal
naming the field at fault.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_bridge.notify.config import NotifyConfig, parse_quiet_hours
from crm_bridge.notify.events import allowed_events
from crm_bridge.notify.mail import NotifyError
from crm_bridge.notify.service import Notifier
from crm_bridge.registry.models import DeadLetter, Notification, NotificationEvent, NotificationPreference
from gateway.api.schemas.notifications import (
    DeadLetterPublic,
    NotificationPreferencesPublic,
    NotificationPreferencesUpdate,
    NotificationPublic,
    NotificationStatus,
    ReplayQueued,
)
from gateway.usecases.desk import Actor, Audit
from gateway.usecases.errors import BadInput, Conflict, NotFound


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def notification_public(n: Notification, ev: NotificationEvent) -> NotificationPublic:
    return NotificationPublic(
        id=n.id, event=ev.kind, event_key=ev.key, customer=ev.customer_code, recipient=n.recipient, channel=n.channel,
        address=n.address, language=n.language, subject=n.subject, status=n.status,  # type: ignore[arg-type]
        attempts=n.attempts, error=n.error, created_at=n.created_at.isoformat(),
        next_attempt_at=_iso(n.next_attempt_at), sent_at=_iso(n.sent_at), dead_letter_id=n.dead_letter_id,
        replay_of=n.replay_of)


class Notifications:
    """The records, dead letters and preferences on one registry session, under the `[notify]` section."""

    def __init__(self, session: Session, config: NotifyConfig, notifier: Notifier | None, audit: Audit,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.s = session
        self.config = config
        self.notifier = notifier
        self._audit = audit
        self._now = now

    def records(self, limit: int, offset: int, status: NotificationStatus | None = None,
                recipient: str | None = None, customer: str | None = None, event: str | None = None,
                channel: str | None = None) -> tuple[list[NotificationPublic], int]:
        """Every notification recorded, newest first, filtered; and how many match in all."""
        stmt = select(Notification, NotificationEvent).join(NotificationEvent,
                                                            NotificationEvent.id == Notification.event_id)
        for column, value in ((Notification.status, status), (Notification.recipient, recipient),
                              (NotificationEvent.customer_code, customer), (NotificationEvent.kind, event),
                              (Notification.channel, channel)):
            if value is not None:
                stmt = stmt.where(column == value)
        total = self.s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = self.s.execute(stmt.order_by(Notification.id.desc()).limit(limit).offset(offset))
        return [notification_public(n, ev) for n, ev in rows], total

    def dead_letters(self, limit: int, offset: int) -> tuple[list[DeadLetterPublic], int]:
        """Deliveries that failed after their last retry, newest first, with the replays made of each."""
        total = self.s.scalar(select(func.count()).select_from(DeadLetter)) or 0
        letters = list(self.s.scalars(select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit).offset(offset)))
        ids = [d.id for d in letters]
        ended = {dl: nid for dl, nid in self.s.execute(select(Notification.dead_letter_id, Notification.id)
                                                       .where(Notification.dead_letter_id.in_(ids)))}
        replays: dict[int, list[int]] = {}
        for of, nid in self.s.execute(select(Notification.replay_of, Notification.id)
                                      .where(Notification.replay_of.in_(ids)).order_by(Notification.id)):
            if of is not None:
                replays.setdefault(of, []).append(nid)
        items = [DeadLetterPublic(id=d.id, url=d.url, event=d.event, error=d.error, attempts=d.attempts,
                                  at=d.at.isoformat(), notification_id=ended.get(d.id), replays=replays.get(d.id, []))
                 for d in letters]
        return items, total

    def replay(self, actor: Actor, dead_letter_id: int) -> ReplayQueued:
        """Queue a failed message again (the send job delivers it); Conflict while an earlier replay is pending."""
        if self.notifier is None:
            raise Conflict("notifications are not configured ([notify] has no channel)", code="not_configured")
        if self.s.get(DeadLetter, dead_letter_id) is None:
            raise NotFound(f"dead letter {dead_letter_id} not found", where="dead_letter_id")
        try:
            n = self.notifier.replay(self.s, dead_letter_id)
        except NotifyError as exc:
            raise Conflict(str(exc), code="not_replayable") from None
        self.s.commit()
        self._audit(actor.username, "notify.replay", f"dead_letter:{dead_letter_id}", f"notification {n.id}",
                    actor.client)
        return ReplayQueued(dead_letter_id=dead_letter_id, notification_id=n.id, status="queued")

    def preferences(self, actor: Actor) -> NotificationPreferencesPublic:
        """The caller's notification settings and what they come to with its role's defaults."""
        return self._public(actor, self.s.get(NotificationPreference, actor.username))

    def set_preferences(self, actor: Actor, body: NotificationPreferencesUpdate) -> NotificationPreferencesPublic:
        """Replace the caller's settings (which events, which channels, quiet hours, digest, e-mail)."""
        self._check(actor, body)
        row = self.s.get(NotificationPreference, actor.username) or NotificationPreference(username=actor.username)
        start, _, end = (body.quiet_hours or "").strip().partition("-")
        row.email, row.events, row.channels = body.email, body.events, body.channels
        row.quiet_start, row.quiet_end = (start, end) if body.quiet_hours else (None, None)
        row.timezone, row.digest, row.updated_at = body.timezone, body.digest, self._now()
        self.s.add(row)
        self.s.commit()
        self._audit(actor.username, "notify.preferences", actor.username, None, actor.client)
        return self._public(actor, row)

    def _available(self, actor: Actor) -> list[str]:
        return [k.value for k in allowed_events(actor.role)]

    def _public(self, actor: Actor, row: NotificationPreference | None) -> NotificationPreferencesPublic:
        cfg = self.config
        defaults = cfg.role_defaults(actor.role)
        events = row.events if row is not None and row.events is not None else [e.value for e in defaults.events]
        channels = (row.channels if row is not None and row.channels else None) or defaults.channels \
            or cfg.email_channels()
        quiet = f"{row.quiet_start}-{row.quiet_end}" if row is not None and row.quiet_start and row.quiet_end \
            else None
        return NotificationPreferencesPublic(
            username=actor.username, role=actor.role, email=row.email if row else None,
            events=row.events if row else None, channels=row.channels if row else None, quiet_hours=quiet,
            timezone=row.timezone if row else None, digest=row.digest if row else None,
            effective_events=list(events), effective_channels=list(channels),
            available_events=self._available(actor), available_channels=sorted(cfg.channels))

    def _check(self, actor: Actor, body: NotificationPreferencesUpdate) -> None:
        available = self._available(actor)
        for i, e in enumerate(body.events or []):
            if e not in available:
                raise BadInput(f"events[{i}]: {e!r} is not an event you can receive (one of {', '.join(available)})",
                               where=f"events[{i}]")
        for i, c in enumerate(body.channels or []):
            if c not in self.config.channels:
                known = ", ".join(sorted(self.config.channels)) or "none"
                raise BadInput(f"channels[{i}]: no channel {c!r} (channels: {known})", where=f"channels[{i}]")
        if body.quiet_hours:
            try:
                parse_quiet_hours(body.quiet_hours)
            except ValueError as exc:
                raise BadInput(f"quiet_hours: {exc}", where="quiet_hours") from None
        if body.timezone:
            try:
                ZoneInfo(body.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise BadInput(f"timezone: unknown time zone {body.timezone!r} (such as Asia/Shanghai)",
                               where="timezone") from None


__all__ = ["Notifications", "notification_public"]
