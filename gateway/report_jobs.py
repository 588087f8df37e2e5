"""Scheduled reports: monthly reports, daily briefs and portfolios made when due and handed to the notifier, once.

Each customer's reports are due on its own clock, each account manager's portfolio on the gateway's, on the owner's
schedule as set in the portal or the API (`gateway/usecases/report_delivery.py`; `ReportSchedule()` without one).
They go to a `deliver` callable (the notifier, `NotifierDelivery`), once per (report, customer or manager, period),
also across restarts, one copy per language of the recipients. `report_job` is the scheduler's job.

What was sent is recorded in a small SQLite file (`<data_dir>/reports/sent.db`) and each file is kept beside it
(`<data_dir>/reports/<customer>/`, `<data_dir>/reports/managers/<code>/`). A delivery is claimed in that file
before `deliver` is called and marked sent after it returns, so a restarted scheduler never sends twice; one that
crashed in between leaves the claim `sending`, and it is not sent again (at most once: `SentLog.records()` lists
it for a person to check). A `deliver` that raises gives the claim back, so the next run tries again. Who got what,
and whether it arrived, is the notifier's record (`report_delivery.deliveries_of`).
"""

from __future__ import annotations

import logging
import mimetypes
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select

from crm_bridge.registry.models import AccountManager, Contact, Customer
from gateway.usecases import UseCaseError, UseCases
from gateway.usecases.reports import brief_report, customer_report, portfolio_report
from reports.i18n import Texts

if TYPE_CHECKING:
    from crm_bridge.notify.events import Attachment
    from gateway.runtime import Gateway
    from gateway.usecases.report_delivery import Plan

log = logging.getLogger(__name__)

Kind = Literal["monthly", "brief", "portfolio"]


class Deliver(Protocol):
    """The notifier's side: send one message with one attachment to the recipients, in `lang` (zh or en).

    `period` is the report's (YYYY-MM, or the day of a brief): with the recipients and the file name it names the
    report, so a notifier can refuse to send one twice.
    """

    def __call__(self, recipients: list[str], subject: str, body: str, attachment_name: str,
                 attachment_bytes: bytes, lang: str, period: str) -> None: ...


@dataclass(frozen=True)
class ReportSchedule:
    """When reports are due, on each customer's clock.

    The monthly report of the month before on `monthly_day` at `monthly_at`; the brief of the day before at
    `daily_at` (None: no briefs). The defaults are `report_delivery.DEFAULTS`, what the portal shows when none is set.
    """

    monthly_day: int = 1
    monthly_at: time = time(8, 0)
    daily_at: time | None = time(7, 0)
    fmt: Literal["pdf", "html", "xlsx"] = "pdf"

    def __post_init__(self) -> None:
        if not 1 <= self.monthly_day <= 28:
            raise ValueError(f"monthly_day {self.monthly_day}: use 1..28 (every month has it)")

    def due(self, now_local: datetime) -> list[tuple[Kind, date]]:
        """The reports due at `now_local` and their periods (the first of the month, or the day)."""
        out: list[tuple[Kind, date]] = []
        today = now_local.date()
        if now_local.replace(tzinfo=None) >= datetime.combine(today.replace(day=self.monthly_day), self.monthly_at):
            out.append(("monthly", (today.replace(day=1) - timedelta(days=1)).replace(day=1)))
        if self.daily_at is not None and now_local.replace(tzinfo=None) >= datetime.combine(today, self.daily_at):
            out.append(("brief", today - timedelta(days=1)))
        return out


@dataclass(frozen=True)
class Delivery:
    """One report of one run: `sent`, or why not (`already_sent`, `no_recipients`, `no_data`, `failed`).

    `customer` is the customer id, or `manager:CODE` for a portfolio.
    """

    kind: Kind
    customer: str
    period: str
    outcome: str
    recipients: tuple[str, ...] = ()
    file: Path | None = None
    detail: str = ""


