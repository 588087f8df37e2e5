"""An account manager's portfolio: their accounts with tier, open alerts and open tickets."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import func, select

from crm_bridge.registry.models import Alert, Ticket, TierRecord
from crm_bridge.registry.repo import RegistryLookupError, customer_by_code
from gateway.api.deps import Page, PageParams, page_of
from gateway.api.roles import Capability, needs
from gateway.api.schemas.accounts import PortfolioEntry
from gateway.api.scope import AccessDep, GatewayDep

router = APIRouter(prefix="/api/v1/portfolio", tags=["portfolio"], dependencies=[needs(Capability.CUSTOMER_FILE)])


@router.get("")
def portfolio(gw: GatewayDep, access: AccessDep, page: PageParams) -> Page[PortfolioEntry]:
    """The accounts the caller may see, with their tier and what is open on them."""
    ids = access.visible([c.id for c in gw.config.customers])
    items = []
    with gw.db() as s:
        for cid in ids:
            try:
                customer = customer_by_code(s, cid)
            except RegistryLookupError:
                continue  # configured but not in the CRM yet
            tier = s.get(TierRecord, customer.id)
            items.append(PortfolioEntry(
                customer=cid, name=customer.name, tier=(tier.override or tier.computed) if tier else None,
                open_alerts=s.scalar(select(func.count(Alert.id)).where(Alert.customer_code == cid,
                                                                        Alert.status != "resolved")) or 0,
                open_tickets=s.scalar(select(func.count(Ticket.id)).where(Ticket.customer_id == customer.id,
                                                                          Ticket.status != "closed")) or 0,
            ))
    return page_of(items, page)
