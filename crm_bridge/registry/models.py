"""SQLAlchemy 2 models of the CRM registry: customers, meters, contracts, tariffs, equipment, alerts, tickets."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from crm_bridge.tariffs.contract import BasicChargeMode


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes stored as UTC and returned aware on every backend (SQLite would drop the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive times; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value} given to a timezone-aware column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return aware UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every registry table."""


class Customer(Base):
    """A customer account; `code` is the customer id used by the gateway, reports and API."""

    __tablename__ = "customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")  # as the config and API default
    industry: Mapped[str | None] = mapped_column(String(100))
    annual_revenue: Mapped[float | None] = mapped_column(Float)
    retired_on: Mapped[date | None] = mapped_column(Date)

    sites: Mapped[list[Site]] = relationship(back_populates="customer", cascade="all, delete-orphan")
    contacts: Mapped[list[Contact]] = relationship(back_populates="customer", cascade="all, delete-orphan")
    contracts: Mapped[list[Contract]] = relationship(back_populates="customer", cascade="all, delete-orphan",
                                                     order_by="Contract.valid_from")

    @property
    def contract(self) -> Contract | None:
        """The current contract: the open-ended version, else the newest (None without any).

        Months are billed by the version in force for each month (`crm_bridge.services.inputs.contract_in_force`).
        """
        if not self.contracts:
            return None
        return next((c for c in reversed(self.contracts) if c.valid_to is None), self.contracts[-1])

    @contract.setter
    def contract(self, value: Contract | None) -> None:
        """Add `value` as a version (the registry API closes the previous one; this setter only adds)."""
        if value is not None and value not in self.contracts:
            self.contracts.append(value)


class Site(Base):
    """A physical site of a customer; `code` is the site id of the gateway config, `name` what people call it."""

    __tablename__ = "site"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(200), index=True, unique=True)  # widths as migration 0002 renamed them
    name: Mapped[str | None] = mapped_column(String(300))
    address: Mapped[str | None] = mapped_column(String(300))
    retired_on: Mapped[date | None] = mapped_column(Date)
    customer: Mapped[Customer] = relationship(back_populates="sites")


class Meter(Base):
    """A meter; `code` is the meter id in the gateway config.

    `role`: "billing" (its energy counts in its site's and customer's) or "sub" (a line behind a billing meter,
    summed only for a site without one); None until gateway.toml's role is synced, which means billing.
    """

    __tablename__ = "meter"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str | None] = mapped_column(String(200))
    retired_on: Mapped[date | None] = mapped_column(Date)
    role: Mapped[str | None] = mapped_column(String(10))

    @property
    def billing(self) -> bool:
        """True unless the meter is a sub-meter."""
        return self.role != "sub"


class MeterAssignment(Base):
    """A meter installed at a site over [valid_from, valid_to); valid_to None means still installed."""

    __tablename__ = "meter_assignment"
    id: Mapped[int] = mapped_column(primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meter.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"), index=True)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    meter: Mapped[Meter] = relationship()
    site: Mapped[Site] = relationship()


class Contact(Base):
    """A person at a customer."""

    __tablename__ = "contact"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(50))
    role: Mapped[str | None] = mapped_column(String(100))
    retired_on: Mapped[date | None] = mapped_column(Date)
    customer: Mapped[Customer] = relationship(back_populates="contacts")


class AccountManager(Base):
    """An account manager of the utility."""

    __tablename__ = "account_manager"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200))
    retired_on: Mapped[date | None] = mapped_column(Date)