class SentLog:
    """The record of what went to whom: one row per (kind, customer, period), claimed before sending."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        with self._db() as db:
            db.execute("CREATE TABLE IF NOT EXISTS sent (kind TEXT NOT NULL, customer TEXT NOT NULL, "
                       "period TEXT NOT NULL, state TEXT NOT NULL, recipients TEXT NOT NULL DEFAULT '', "
                       "file TEXT NOT NULL DEFAULT '', at TEXT NOT NULL, PRIMARY KEY (kind, customer, period))")

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)  # autocommit: each statement is atomic
        try:
            yield db
        finally:
            db.close()

    def claim(self, kind: Kind, customer: str, period: str) -> bool:
        """True when this caller may send it: no earlier claim or delivery (an atomic insert decides)."""
        with self._db() as db:
            cur = db.execute("INSERT OR IGNORE INTO sent (kind, customer, period, state, at) "
                             "VALUES (?, ?, ?, 'sending', ?)",
                             (kind, customer, period, datetime.now(UTC).isoformat()))
            return cur.rowcount == 1

    def mark_sent(self, kind: Kind, customer: str, period: str, recipients: list[str], file: Path) -> None:
        with self._db() as db:
            db.execute("UPDATE sent SET state = 'sent', recipients = ?, file = ?, at = ? "
                       "WHERE kind = ? AND customer = ? AND period = ?",
                       (", ".join(recipients), str(file), datetime.now(UTC).isoformat(), kind, customer, period))

    def release(self, kind: Kind, customer: str, period: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM sent WHERE kind = ? AND customer = ? AND period = ? AND state = 'sending'",
                       (kind, customer, period))

    def records(self) -> list[dict[str, str]]:
        """Every row, oldest first: kind, customer, period, state (`sent` or `sending`), recipients, file, at."""
        with self._db() as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute("SELECT * FROM sent ORDER BY at, kind, customer, period")]


def registry_recipients(uc: UseCases) -> Callable[[str], list[str]]:
    """The e-mail addresses of a customer's contacts in the registry."""

    def recipients(customer: str) -> list[str]:
        with uc.gw.db() as s:
            rows = s.scalars(select(Contact.email).join(Customer, Customer.id == Contact.customer_id)
                             .where(Customer.code == customer, Contact.email.is_not(None)).order_by(Contact.id))
            return [e for e in rows if e]

    return recipients


def manager_recipients(uc: UseCases) -> Callable[[str], list[str]]:
    """The e-mail address of an account manager in the registry (none when it has no address)."""

    def recipients(code: str) -> list[str]:
        with uc.gw.db() as s:
            email = s.scalar(select(AccountManager.email).where(AccountManager.code == code))
            return [email] if email else []

    return recipients


SUBJECTS: dict[Kind, tuple[str, str]] = {"monthly": ("mail_monthly_subject", "monthly_title"),
                                         "brief": ("mail_brief_subject", "brief_title"),
                                         "portfolio": ("mail_portfolio_subject", "portfolio_title")}


def _message(kind: Kind, name: str, period: date, lang: str, tz: ZoneInfo) -> tuple[str, str]:
    f = Texts("en" if lang == "en" else "zh", tz)
    shown = f.day(period) if kind == "brief" else f.month(period)
    subject, title = SUBJECTS[kind]
    return f.t(subject, customer=name, period=shown), f.t("mail_body", what=f.t(title), period=shown)


@dataclass(frozen=True)
class _Due:
    """One report due: whose it is (a customer id, or `manager:CODE`), its period, and how to make it in a language.

    `lang` is the owner's own language: its file keeps the plain name, other languages' copies get `_<lang>`.
    """

    kind: Kind
    owner: str
    name: str
    period: date
    lang: str
    tz: ZoneInfo
    make: Callable[[str], bytes]

    @property
    def label(self) -> str:
        return self.period.isoformat() if self.kind == "brief" else f"{self.period:%Y-%m}"


Plans = Callable[[str], "Plan | None"]


def registry_plans(uc: UseCases) -> Plans:
    """Each owner's schedule and recipients as set in the portal or the API (None: not set)."""
    from gateway.usecases.report_delivery import plan_of

    def plans(owner: str) -> Plan | None:
        with uc.gw.db() as s:
            return plan_of(s, owner)

    return plans


def _schedule_of(plan: Plan | None, default: ReportSchedule) -> ReportSchedule:
    if plan is None:
        return default
    daily = time(plan.daily_hour) if plan.daily_hour is not None else None
    return ReportSchedule(plan.monthly_day, time(plan.monthly_hour), daily, plan.fmt)


def _addressed(plan: Plan | None, default: list[str], lang: str) -> list[tuple[str, str]]:
    """(recipient, language): the plan's addresses when it names any, else the default ones in `lang`."""
    if plan is not None and plan.recipients:
        return list(plan.recipients)
    return [(r, lang) for r in default]


