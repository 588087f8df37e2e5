"""The account manager's view, in one place: the customer file, its interaction log, and the portfolio."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_bridge.registry.models import Alert, Contact, Equipment, Interaction, Ticket, TierRecord
from crm_bridge.registry.repo import RegistryLookupError, customer_by_code
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
from gateway.usecases.errors import NotFound

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


__all__ = ["Accounts", "account_summaries"]
