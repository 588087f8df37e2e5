"""Report delivery settings and records: each customer's and manager's schedule and recipients, and what went out.

A schedule belongs to an owner: a customer id (its monthly report and daily brief, on its clock) or `manager:CODE`
(the portfolio, on the gateway's clock). Without one the defaults hold (`DEFAULTS`, and the notifier's usual
audience). Who may change which owner's is the surface's rule (a customer its own, a manager its accounts', an
admin all); what a schedule may say (day 1-28, hour 0-23, e-mail syntax, no address twice) is checked here by the
models below, so the API and the portal refuse the same input. The record of what went to whom is the notifier's
own (one `Notification` per recipient of each "report ready" event), read back here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_bridge.registry.models import (
    AccountManager,
    Contact,
    Customer,
    Notification,
    NotificationEvent,
    ReportRecipient,
    ReportSubscription,
)
from gateway.usecases.errors import BadInput, NotFound

if TYPE_CHECKING:
    from gateway.runtime import Gateway

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"  # as the registry import checks contacts' addresses
_EMAIL = re.compile(EMAIL_PATTERN)
REPORT_READY = "report.ready"  # crm_bridge.notify.events.EventKind.REPORT_READY
ReportKind = Literal["monthly", "brief", "portfolio"]


def manager_owner(code: str) -> str:
    """The owner key of an account manager's portfolio schedule."""
    return f"manager:{code}"


class ReportRecipientIn(BaseModel):
    """One address the reports go to, and the language its copy is written in."""

    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=200, pattern=EMAIL_PATTERN, examples=["energy@acme.example"])
    language: Literal["zh", "en"] = "zh"


class PortfolioScheduleUpdate(BaseModel):
    """A manager's portfolio schedule: on `monthly_day` at `monthly_hour` on the gateway's clock.

    `recipients` empty: the manager's own address in the registry.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "monthly_day": 2, "monthly_hour": 9, "format": "pdf",
        "recipients": [{"email": "zhao@utility.example", "language": "zh"}]}]})
    monthly_day: int = Field(1, ge=1, le=28, description="Day of the month 1-28 (every month has it)")
    monthly_hour: int = Field(8, ge=0, le=23)
    format: Literal["pdf", "xlsx"] = "pdf"
    recipients: list[ReportRecipientIn] = Field(default_factory=list, max_length=50)

    @field_validator("recipients")
    @classmethod
    def _each_address_once(cls, v: list[ReportRecipientIn]) -> list[ReportRecipientIn]:
        seen: set[str] = set()
        for r in v:
            if r.email.lower() in seen:
                raise ValueError(f"{r.email} is listed twice")
            seen.add(r.email.lower())
        return v


class ReportScheduleUpdate(PortfolioScheduleUpdate):
    """A customer's schedule: the monthly report on `monthly_day` at `monthly_hour`, the brief daily at `daily_hour`.

    Hours on the customer's clock; `daily_hour` null sends no daily brief. `recipients` empty: the account's people
    and managers through the notifier, as without a schedule.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "monthly_day": 3, "monthly_hour": 8, "daily_hour": 7, "format": "pdf",
        "recipients": [{"email": "energy@acme.example", "language": "zh"}]}]})
    daily_hour: int | None = Field(7, ge=0, le=23, description="Hour of the daily brief; null: no brief")


class ReportSchedulePublic(ReportScheduleUpdate):
    """A customer's schedule as it stands; `custom` false: none set, these are the defaults."""

    model_config = ConfigDict(extra="forbid")
    customer: str
    timezone: str
    custom: bool
    contacts: list[str] = Field(description="The customer's contacts with an address in the registry, to choose from")
    updated_by: str | None = None
    updated_at: str | None = None


class PortfolioSchedulePublic(PortfolioScheduleUpdate):
    """A manager's portfolio schedule as it stands; `custom` false: none set, these are the defaults."""

    model_config = ConfigDict(extra="forbid")
    manager: str
    timezone: str
    custom: bool
    contacts: list[str] = Field(description="The manager's own address in the registry, if any")
    updated_by: str | None = None
    updated_at: str | None = None