def send_due_reports(uc: UseCases, deliver: Deliver, *, schedule: ReportSchedule | None = None,
                     now: datetime | None = None, recipients: Callable[[str], list[str]] | None = None,
                     managers: Callable[[str], list[str]] | None = None,
                     store_dir: Path | None = None, plans: Plans | None = None) -> list[Delivery]:
    """Make and deliver every report due at `now` (default: the current time).

    Each configured customer's monthly report and daily brief on its own clock, and each account manager's
    portfolio on the gateway's clock (`[gateway] timezone`). Call it every few minutes from the scheduler: a report
    already sent (or claimed) for its period is skipped, so repeated and restarted runs send each (report, customer
    or manager, period) once.

    An owner's own schedule and recipients (`plans`, default: the registry's, set in the portal or the API) come
    first; without one, `schedule` (default `ReportSchedule()`) and the default recipients hold: the customer's
    contacts and the manager's address in the registry, in the customer's language (Chinese for managers). Each
    recipient gets the report in its own language. The files and the record live in `store_dir` (default
    `<data_dir>/reports`).
    """
    schedule = schedule or ReportSchedule()
    now = now or datetime.now(UTC)
    to_customer = recipients or registry_recipients(uc)
    to_manager = managers or manager_recipients(uc)
    plan_of = plans or registry_plans(uc)
    folder = store_dir or uc.gw.config.data_path(Path("reports"))
    sent = SentLog(folder / "sent.db")
    out: list[Delivery] = []
    for c in uc.gw.config.customers:
        tz = ZoneInfo(c.timezone)
        plan = plan_of(c.id)
        sched = _schedule_of(plan, schedule)
        for kind, period in sched.due(now.astimezone(tz)):
            make = customer_report if kind == "monthly" else brief_report
            job = _Due(kind, c.id, c.name or c.id, period, c.language, tz, partial(make, uc, c.id, period, sched.fmt))
            out.append(_send(job, _addressed(plan, to_customer(c.id), c.language), deliver, sent, folder / c.id,
                             sched.fmt))
    tz = ZoneInfo(uc.gw.config.gateway.timezone)
    with uc.gw.db() as s:
        codes = list(s.scalars(select(AccountManager.code).where(AccountManager.retired_on.is_(None))
                               .order_by(AccountManager.code)))
    for code in codes:
        owner = f"manager:{code}"
        plan = plan_of(owner)
        sched = _schedule_of(plan, schedule)
        for kind, period in sched.due(now.astimezone(tz)):
            if kind != "monthly":
                continue
            job = _Due("portfolio", owner, code, period, "zh", tz, partial(portfolio_report, uc, code, period,
                                                                           sched.fmt))
            out.append(_send(job, _addressed(plan, to_manager(code), "zh"), deliver, sent, folder / "managers" / code,
                             sched.fmt))
    return out


def _send(job: _Due, to: list[tuple[str, str]], deliver: Deliver, sent: SentLog, folder: Path,
          fmt: str) -> Delivery:
    """Claim, make the report once per language of its recipients, keep each file, hand each over; record it.

    One claim covers every language: a hand-over that raises gives the claim back and the next run hands every
    language over again (the notifier's event key makes a second hand-over of the same file a no-op).
    """
    kind, owner, label = job.kind, job.owner, job.label
    if not to:
        return Delivery(kind, owner, label, "no_recipients")
    if not sent.claim(kind, owner, label):
        return Delivery(kind, owner, label, "already_sent")
    by_lang: dict[str, list[str]] = {}
    for who, lang in to:
        by_lang.setdefault("en" if lang == "en" else "zh", []).append(who)
    everyone = [who for who, _ in to]
    kept: Path | None = None
    for lang in sorted(by_lang, key=lambda x: x != job.lang):  # the owner's own language first
        try:
            content = job.make(lang)
        except UseCaseError as exc:
            sent.release(kind, owner, label)
            return Delivery(kind, owner, label, "no_data", detail=str(exc))
        file = folder / (f"{kind}_{label}.{fmt}" if lang == job.lang else f"{kind}_{label}_{lang}.{fmt}")
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(content)
        kept = kept or file
        subject, body = _message(kind, job.name, job.period, lang, job.tz)
        try:
            _hand_over(deliver, by_lang[lang], subject, body, file.name, content, lang, label, owner)
        except Exception as exc:  # noqa: BLE001 - a failed send is retried at the next run; the others still go
            sent.release(kind, owner, label)
            log.warning("report %s %s %s not delivered: %s", kind, owner, label, exc, extra={"customer": owner})
            return Delivery(kind, owner, label, "failed", tuple(everyone), file, str(exc))
    assert kept is not None  # noqa: S101 - `to` is not empty, so one language at least was made
    sent.mark_sent(kind, owner, label, everyone, kept)
    log.info("report %s %s %s delivered to %d recipients", kind, owner, label, len(everyone),
             extra={"customer": owner})
    return Delivery(kind, owner, label, "sent", tuple(everyone), kept)


