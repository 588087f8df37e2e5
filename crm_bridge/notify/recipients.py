"""Who hears of an event, over which channel, in which language and zone, now or later (quiet hours, digest).

The account managers of the account always hear; other users by their preferences (or their role's defaults) when
they may see the account; escalation targets when an event names them; group channels by their own subscription.
Users come from a `Directory` the composition root provides (crm_bridge knows no logins).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_bridge.notify.config import EmailChannelConfig, NotifyConfig, parse_quiet_hours
from crm_bridge.notify.events import Event, EventKind, allowed_events
from crm_bridge.notify.texts import language
from crm_bridge.registry.models import AccountManager, Customer, ManagerAssignment, NotificationPreference


@dataclass(frozen=True)
class Person:
    """A user who can be notified: login name, role, the customer or manager code it is bound to, its language."""

    username: str
    role: str
    customer: str | None = None
    manager: str | None = None
    language: str | None = None


class Directory(Protocol):
    """The users of the installation (enabled ones only)."""

    def people(self, session: Session) -> list[Person]: ...


@dataclass(frozen=True)
class Target:
    """One message to queue: to whom, over which channel and address, in which language and zone, and when."""

    recipient: str
    channel: str
    address: str | None
    language: str
    timezone: str
    digest: bool = False
    quiet: tuple[time, time] | None = None
    error: str | None = None  # why it cannot be sent (no address): recorded as failed at once


def urgent(event: Event) -> bool:
    """Critical alerts and escalations go out at once: through quiet hours, never into a digest."""
    return event.severity == "critical" or event.kind in (EventKind.ALERT_ESCALATED, EventKind.TICKET_ESCALATED)


def quiet_until(now: datetime, quiet: tuple[time, time] | None, tz: str) -> datetime | None:
    """The end of the quiet period `now` falls in (local `tz`), or None when `now` is not quiet."""
    if quiet is None:
        return None
    start, end = quiet
    local = now.astimezone(ZoneInfo(tz))
    t = local.time().replace(tzinfo=None)
    inside = start <= t < end if start < end else (t >= start or t < end)
    if not inside:
        return None
    day = local.date() if (start < end or t < end) else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=ZoneInfo(tz))


def next_digest(now: datetime, at: time, tz: str) -> datetime:
    """The next digest time (`at`, local `tz`) after `now`."""
    local = now.astimezone(ZoneInfo(tz))
    candidate = datetime.combine(local.date(), at, tzinfo=ZoneInfo(tz))
    return candidate if candidate > local else datetime.combine(local.date() + timedelta(days=1), at,
                                                                 tzinfo=ZoneInfo(tz))


def _sees(p: Person, customer: str | None, managers: set[str]) -> bool:
    if p.role in ("admin", "engineer"):
        return True
    if p.role == "account_manager":
        return p.manager is not None and p.manager in managers
    return p.role == "customer" and customer is not None and p.customer == customer


class Audience:
    """Resolves the targets of events against the registry and the directory, in one session."""

    def __init__(self, config: NotifyConfig, directory: Directory) -> None:
        self.config = config
        self.directory = directory

    def _customer_tz(self, session: Session, customer: str | None) -> str | None:
        if customer is None:
            return None
        return session.scalar(select(Customer.timezone).where(Customer.code == customer))

    def timezone_of(self, session: Session, p: Person | None, pref: NotificationPreference | None) -> str:
        """A user's zone: its own preference, else its company's (customers), else the section's."""
        if pref is not None and pref.timezone:
            return pref.timezone
        if p is not None and p.role == "customer":
            tz = self._customer_tz(session, p.customer)
            if tz:
                return tz
        return self.config.timezone

    def managers_of(self, session: Session, customer: str | None) -> list[AccountManager]:
        if customer is None:
            return []
        return list(session.scalars(
            select(AccountManager).join(ManagerAssignment, ManagerAssignment.manager_id == AccountManager.id)
            .join(Customer, Customer.id == ManagerAssignment.customer_id).where(Customer.code == customer)
            .order_by(AccountManager.code)))

    def targets(self, session: Session, event: Event) -> list[Target]:
        """Every message `event` makes, one per (recipient, channel)."""
        cfg = self.config
        managers = {m.code: m for m in self.managers_of(session, event.customer)}
        people = self.directory.people(session)
        prefs = {p.username: p for p in session.scalars(select(NotificationPreference))}
        out: dict[tuple[str, str], Target] = {}

        def add(t: Target) -> None:
            out.setdefault((t.recipient, t.channel), t)

        for p in people:
            if event.kind not in allowed_events(p.role):
                continue
            pref = prefs.get(p.username)
            defaults = cfg.role_defaults(p.role)
            wanted = pref.events if pref is not None and pref.events is not None else defaults.events
            manager_here = p.role == "account_manager" and p.manager in managers
            named = p.username in event.extra_recipients
            if not (named or manager_here or (_sees(p, event.customer, set(managers)) and event.kind in wanted)):
                continue
            channels = (pref.channels if pref is not None and pref.channels else None) or defaults.channels \
                or cfg.email_channels()
            digest = pref.digest if pref is not None and pref.digest is not None else defaults.digest
            own_quiet = pref is not None and pref.quiet_start and pref.quiet_end
            quiet = parse_quiet_hours(f"{pref.quiet_start}-{pref.quiet_end}" if own_quiet and pref is not None
                                      else defaults.quiet_hours)
            lang = language(p.language, cfg.language)
            tz = self.timezone_of(session, p, pref)
            for name in channels:
                ch = cfg.channels.get(name)
                if ch is None:
                    continue  # a preference naming a channel the config no longer has
                if isinstance(ch, EmailChannelConfig):
                    address = (pref.email if pref is not None else None) or (
                        managers[p.manager].email if manager_here and p.manager else None)
                    add(Target(p.username, name, address, lang, tz, digest, quiet,
                               None if address else f"user {p.username} has no e-mail address (set it in the "
                                                    "notification preferences)"))
                else:
                    add(Target(f"channel:{name}", name, None, ch.language or cfg.language, cfg.timezone))
        with_login = {p.manager for p in people if p.role == "account_manager"}
        email = cfg.email_channels()
        for code, m in managers.items():
            if code not in with_login and email:
                add(Target(f"manager:{code}", email[0], m.email, cfg.language, cfg.timezone, error=None if m.email
                           else f"account manager {code} has no e-mail address in the registry"))
        for name, ch in cfg.channels.items():
            if isinstance(ch, EmailChannelConfig) or event.kind not in ch.events:
                continue
            if ch.customers and event.customer not in ch.customers:
                continue
            add(Target(f"channel:{name}", name, None, ch.language or cfg.language, cfg.timezone))
        return list(out.values())
