"""An account manager's portfolio: their accounts with tier, open alerts and open tickets."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.api.deps import Page, PageParams, page_of
from gateway.api.roles import Capability, needs
from gateway.api.schemas.accounts import PortfolioEntry
from gateway.api.scope import AccessDep, AccountsDep, GatewayDep

router = APIRouter(prefix="/api/v1/portfolio", tags=["portfolio"], dependencies=[needs(Capability.CUSTOMER_FILE)])


@router.get("")
def portfolio(accounts: AccountsDep, gw: GatewayDep, access: AccessDep, page: PageParams) -> Page[PortfolioEntry]:
    """The accounts the caller may see, with their tier and what is open on them."""
    return page_of(accounts.portfolio(access.visible([c.id for c in gw.config.customers])), page)
