"""The notifier: queues an event's messages in the database, sends them from a job, retries, records every outcome.

`publish` (called in the transaction of the alert or ticket that caused it) writes the event once under its key and
one `Notification` row per recipient and channel: `queued`, `held` (quiet hours), `digest` (waits for the daily
digest) or `failed` (no address). `deliver_due` (a job) claims due rows, sends each channel's in its own thread so
a dead channel never holds up another, and records `delivered`, or a retry after exponential backoff, or after the
last try `failed` with the reason and a dead letter an admin can replay. A row claimed by a run that never finished
(the process died while sending) is not sent again: it fails as interrupted, replayable, so nobody gets it twice.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from crm_bridge.notify.channels import OutMessage, Sender, build_sender
from crm_bridge.notify.config import NotifyConfig
from crm_bridge.notify.events import Attachment, Event, EventKind, alert_event, ticket_event
from crm_bridge.notify.mail import NotifyError
from crm_bridge.notify.recipients import Audience, Directory, Target, next_digest, quiet_until, urgent
from crm_bridge.notify.texts import AlertText, Rendered, render, render_digest
from crm_bridge.registry.models import (
    Alert,
    Customer,
    DeadLetter,
    Notification,
    NotificationEvent,
    NotificationPreference,
    Ticket,
)

log = logging.getLogger(__name__)

QUEUED, HELD, DIGEST, SENDING, DELIVERED, FAILED, DIGESTED = (
    "queued", "held", "digest", "sending", "delivered", "failed", "digested")
STATUSES = (QUEUED, HELD, DIGEST, SENDING, DELIVERED, FAILED, DIGESTED)
# A claimed row older than this belongs to a run that died while sending.
STALE_CLAIM = timedelta(minutes=10)


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


@dataclass
class DeliveryStats:
    """What one `deliver_due` run did."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    interrupted: int = 0
    deferred: int = 0  # not tried: their channel had just failed in this run


class _Deferred(NotifyError):
    """Not attempted in this run: the channel's previous message failed with a transport error."""


