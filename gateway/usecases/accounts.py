"""The account manager's view, in one place: the customer file, its interaction log, the tiers, money and revenue.

An account's money at stake is `open_advice_money` and its billed revenue `billed_revenue`; the portfolio page's
figures are `gateway.usecases.portfolio`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_bridge.registry.models import (
    Alert,
    Contact,
    Equipment,
    Interaction,
    Ticket,
    TierChange,
    TierRecord,
)
from crm_bridge.registry.repo import RegistryLookupError, customer_by_code
from crm_bridge.tiering import TIERS, reason_message, set_override, tier_history
from gateway.api.schemas.accounts import (
    ContactPublic,
    CustomerFile,
    EquipmentPublic,
    InspectionPublic,
    InteractionAdded,
    InteractionPublic,
    PortfolioEntry,
    TierPublic,
)
from gateway.usecases.desk import Actor, Audit
from gateway.usecases.errors import BadInput, Forbidden, NotFound, UseCaseError
from gateway.usecases.figures import UseCases, customer_config

log = logging.getLogger(__name__)
INTERACTIONS_SHOWN = 100


class Accounts:
    """The customer file and the portfolio on one registry session; `audit` records every change."""

    def __init__(self, session: Session, audit: Audit, now: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.s = session
        self._audit = audit
        self._now = now

    def customer_file(self, customer: str) -> CustomerFile:
        """Everything the utility knows of the account; only `customer` and `registered` when the CRM has no record."""
        try:
            c = customer_by_code(self.s, customer)
        except RegistryLookupError:
            return CustomerFile(customer=customer, registered=False)
        tier = self.s.get(TierRecord, c.id)
        equipment = self.s.scalars(select(Equipment).where(Equipment.customer_id == c.id).order_by(Equipment.id))
        contacts = self.s.scalars(select(Contact).where(Contact.customer_id == c.id).order_by(Contact.id))
        interactions = self.s.scalars(select(Interaction).where(Interaction.customer_id == c.id)
                                      .order_by(Interaction.at.desc()).limit(INTERACTIONS_SHOWN))
        return CustomerFile(
            customer=customer, registered=True, name=c.name, industry=c.industry, annual_revenue=c.annual_revenue,
            tier=None if tier is None else TierPublic(computed=tier.computed, override=tier.override,
                                                      override_reason=tier.override_reason, score=tier.score),
            contacts=[ContactPublic(name=x.name, email=x.email, phone=x.phone, role=x.role) for x in contacts],
            equipment=[EquipmentPublic(id=e.id, kind=e.kind, name=e.name, rating=e.rating, rating_unit=e.rating_unit,
                                       inspections=[InspectionPublic(kind=i.kind, at=i.at.isoformat(), result=i.result,
                                                                     notes=i.notes) for i in e.inspections])
                       for e in equipment],
            interactions=[InteractionPublic(at=i.at.isoformat(), channel=i.channel, summary=i.summary)
                          for i in interactions],
        )

    def add_interaction(self, actor: Actor, customer: str, channel: str, summary: str) -> InteractionAdded:
        """Log a visit, call or meeting with the customer."""
        try:
            c = customer_by_code(self.s, customer)
        except RegistryLookupError:
            raise NotFound(f"customer {customer!r} is not in the registry", where="customer_id") from None
        now = self._now()
        self.s.add(Interaction(customer_id=c.id, at=now, channel=channel, summary=summary))
        self.s.commit()
        self._audit(actor.username, "interaction.add", f"customer:{customer}", channel, actor.client)
        return InteractionAdded(customer=customer, at=now.isoformat(), channel=channel, summary=summary)

    def portfolio(self, customers: Iterable[str]) -> list[PortfolioEntry]:
        """The accounts among `customers` that the registry knows, with tier and what is open on them."""
        return account_summaries(self.s, customers)

    # -- tiers ------------------------------------------------------------------------------------------------
    def tier_changes(self, customer: str) -> list[TierChangeRow]:
        """Every tier change of the account, oldest first (none for an account the registry does not know)."""
        try:
            return [TierChangeRow.of(ch) for ch in tier_history(self.s, customer)]
        except RegistryLookupError:
            return []

    def override_tier(self, actor: Actor, customer: str, tier: str | None, reason: str) -> TierPublic:
        """Set (a tier) or clear (None) the manual override of the account's tier; the reason is mandatory.

        Only a role that keeps customer files may, on an account it sees; audited with who, when and why.
        """
        from gateway.auth.roles import Capability, allowed

        if not allowed(actor.role, Capability.CUSTOMER_FILE):
            raise Forbidden(f"role {actor.role} may not change an account's tier")
        if actor.customers is not None and customer not in actor.customers:
            raise NotFound(f"customer {customer!r} not found", where="customer_id")
        if tier is not None and tier not in TIERS:
            raise BadInput(f"tier: {tier!r} is not one of {', '.join(TIERS)}", where="tier")
        if not reason.strip():
            raise BadInput("reason: an override needs a reason", where="reason")
        try:
            rec = set_override(self.s, customer, tier, reason.strip(), self._now())
        except RegistryLookupError:
            raise NotFound(f"customer {customer!r} is not in the registry", where="customer_id") from None
        self._audit(actor.username, "tier.override", f"customer:{customer}", f"{tier or 'cleared'}: {reason.strip()}",
                    actor.client)
        return TierPublic(computed=rec.computed, override=rec.override, override_reason=rec.override_reason,
                          score=rec.score)


def account_summaries(session: Session, customers: Iterable[str]) -> list[PortfolioEntry]:
    """Tier, open alerts and open requests of each of `customers` the registry knows.

    The API's portfolio and the portfolio report both show these.
    """
    items = []
    for code in customers:
        try:
            c = customer_by_code(session, code)
        except RegistryLookupError:
            continue  # configured but not in the CRM yet
        tier = session.get(TierRecord, c.id)
        items.append(PortfolioEntry(
            customer=code, name=c.name, tier=tier.effective if tier else None,
            open_alerts=session.scalar(select(func.count(Alert.id)).where(Alert.customer_code == code,
                                                                          Alert.status != "resolved")) or 0,
            open_tickets=session.scalar(select(func.count(Ticket.id)).where(Ticket.customer_id == c.id,
                                                                            Ticket.status != "closed")) or 0))
    return items


def open_advice_money(uc: UseCases, customer: str, first: date) -> float | None:
    """The money per month of the account's open advice for `first`'s month; None when there is no advice to give.

    The portfolio report and the portfolio page both show it.
    """
    from gateway.usecases.services import services_for

    try:
        advice = services_for(uc, customer, first)["advice"]
    except UseCaseError:
        return None
    return float(sum(a["money_per_month"] for a in advice))


REVENUE_MONTHS = 12


def billed_revenue(uc: UseCases, customer: str, now: datetime) -> float | None:
    """The account's money over the last REVENUE_MONTHS full months: the sum of its month bills (tiering's revenue).

    None when no month has a bill (no contract, no data, or not a customer of this gateway's config).
    """
    try:
        today = now.astimezone(ZoneInfo(customer_config(uc.gw, customer).timezone)).date()
    except UseCaseError:
        return None
    firsts = [today.replace(day=1)]
    for _ in range(REVENUE_MONTHS):
        firsts.append(month_before(firsts[-1]))
    frames = uc.month_frames(customer, firsts[1:])  # one store read for the year
    total, billed = 0.0, 0
    for first, frame in frames.items():
        try:
            _, bill = uc.month_bill(customer, first, frame)
        except UseCaseError:
            continue
        if bill is not None:
            total, billed = total + float(bill.total), billed + 1
    return total if billed else None


@dataclass(frozen=True)
class TierChangeRow:
    """A change of an account's tier in force (`at` in UTC)."""

    old: str | None
    new: str
    reason: str
    at: datetime

    @classmethod
    def of(cls, ch: TierChange) -> TierChangeRow:
        return cls(ch.old_tier, ch.new_tier, ch.reason, _utc(ch.at))

    @property
    def why(self) -> tuple[str | None, dict[str, str]]:
        """The reason as a message key and its values, for crm_bridge.tiering's own wordings (else None, {})."""
        return reason_message(self.reason)


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)  # SQLite hands back naive UTC


def month_before(first: date) -> date:
    return (first - timedelta(days=1)).replace(day=1)


__all__ = ["Accounts", "TierChangeRow", "account_summaries", "billed_revenue", "month_before",
           "open_advice_money"]
