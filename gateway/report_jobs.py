"""Scheduled reports: monthly reports, daily briefs and portfolios made when due and handed to the notifier, once.

Each customer's reports are due on its own clock, each account manager's portfolio on the gateway's; they go to a
`deliver` callable (the notifier), once per (report, customer or manager, period), also across restarts.

What was sent is recorded in a small SQLite file (`<data_dir>/reports/sent.db`) and each file is kept beside it
(`<data_dir>/reports/<customer>/`, `<data_dir>/reports/managers/<code>/`). A delivery is claimed in that file
before `deliver` is called and marked sent after it returns, so a restarted scheduler never sends twice; one that
crashed in between leaves the claim `sending`, and it is not sent again (at most once: `SentLog.records()` lists
it for a person to check). A `deliver` that raises gives the claim back, so the next run tries again.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from pathlib import Path
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select

from crm_bridge.registry.models import AccountManager, Contact, Customer
from gateway.usecases import UseCaseError, UseCases
from gateway.usecases.reports import brief_report, customer_report, portfolio_report
from reports.i18n import Texts

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
    `daily_at` (None: no briefs).
    """

    monthly_day: int = 1
    monthly_at: time = time(8, 0)
    daily_at: time | None = time(7, 30)
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
    """One report due: whose it is (a customer id, or `manager:CODE`), its period, and how to make it."""

    kind: Kind
    owner: str
    name: str
    period: date
    lang: str
    tz: ZoneInfo
    make: Callable[[], bytes]

    @property
    def label(self) -> str:
        return self.period.isoformat() if self.kind == "brief" else f"{self.period:%Y-%m}"


def send_due_reports(uc: UseCases, deliver: Deliver, *, schedule: ReportSchedule | None = None,
                     now: datetime | None = None, recipients: Callable[[str], list[str]] | None = None,
                     managers: Callable[[str], list[str]] | None = None,
                     store_dir: Path | None = None) -> list[Delivery]:
    """Make and deliver every report due at `now` (default: the current time).

    Each configured customer's monthly report and daily brief on its own clock, and each account manager's
    portfolio on the monthly schedule on the gateway's clock (`[gateway] timezone`), in Chinese. Call it every few
    minutes from the scheduler: a report already sent (or claimed) for its period is skipped, so repeated and
    restarted runs send each (report, customer or manager, period) once. Recipients default to the customer's
    contacts and the manager's address in the registry; the files and the record live in `store_dir` (default
    `<data_dir>/reports`).
    """
    schedule = schedule or ReportSchedule()
    now = now or datetime.now(UTC)
    to_customer = recipients or registry_recipients(uc)
    to_manager = managers or manager_recipients(uc)
    folder = store_dir or uc.gw.config.data_path(Path("reports"))
    sent = SentLog(folder / "sent.db")
    out: list[Delivery] = []
    for c in uc.gw.config.customers:
        tz = ZoneInfo(c.timezone)
        for kind, period in schedule.due(now.astimezone(tz)):
            make = customer_report if kind == "monthly" else brief_report
            job = _Due(kind, c.id, c.name or c.id, period, c.language, tz,
                       partial(make, uc, c.id, period, schedule.fmt, c.language))
            out.append(_send(job, to_customer(c.id), deliver, sent, folder / c.id, schedule.fmt))
    tz = ZoneInfo(uc.gw.config.gateway.timezone)
    monthly = [p for k, p in schedule.due(now.astimezone(tz)) if k == "monthly"]
    if monthly:
        with uc.gw.db() as s:
            codes = list(s.scalars(select(AccountManager.code).order_by(AccountManager.code)))
        for code in codes:
            job = _Due("portfolio", f"manager:{code}", code, monthly[0], "zh", tz,
                       partial(portfolio_report, uc, code, monthly[0], schedule.fmt, "zh"))
            out.append(_send(job, to_manager(code), deliver, sent, folder / "managers" / code, schedule.fmt))
    return out


def _send(job: _Due, to: list[str], deliver: Deliver, sent: SentLog, folder: Path, fmt: str) -> Delivery:
    kind, owner, label = job.kind, job.owner, job.label
    if not to:
        return Delivery(kind, owner, label, "no_recipients")
    if not sent.claim(kind, owner, label):
        return Delivery(kind, owner, label, "already_sent")
    try:
        content = job.make()
    except UseCaseError as exc:
        sent.release(kind, owner, label)
        return Delivery(kind, owner, label, "no_data", detail=str(exc))
    file = folder / f"{kind}_{label}.{fmt}"
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(content)
    subject, body = _message(kind, job.name, job.period, job.lang, job.tz)
    try:
        deliver(list(to), subject, body, file.name, content, job.lang, label)
    except Exception as exc:  # noqa: BLE001 - a failed send is retried at the next run; the others still go
        sent.release(kind, owner, label)
        log.warning("report %s %s %s not delivered: %s", kind, owner, label, exc, extra={"customer": owner})
        return Delivery(kind, owner, label, "failed", tuple(to), file, str(exc))
    sent.mark_sent(kind, owner, label, to, file)
    log.info("report %s %s %s delivered to %d recipients", kind, owner, label, len(to), extra={"customer": owner})
    return Delivery(kind, owner, label, "sent", tuple(to), file)