def _hand_over(deliver: Deliver, to: list[str], subject: str, body: str, name: str, content: bytes, lang: str,
               period: str, owner: str) -> None:
    if getattr(deliver, "takes_owner", False):  # NotifierDelivery: it records whose report it is
        deliver(list(to), subject, body, name, content, lang, period, owner=owner)  # type: ignore[call-arg]
    else:
        deliver(list(to), subject, body, name, content, lang, period)


class NotifierDelivery:
    """A `Deliver` through the notifier: its queue, send job, retries and records (one per recipient).

    A recipient without `@` is a customer id: the notifier's usual audience for the account hears of the report (its
    managers always, its users by their preferences). Addresses (a schedule's recipients, a manager's own address)
    are queued to the first e-mail channel as they are, in the language given. Either way the event's key (owner,
    period, file name) makes a second hand-over of one file a no-op. Raises when an address cannot be queued (no
    notifier, no e-mail channel), so the report is tried again at the next run.
    """

    takes_owner = True

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    def __call__(self, recipients: list[str], subject: str, body: str, attachment_name: str,
                 attachment_bytes: bytes, lang: str, period: str, owner: str = "") -> None:
        from crm_bridge.notify.events import Attachment
        from gateway.notifications import BRIEF_TITLE, report_ready

        kind = mimetypes.guess_type(attachment_name)[0] or "application/octet-stream"
        attachment = Attachment(attachment_name, kind, attachment_bytes)
        title = BRIEF_TITLE if attachment_name.startswith("brief_") else None
        for customer in (r for r in recipients if "@" not in r):
            report_ready(self.gw, customer, period=period, attachment=attachment, title=title)
        addresses = [r for r in recipients if "@" in r]
        if addresses:
            self._mail(owner, addresses, subject, body, attachment, lang, period)

    def _mail(self, owner: str, addresses: list[str], subject: str, body: str, attachment: Attachment, lang: str,
              period: str) -> None:
        from crm_bridge.notify.service import QUEUED
        from crm_bridge.registry.models import Notification, NotificationEvent
        from gateway.notifications import notifier_of
        from gateway.usecases.report_delivery import REPORT_READY

        notifier = notifier_of(self.gw.db)
        channels = notifier.config.email_channels() if notifier is not None else []
        if not channels:
            raise ReportJobError("no e-mail channel in [notify]: the report cannot be mailed to its addresses")
        now = datetime.now(UTC)
        key = f"report:{owner}:{period}:{attachment.filename}"
        with self.gw.db() as s:
            if s.scalar(select(NotificationEvent.id).where(NotificationEvent.key == key)) is not None:
                return  # handed over before (a run that died before recording it)
            ev = NotificationEvent(key=key, kind=REPORT_READY, severity="info", at=now,
                                   customer_code=None if owner.startswith("manager:") else owner,
                                   data={"period": period, "attachment": attachment.filename, "owner": owner},
                                   attachment_name=attachment.filename, attachment_type=attachment.content_type,
                                   attachment=attachment.data)
            s.add(ev)
            s.flush()
            for address in addresses:
                s.add(Notification(event_id=ev.id, recipient=f"mailto:{address}", channel=channels[0],
                                   address=address, language=lang, subject=subject[:300], body=body, status=QUEUED,
                                   attempts=0, created_at=now, next_attempt_at=now))
            s.commit()


class ReportJobError(Exception):
    """A report could not be handed over (it is tried again at the next run)."""


def report_job(gw: Gateway) -> list[Delivery]:
    """The scheduler's `reports` job: every report due now, through the notifier.

    Customers without their own recipients reach the notifier's usual audience (as before schedules existed);
    managers get their portfolio at their registry address unless their schedule names others.
    """
    return send_due_reports(UseCases(gw), NotifierDelivery(gw), recipients=lambda customer: [customer])