class ReportDeliveryPublic(BaseModel):
    """One report to one recipient over one channel: queued, delivered or failed (and why)."""

    model_config = ConfigDict(extra="forbid")
    report: str = Field(description="The file name, e.g. monthly_2026-11.pdf")
    kind: ReportKind
    period: str
    recipient: str = Field(description="A username, manager:CODE, or mailto:ADDRESS")
    address: str | None
    channel: str
    status: str
    error: str | None
    at: str = Field(description="When it was delivered, else when it was queued (ISO 8601)")


DEFAULTS = ReportScheduleUpdate()


@dataclass(frozen=True)
class Plan:
    """An owner's schedule for the report job: when, in what format, and to which (address, language)."""

    monthly_day: int
    monthly_hour: int
    daily_hour: int | None
    fmt: Literal["pdf", "xlsx"]
    recipients: tuple[tuple[str, str], ...]


def plan_of(session: Session, owner: str) -> Plan | None:
    """The owner's schedule; None when none is set (the job's defaults hold)."""
    row = session.scalar(select(ReportSubscription).where(ReportSubscription.owner == owner))
    if row is None:
        return None
    fmt: Literal["pdf", "xlsx"] = "xlsx" if row.fmt == "xlsx" else "pdf"
    return Plan(row.monthly_day, row.monthly_hour, row.daily_hour, fmt,
                tuple((r.email, r.language) for r in row.recipients))


def contacts_of(session: Session, customer: str) -> list[str]:
    """The e-mail addresses of a customer's current contacts in the registry."""
    rows = session.scalars(select(Contact.email).join(Customer, Customer.id == Contact.customer_id).where(
        Customer.code == customer, Contact.email.is_not(None), Contact.retired_on.is_(None)).order_by(Contact.id))
    return [e for e in rows if e and _EMAIL.match(e)]


def schedule_of(session: Session, customer: str, timezone: str) -> ReportSchedulePublic:
    """A customer's schedule, or the defaults when none is set."""
    row = session.scalar(select(ReportSubscription).where(ReportSubscription.owner == customer))
    contacts = contacts_of(session, customer)
    if row is None:
        return ReportSchedulePublic(customer=customer, timezone=timezone, custom=False, contacts=contacts,
                                    **DEFAULTS.model_dump())
    return ReportSchedulePublic(
        customer=customer, timezone=timezone, custom=True, contacts=contacts, monthly_day=row.monthly_day,
        monthly_hour=row.monthly_hour, daily_hour=row.daily_hour, format="xlsx" if row.fmt == "xlsx" else "pdf",
        recipients=[ReportRecipientIn(email=r.email, language="en" if r.language == "en" else "zh")
                    for r in row.recipients],
        updated_by=row.updated_by, updated_at=row.updated_at.isoformat())


def portfolio_schedule_of(session: Session, code: str, timezone: str) -> PortfolioSchedulePublic:
    """A manager's portfolio schedule, or the defaults when none is set (NotFound: no such manager)."""
    manager = session.scalar(select(AccountManager).where(AccountManager.code == code))
    if manager is None:
        raise NotFound(f"no account manager {code!r}", "manager")
    email = manager.email
    row = session.scalar(select(ReportSubscription).where(ReportSubscription.owner == manager_owner(code)))
    contacts = [email] if email else []
    if row is None:
        return PortfolioSchedulePublic(manager=code, timezone=timezone, custom=False, contacts=contacts,
                                       **PortfolioScheduleUpdate().model_dump())
    return PortfolioSchedulePublic(
        manager=code, timezone=timezone, custom=True, contacts=contacts, monthly_day=row.monthly_day,
        monthly_hour=row.monthly_hour, format="xlsx" if row.fmt == "xlsx" else "pdf",
        recipients=[ReportRecipientIn(email=r.email, language="en" if r.language == "en" else "zh")
                    for r in row.recipients],
        updated_by=row.updated_by, updated_at=row.updated_at.isoformat())


