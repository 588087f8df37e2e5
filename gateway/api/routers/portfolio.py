"""An account manager's portfolio: their accounts with tier, open alerts and open tickets."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import func, select

from crm_bridge.registry.models import Alert, Company, Ticket, TierRecord
from gateway.api.deps import PageParams, page_of
from gateway.api.roles import Capability, needs
from gateway.api.scope import AccessDep, GatewayDep

router = APIRouter(prefix="/api/v1/portfolio", tags=["portfolio"], dependencies=[needs(Capability.CUSTOMER_FILE)])


@router.get("")
def portfolio(gw: GatewayDep, access: AccessDep, page: PageParams) -> dict[str, Any]:
    ids = access.visible([c.id for c in gw.config.customers])
    items = []
    with gw.db() as s:
        for cid in ids:
            company = s.scalar(select(Company).where(Company.code == cid))
            if company is None:
                continue
            tier = s.get(TierRecord, company.id)
            items.append({
                "customer": cid, "name": company.name,
                "tier": (tier.override or tier.computed) if tier else None,
                "open_alerts": s.scalar(select(func.count(Alert.id)).where(Alert.company_code == cid,
                                                                           Alert.status != "resolved")),
                "open_tickets": s.scalar(select(func.count(Ticket.id)).where(Ticket.company_id == company.id,
                                                                             Ticket.status != "closed")),
            })
    return page_of(items, page)