class ManagerAssignment(Base):
    """Manager <-> customer assignment (a customer may have several managers)."""

    __tablename__ = "manager_assignment"
    __table_args__ = (UniqueConstraint("manager_id", "customer_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    manager_id: Mapped[int] = mapped_column(ForeignKey("account_manager.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    manager: Mapped[AccountManager] = relationship()
    customer: Mapped[Customer] = relationship()


class TierRecord(Base):
    """Current tier of a customer: computed from the score, unless a manual override (with reason) is set."""

    __tablename__ = "tier"
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    computed: Mapped[str] = mapped_column(String(1))
    override: Mapped[str | None] = mapped_column(String(1))
    override_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    @property
    def effective(self) -> str:
        """The tier in force: the override if set, else the computed tier."""
        return self.override or self.computed


class TierChange(Base):
    """History: every change of a customer's effective tier."""

    __tablename__ = "tier_change"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    old_tier: Mapped[str | None] = mapped_column(String(1))
    new_tier: Mapped[str] = mapped_column(String(1))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UtcDateTime)


# The start of a contract entered without one, and of every contract carried over from before contract history:
# earlier than any data the gateway holds, so such a contract bills every month.
CONTRACT_EPOCH = date(2000, 1, 1)


class Contract(Base):
    """One version of a customer's supply contract, in force over [valid_from, valid_to); valid_to None: still open.

    A customer's versions never overlap: a new version closes the previous one on its own start date.
    """

    __tablename__ = "contract"
    __table_args__ = (UniqueConstraint("customer_id", "valid_from"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    valid_from: Mapped[date] = mapped_column(Date, default=CONTRACT_EPOCH)
    valid_to: Mapped[date | None] = mapped_column(Date)
    transformer_kva: Mapped[float] = mapped_column(Float)
    hv_motors_kw: Mapped[float] = mapped_column(Float, default=0.0)
    contract_demand_kw: Mapped[float] = mapped_column(Float)
    basic_charge_mode: Mapped[str] = mapped_column(String(20))
    pf_standard: Mapped[float] = mapped_column(Float, default=0.9)
    bill_threshold: Mapped[float | None] = mapped_column(Float)
    tariff_id: Mapped[str] = mapped_column(String(64))
    customer: Mapped[Customer] = relationship(back_populates="contracts")

    @validates("basic_charge_mode")
    def _one_spelling(self, _key: str, value: str) -> str:
        """Only capacity, demand or contract are stored (ServiceError naming them otherwise)."""
        return BasicChargeMode.parse(value).value


class TariffVersion(Base):
    """One version of a tariff, stored as its JSON document, valid over [valid_from, valid_to)."""

    __tablename__ = "tariff_version"
    __table_args__ = (UniqueConstraint("tariff_id", "valid_from"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    tariff_id: Mapped[str] = mapped_column(String(64), index=True)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)


class Equipment(Base):
    """Major electrical equipment of a customer (transformer, HV motor, capacitor bank, ...)."""

    __tablename__ = "equipment"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("site.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    rating: Mapped[float | None] = mapped_column(Float)
    rating_unit: Mapped[str | None] = mapped_column(String(20))
    retired_on: Mapped[date | None] = mapped_column(Date)
    customer: Mapped[Customer] = relationship()
    inspections: Mapped[list[Inspection]] = relationship(back_populates="equipment", cascade="all, delete-orphan")


class Inspection(Base):
    """An inspection or site visit on a piece of equipment."""

    __tablename__ = "inspection"
    id: Mapped[int] = mapped_column(primary_key=True)
    equipment_id: Mapped[int] = mapped_column(ForeignKey("equipment.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    result: Mapped[str | None] = mapped_column(String(100))
    notes: Mapped[str | None] = mapped_column(Text)
    next_due: Mapped[date | None] = mapped_column(Date)
    equipment: Mapped[Equipment] = relationship(back_populates="inspections")


class Interaction(Base):
    """A logged interaction with a customer (call, visit, e-mail, ...)."""

    __tablename__ = "interaction"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    channel: Mapped[str] = mapped_column(String(40))
    summary: Mapped[str] = mapped_column(Text)


class Alert(Base):
    """An alert; `open_key` is set while not resolved and is unique, so an open alert cannot be duplicated."""

    __tablename__ = "alert"
    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(20))
    customer_code: Mapped[str] = mapped_column(String(64), index=True)
    meter_code: Mapped[str | None] = mapped_column(String(64))
    window_start: Mapped[datetime] = mapped_column(UtcDateTime)
    window_end: Mapped[datetime] = mapped_column(UtcDateTime)
    message: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="open")
    open_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id", ondelete="SET NULL"))


class AlertPeriodMark(Base):
    """Marks that a once-per-period alert was raised for (rule, customer, period)."""

    __tablename__ = "alert_period_mark"
    __table_args__ = (UniqueConstraint("rule", "customer_code", "period"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(String(40))
    customer_code: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(20))


class Ticket(Base):
    """A service-desk request or complaint."""

    __tablename__ = "ticket"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(60))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    contact: Mapped[str | None] = mapped_column(String(200))  # who to call back: a name, a phone, an address
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("account_manager.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20), default="new")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ack_target_min: Mapped[int] = mapped_column(Integer)
    resolve_target_min: Mapped[int] = mapped_column(Integer)
    satisfaction: Mapped[int | None] = mapped_column(Integer)
    transitions: Mapped[list[TicketTransition]] = relationship(
        back_populates="ticket", cascade="all, delete-orphan", order_by="TicketTransition.id"
    )
    comments: Mapped[list[TicketComment]] = relationship(
        back_populates="ticket", cascade="all, delete-orphan", order_by="TicketComment.id"
    )
    attachments: Mapped[list[TicketAttachment]] = relationship(
        back_populates="ticket", cascade="all, delete-orphan", order_by="TicketAttachment.id"
    )


class TicketTransition(Base):
    """A timestamped status change of a ticket."""

    __tablename__ = "ticket_transition"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    note: Mapped[str | None] = mapped_column(Text)
    ticket: Mapped[Ticket] = relationship(back_populates="transitions")


class DeadLetter(Base):
    """A webhook delivery that failed after its last retry."""

    __tablename__ = "dead_letter"
    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    event: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class NotificationEvent(Base):
    """Something people are told about, kept once under its `key`: publishing the same key again sends nothing."""

    __tablename__ = "notification_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    customer_code: Mapped[str | None] = mapped_column(String(64), index=True)
    severity: Mapped[str | None] = mapped_column(String(20))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    attachment_name: Mapped[str | None] = mapped_column(String(200))
    attachment_type: Mapped[str | None] = mapped_column(String(100))
    attachment: Mapped[bytes | None] = mapped_column(LargeBinary)


class Notification(Base):
    """One message to one recipient over one channel: queued, then delivered or failed (why, after how many tries).

    `recipient` is a username, `manager:<code>` (an account manager without a login) or `channel:<name>` (a group
    channel's own subscription). Held (quiet hours) and digest messages wait with their own status.
    """

    __tablename__ = "notification"
    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("notification_event.id", ondelete="CASCADE"), index=True)
    recipient: Mapped[str] = mapped_column(String(200), index=True)
    channel: Mapped[str] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(500))
    language: Mapped[str] = mapped_column(String(5))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    digest_id: Mapped[int | None] = mapped_column(ForeignKey("notification.id", ondelete="SET NULL"))
    dead_letter_id: Mapped[int | None] = mapped_column(ForeignKey("dead_letter.id", ondelete="SET NULL"))
    replay_of: Mapped[int | None] = mapped_column(ForeignKey("dead_letter.id", ondelete="SET NULL"))
    event: Mapped[NotificationEvent] = relationship()


class NotificationPreference(Base):
    """A user's own notification settings; a None field falls back to the defaults of the user's role."""

    __tablename__ = "notification_preference"
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(200))
    events: Mapped[list[str] | None] = mapped_column(JSON)
    channels: Mapped[list[str] | None] = mapped_column(JSON)
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    timezone: Mapped[str | None] = mapped_column(String(64))
    digest: Mapped[bool | None] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class TicketComment(Base):
    """A comment on a ticket: seen by the customer, or an internal note (`internal`) that only the desk sees."""

    __tablename__ = "ticket_comment"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(64))
    author_role: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)
    internal: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    ticket: Mapped[Ticket] = relationship(back_populates="comments")


class CustomerAlertRule(Base):
    """A customer's own limits, for the whole account (`site_code` None) or one site; a None limit is not watched."""

    __tablename__ = "customer_alert_rule"
    __table_args__ = (UniqueConstraint("customer_code", "site_code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_code: Mapped[str] = mapped_column(String(64), index=True)
    site_code: Mapped[str | None] = mapped_column(String(200))
    kw_demand: Mapped[float | None] = mapped_column(Float)  # 15-min demand, kW
    daily_kwh: Mapped[float | None] = mapped_column(Float)  # energy of the local day so far
    pf_floor: Mapped[float | None] = mapped_column(Float)  # month-to-date power factor
    bill_to_date: Mapped[float | None] = mapped_column(Float)  # month-to-date energy cost, tariff currency
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AlertText(Base):
    """An alert's message as a message key and its values, so each reader sees it in their own language."""

    __tablename__ = "alert_text"
    alert_id: Mapped[int] = mapped_column(ForeignKey("alert.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(60))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)


class TicketAttachment(Base):
    """A file attached to a ticket, kept in the database (size-limited, its type read from its content)."""

    __tablename__ = "ticket_attachment"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    ticket: Mapped[Ticket] = relationship(back_populates="attachments")


class ReportSubscription(Base):
    """When a customer's reports (`owner` its code) or a manager's portfolio (`manager:CODE`) go out, and in what.

    Hours on the owner's clock (the customer's time zone; the gateway's for a manager); `daily_hour` None sends no
    daily brief. No row: the defaults of `gateway.report_jobs.ReportSchedule` and the notifier's usual audience.
    """

    __tablename__ = "report_subscription"
    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(String(80), unique=True)
    monthly_day: Mapped[int] = mapped_column(Integer)
    monthly_hour: Mapped[int] = mapped_column(Integer)
    daily_hour: Mapped[int | None] = mapped_column(Integer)
    fmt: Mapped[str] = mapped_column(String(8))
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    recipients: Mapped[list[ReportRecipient]] = relationship(
        back_populates="subscription", cascade="all, delete-orphan", order_by="ReportRecipient.id")


class ReportRecipient(Base):
    """One address a subscription's reports are mailed to, in the recipient's language (zh or en)."""

    __tablename__ = "report_recipient"
    __table_args__ = (UniqueConstraint("subscription_id", "email"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("report_subscription.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(5))
    subscription: Mapped[ReportSubscription] = relationship(back_populates="recipients")


class AdviceRequest(Base):
    """A request opened for a piece of saving advice: which advice (key and month) and what it was worth then.

    One per (customer, advice key, month), so the advice page offers no second; the ticket shows the advice back.
    """

    __tablename__ = "advice_request"
    __table_args__ = (UniqueConstraint("customer_code", "advice_key", "advice_month"),)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), primary_key=True)
    customer_code: Mapped[str] = mapped_column(String(64), index=True)
    advice_key: Mapped[str] = mapped_column(String(60))  # the advice item's kind: load_shift, power_factor, ...
    advice_month: Mapped[str] = mapped_column(String(7))  # YYYY-MM of the data the advice was made from
    title: Mapped[str] = mapped_column(String(300))  # in English; text_key and params give it in each language
    text_key: Mapped[str | None] = mapped_column(String(60))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    money_per_month: Mapped[float] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3))


from crm_bridge.registry import allocation_models as _allocation_models  # noqa: E402, F401 - cost allocation tables
from crm_bridge.registry import performance_models as _performance_models  # noqa: E402, F401 - energy performance