class Notifier:
    """Publishes events into the queue and works the queue. One per database; thread-safe (no mutable state)."""

    def __init__(self, config: NotifyConfig, directory: Directory, environ: Mapping[str, str],
                 clock: Callable[[], datetime] = _now, alert_text: AlertText | None = None) -> None:
        """A notifier for `config`'s channels and `directory`'s people.

        `alert_text` renders an alert's message from its key in a recipient's language (see texts.values); without
        it, messages carry the alert's stored English text.
        """
        self.config = config
        self.alert_text = alert_text
        self.audience = Audience(config, directory)
        self.senders: dict[str, Sender] = {n: build_sender(n, c, environ) for n, c in config.channels.items()}
        self.clock = clock

    # -- publishing ------------------------------------------------------------------------------------------
    def __call__(self, session: Session, event: Event) -> None:
        """The publisher hook (`session.info[PUBLISHER]`)."""
        self.publish(session, event)

    def publish(self, session: Session, event: Event) -> list[Notification]:
        """Queue `event`'s messages in `session` (not committed here); [] when its key was published before."""
        if not self.config.enabled:
            return []
        now = self.clock()
        # One savepoint: the event and its messages are written together or not at all (a failure here rolls
        # back only them, never the caller's alert or ticket).
        try:
            with session.begin_nested():
                row = NotificationEvent(
                    key=event.key, kind=event.kind.value, customer_code=event.customer, severity=event.severity,
                    data=dict(event.data), at=event.at,
                    attachment_name=event.attachment.filename if event.attachment else None,
                    attachment_type=event.attachment.content_type if event.attachment else None,
                    attachment=event.attachment.data if event.attachment else None,
                )
                session.add(row)
                session.flush()
                label = self._customer_label(session, event.customer)
                made = [self._queue(session, row, event, t, label, now)
                        for t in self.audience.targets(session, event)]
        except IntegrityError:
            log.debug("notification event %s was published before", event.key)
            return []
        log.info("%s %s: %d notification(s) queued", event.kind.value, event.key, len(made))
        return made

    def _customer_label(self, session: Session, code: str | None) -> str:
        if code is None:
            return ""
        name = session.scalar(select(Customer.name).where(Customer.code == code))
        return f"{name} ({code})" if name and name != code else code

    def _queue(self, session: Session, row: NotificationEvent, event: Event, t: Target, label: str,
               now: datetime) -> Notification:
        text = render(event.kind, {**event.data, "severity": event.severity or event.data.get("severity")}, label,
                      t.language, t.timezone, self.alert_text)
        status, error = QUEUED, t.error
        due: datetime | None = now
        if error is not None:
            status, due = FAILED, None
        elif t.digest and not urgent(event):
            status, due = DIGEST, next_digest(now, self.config.digest_time, t.timezone)
        elif not urgent(event) and (until := quiet_until(now, t.quiet, t.timezone)) is not None:
            status, due = HELD, until
        n = Notification(event_id=row.id, recipient=t.recipient, channel=t.channel, address=t.address,
                         language=t.language, subject=text.subject[:300], body=text.body, status=status, attempts=0,
                         error=error, created_at=now, next_attempt_at=due)
        session.add(n)
        session.flush()
        return n

    # -- sending ---------------------------------------------------------------------------------------------
    def deliver_due(self, db: sessionmaker[Session], limit: int = 200) -> DeliveryStats:
        """Send what is due now (queued, held past quiet hours); record each outcome. Never raises for a channel."""
        stats = DeliveryStats()
        now = self.clock()
        with db() as session:
            stats.interrupted = self._fail_interrupted(session, now)
            ids = list(session.scalars(
                select(Notification.id).where(Notification.status.in_((QUEUED, HELD)),
                                              Notification.next_attempt_at <= now)
                .order_by(Notification.next_attempt_at, Notification.id).limit(limit)))
            if not ids:
                session.commit()
                return stats
            # Claim first and commit: from here a crash leaves them `sending`, never sent twice.
            session.execute(update(Notification).where(Notification.id.in_(ids), Notification.status.in_(
                (QUEUED, HELD))).values(status=SENDING, next_attempt_at=now))
            session.commit()
            rows = list(session.scalars(select(Notification).where(Notification.id.in_(ids),
                                                                   Notification.status == SENDING)))
            messages = [(n.id, n.channel, self._message(n)) for n in rows]
        by_channel: dict[str, list[tuple[int, OutMessage]]] = defaultdict(list)
        for nid, channel, msg in messages:
            by_channel[channel].append((nid, msg))
        results: list[tuple[int, NotifyError | None]] = []
        with ThreadPoolExecutor(max_workers=max(1, len(by_channel)), thread_name_prefix="notify") as pool:
            for part in pool.map(lambda item: self._send_channel(*item), by_channel.items()):
                results += part
        with db() as session:
            for nid, error in results:
                n = session.get(Notification, nid)
                if n is None:
                    continue
                if isinstance(error, _Deferred):
                    n.status, n.error = QUEUED, f"not tried: the channel had just failed ({error})"
                    n.next_attempt_at = self.clock() + timedelta(seconds=self.config.retry.delay_s(1))
                    stats.deferred += 1
                    continue
                n.attempts += 1
                if error is None:
                    n.status, n.sent_at, n.error, n.next_attempt_at = DELIVERED, self.clock(), None, None
                    stats.delivered += 1
                elif error.permanent or n.attempts >= self.config.retry.attempts:
                    self._fail(session, n, str(error), self.clock())
                    stats.failed += 1
                else:
                    n.status, n.error = QUEUED, str(error)
                    n.next_attempt_at = self.clock() + timedelta(seconds=self.config.retry.delay_s(n.attempts))
                    stats.retrying += 1
                    log.warning("notification %d over %s, attempt %d/%d failed (retrying): %s", nid, n.channel,
                                n.attempts, self.config.retry.attempts, error)
            session.commit()
        return stats

    def _message(self, n: Notification) -> OutMessage:
        ev = n.event
        attachment = (Attachment(ev.attachment_name or "attachment", ev.attachment_type or "application/octet-stream",
                                 ev.attachment) if ev.attachment is not None else None)
        return OutMessage(notification_id=n.id, event_key=ev.key, event=ev.kind, customer=ev.customer_code,
                          recipient=n.recipient, address=n.address, language=n.language, subject=n.subject,
                          body=n.body, data=dict(ev.data), attachment=attachment)

    def _send_channel(self, channel: str, items: list[tuple[int, OutMessage]]) -> list[tuple[int, NotifyError | None]]:
        sender = self.senders.get(channel)
        out: list[tuple[int, NotifyError | None]] = []
        if sender is None:
            err = NotifyError(f"channel {channel!r} is not configured (any more)", permanent=True)
            return [(nid, err) for nid, _ in items]
        cfg = self.config.channels[channel]
        down: NotifyError | None = None
        with httpx.Client(timeout=cfg.timeout_s) as http:
            for nid, msg in items:
                if down is not None:  # the channel just failed: the rest wait for the next run, not for timeouts
                    out.append((nid, _Deferred(str(down))))
                    continue
                try:
                    sender.send(msg, http)
                except NotifyError as exc:
                    out.append((nid, exc))
                    down = None if exc.permanent else exc
                except Exception as exc:  # noqa: BLE001 - a sender's bug must fail its message, not the job
                    log.exception("notification %d over %s: unexpected error", nid, channel)
                    out.append((nid, NotifyError(f"{type(exc).__name__}: {exc}")))
                else:
                    out.append((nid, None))
        return out

    def _fail(self, session: Session, n: Notification, error: str, now: datetime) -> None:
        """Failed for good: the reason on the record, and a dead letter an admin can list and replay."""
        sender = self.senders.get(n.channel)
        dl = DeadLetter(url=(sender.where if sender else n.channel)[:500], event=n.event.kind,
                        payload={"notification_id": n.id, "channel": n.channel, "recipient": n.recipient,
                                 "subject": n.subject},
                        error=error, attempts=n.attempts, at=now)
        session.add(dl)
        session.flush()
        n.status, n.error, n.next_attempt_at, n.dead_letter_id = FAILED, error, None, dl.id
        log.error("notification %d (%s) over %s to %s failed after %d attempt(s): %s", n.id, n.event.kind,
                  n.channel, n.recipient, n.attempts, error)

    def _fail_interrupted(self, session: Session, now: datetime) -> int:
        stale = list(session.scalars(select(Notification).where(
            Notification.status == SENDING, Notification.next_attempt_at < now - STALE_CLAIM)))
        for n in stale:
            n.attempts += 1
            self._fail(session, n, "interrupted while sending (the gateway stopped): not sent again by itself, "
                                   "so that nobody gets it twice; replay the dead letter to send it", now)
        return len(stale)

    def replay(self, session: Session, dead_letter_id: int) -> Notification:
        """Queue a failed message again as a new record (`replay_of` the dead letter); not committed here."""
        dl = session.get(DeadLetter, dead_letter_id)
        if dl is None:
            raise NotifyError(f"no dead letter with id {dead_letter_id}", permanent=True)
        original = session.scalar(select(Notification).where(Notification.dead_letter_id == dead_letter_id))
        if original is None:
            raise NotifyError(f"dead letter {dead_letter_id} was not left by the notifier (a direct webhook call); "
                              "it cannot be replayed from here", permanent=True)
        pending = session.scalar(select(Notification.id).where(
            Notification.replay_of == dead_letter_id, Notification.status.in_((QUEUED, HELD, SENDING))))
        if pending is not None:
            raise NotifyError(f"dead letter {dead_letter_id} is already being replayed (notification {pending})",
                              permanent=True)
        now = self.clock()
        n = Notification(event_id=original.event_id, recipient=original.recipient, channel=original.channel,
                         address=original.address, language=original.language, subject=original.subject,
                         body=original.body, status=QUEUED, attempts=0, created_at=now, next_attempt_at=now,
                         replay_of=dead_letter_id)
        session.add(n)
        session.flush()
        log.info("dead letter %d replayed as notification %d", dead_letter_id, n.id)
        return n

    # -- the daily digest ------------------------------------------------------------------------------------
    def send_digests(self, session: Session) -> int:
        """Fold every digest message whose time has come into one message per recipient and channel; commit."""
        now = self.clock()
        rows = list(session.scalars(select(Notification).where(
            Notification.status == DIGEST, Notification.next_attempt_at <= now).order_by(Notification.id)))
        groups: dict[tuple[str, str, str | None, str], list[Notification]] = defaultdict(list)
        for n in rows:
            groups[(n.recipient, n.channel, n.address, n.language)].append(n)
        made = 0
        for (recipient, channel, address, lang), items in groups.items():
            tz = self._timezone_of(session, recipient)
            text: Rendered = render_digest([(_aware(i.created_at), i.subject) for i in items], lang, tz)
            key = f"digest:{recipient}:{channel}:{_aware(items[0].next_attempt_at or now).isoformat()}"
            event = NotificationEvent(key=key, kind=EventKind.DIGEST.value, customer_code=None, severity=None,
                                      data={"count": len(items), "ids": [i.id for i in items]}, at=now)
            session.add(event)
            session.flush()
            digest = Notification(event_id=event.id, recipient=recipient, channel=channel, address=address,
                                  language=lang, subject=text.subject[:300], body=text.body, status=QUEUED,
                                  attempts=0, created_at=now, next_attempt_at=now)
            session.add(digest)
            session.flush()
            for i in items:
                i.status, i.digest_id, i.next_attempt_at = DIGESTED, digest.id, None
            made += 1
        session.commit()
        return made

    def _timezone_of(self, session: Session, recipient: str) -> str:
        pref = session.get(NotificationPreference, recipient)
        person = next((p for p in self.audience.directory.people(session) if p.username == recipient), None)
        return self.audience.timezone_of(session, person, pref)

    # -- escalation and deadlines ----------------------------------------------------------------------------
    def _published(self, session: Session, keys: list[str]) -> set[str]:
        if not keys:
            return set()
        return set(session.scalars(select(NotificationEvent.key).where(NotificationEvent.key.in_(keys))))

    def _second_people(self, session: Session, customer: str) -> tuple[str, ...]:
        esc = self.config.escalation
        names: list[str] = []
        for m in self.audience.managers_of(session, customer):
            names += esc.by_manager.get(m.code, [])
        return tuple(dict.fromkeys(names or esc.to))

    def escalate(self, session: Session) -> list[str]:
        """Escalate alerts and requests not acknowledged within their targets (once each); commit; the keys."""
        now = self.clock()
        esc = self.config.escalation
        candidates: list[Event] = []
        for alert in session.scalars(select(Alert).where(Alert.status == "open")):
            minutes = esc.alert_ack_min.get(alert.severity)  # type: ignore[call-overload]
            if minutes is not None and _aware(alert.opened_at) + timedelta(minutes=minutes) <= now:
                ev = alert_event(EventKind.ALERT_ESCALATED, alert, now)
                candidates.append(replace(ev, data={**ev.data, "minutes": minutes},
                                          extra_recipients=self._second_people(session, alert.customer_code)))
        for ticket, code in session.execute(select(Ticket, Customer.code).join(
                Customer, Customer.id == Ticket.customer_id).where(Ticket.status == "new")):
            if _aware(ticket.created_at) + timedelta(minutes=ticket.ack_target_min) <= now:
                ev = ticket_event(EventKind.TICKET_ESCALATED, ticket, code, now)
                candidates.append(replace(ev, data={**ev.data, "minutes": ticket.ack_target_min},
                                          extra_recipients=self._second_people(session, code)))
        return self._publish_new(session, candidates)

    def deadlines(self, session: Session) -> list[str]:
        """Warn of open requests nearing (`due_soon_fraction` of the target gone) or past their resolve target."""
        now = self.clock()
        candidates: list[Event] = []
        for ticket, code in session.execute(select(Ticket, Customer.code).join(
                Customer, Customer.id == Ticket.customer_id).where(Ticket.status.not_in(("resolved", "closed")))):
            created = _aware(ticket.created_at)
            due = created + timedelta(minutes=ticket.resolve_target_min)
            soon = created + timedelta(minutes=ticket.resolve_target_min * self.config.due_soon_fraction)
            if now >= due:
                candidates.append(ticket_event(EventKind.TICKET_OVERDUE, ticket, code, now, due))
            elif now >= soon:
                candidates.append(ticket_event(EventKind.TICKET_DUE_SOON, ticket, code, now, due))
        return self._publish_new(session, candidates)

    def _publish_new(self, session: Session, events: list[Event]) -> list[str]:
        done = self._published(session, [e.key for e in events])
        out = []
        for e in events:
            if e.key not in done:
                self.publish(session, e)
                out.append(e.key)
        session.commit()
        return out