def set_schedule(session: Session, owner: str, body: PortfolioScheduleUpdate, by: str,
                 now: datetime | None = None) -> None:
    """Replace the owner's schedule and recipients with `body` and commit (the caller checked who may)."""
    row = session.scalar(select(ReportSubscription).where(ReportSubscription.owner == owner))
    if row is None:
        row = ReportSubscription(owner=owner)
        session.add(row)
    daily = body.daily_hour if isinstance(body, ReportScheduleUpdate) else None  # a portfolio has no brief
    row.monthly_day, row.monthly_hour, row.daily_hour = body.monthly_day, body.monthly_hour, daily
    row.fmt, row.updated_by, row.updated_at = body.format, by, now or datetime.now(UTC)
    row.recipients.clear()
    session.flush()  # the old rows go before the new ones (an address kept would otherwise collide)
    row.recipients.extend(ReportRecipient(email=r.email, language=r.language) for r in body.recipients)
    session.commit()


def _kind(name: str) -> ReportKind:
    head = name.split("_", 1)[0]
    return "brief" if head == "brief" else "portfolio" if head == "portfolio" else "monthly"


def deliveries_of(session: Session, owner: str, limit: int = 200, offset: int = 0,
                  customer_side: bool = False) -> tuple[list[ReportDeliveryPublic], int]:
    """What went to whom for an owner (a customer id or `manager:CODE`), newest first, and how many in all.

    `customer_side`: only the customer's own people, its schedule's addresses and its managers, never the
    utility's other staff who chose to hear of reports (a customer reads this).
    """
    from gateway.auth.models import User

    if owner.startswith("manager:"):
        where = NotificationEvent.key.startswith(f"report:{owner}:", autoescape=True)
    else:
        where = NotificationEvent.customer_code == owner
    base = (select(Notification, NotificationEvent)
            .join(NotificationEvent, NotificationEvent.id == Notification.event_id)
            .where(NotificationEvent.kind == REPORT_READY, where))
    if customer_side:
        own = select(User.username).where(User.role == "customer", User.customer == owner)
        base = base.where(Notification.recipient.startswith("mailto:") | Notification.recipient.startswith("manager:")
                          | Notification.recipient.in_(own))
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.execute(base.order_by(Notification.created_at.desc(), Notification.id.desc())
                           .limit(limit).offset(offset))
    out = []
    for n, ev in rows:
        name = ev.attachment_name or str(ev.data.get("attachment") or "")
        at = n.sent_at or n.created_at
        out.append(ReportDeliveryPublic(report=name, kind=_kind(name), period=str(ev.data.get("period") or ""),
                                        recipient=n.recipient, address=n.address, channel=n.channel,
                                        status=n.status, error=n.error, at=at.isoformat()))
    return out, total


def _has_data(gw: Gateway, devices: list[str], start: datetime, end: datetime) -> bool:
    """Whether any device stored an energy reading in [start, end), asked a day at a time (the first hit ends it)."""
    from collectors.reading import ACTIVE_ENERGY_IMPORT_KWH

    day = start
    while day < end:
        nxt = min(day + timedelta(days=1), end)
        lo, hi = int(day.timestamp()) * 10**9, int(nxt.timestamp()) * 10**9
        if any(len(gw.store.raw(d, ACTIVE_ENERGY_IMPORT_KWH, lo, hi)) for d in devices):
            return True
        day = nxt
    return False


def report_months(gw: Gateway, customer: str, today: date, limit: int = 120) -> list[date]:
    """The past months with a report, newest first: back from last month to the customer's first data month.

    The walk stops at the first month without any reading (each month asked a day at a time, so a month costs one
    day's readings), at most `limit` months back.
    """
    from gateway.usecases.figures import customer_config

    tz = ZoneInfo(customer_config(gw, customer).timezone)
    topo = gw.query.topology
    devices = sorted({topo.meter_device[m] for m in topo.meters_of("customer", customer) if m in topo.meter_device})
    out: list[date] = []
    first = today.replace(day=1)
    for _ in range(limit):
        end = first
        first = (first - timedelta(days=1)).replace(day=1)
        if not devices or not _has_data(gw, devices, datetime.combine(first, time(), tz),
                                        datetime.combine(end, time(), tz)):
            break
        out.append(first)
    return out


def portfolio_manager(role: str, own: str | None, manager: str | None) -> str:
    """Whose portfolio schedule is asked for: a manager's own (another code is 404); an admin names one."""
    code = manager or own
    if code is None:
        raise BadInput("name the account manager: ?manager=CODE", "manager")
    if role != "admin" and code != own:
        raise NotFound(f"no account manager {code!r}", "manager")
    return code
