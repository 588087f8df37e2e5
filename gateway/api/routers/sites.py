"""Sites and their interval series."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from gateway.api.deps import Page, PageParams, UseCasesDep, page_of
from gateway.api.roles import Capability, needs
from gateway.api.routers.customers import DATE
from gateway.api.schemas.figures import SiteSeries
from gateway.api.schemas.places import SitePublic
from gateway.api.scope import AccessDep, GatewayDep, SiteId

router = APIRouter(prefix="/api/v1/sites", tags=["sites"], dependencies=[needs(Capability.METERED_DATA)])


def _site(gw: GatewayDep, sid: str) -> SitePublic:
    s = next(x for x in gw.config.sites if x.id == sid)
    return SitePublic(id=s.id, customer=s.customer, name=s.name or s.id,
                      meters=[m.id for m in gw.config.meters if m.site == sid])


@router.get("")
def list_sites(gw: GatewayDep, access: AccessDep, page: PageParams) -> Page[SitePublic]:
    return page_of([_site(gw, s.id) for s in gw.config.sites if access.sees_site(gw, s.id)], page)


@router.get("/{site_id}")
def get_site(site_id: SiteId, gw: GatewayDep) -> SitePublic:
    return _site(gw, site_id)


@router.get("/{site_id}/series")
def site_series(site_id: SiteId, uc: UseCasesDep, start: Annotated[str, Query(pattern=DATE)],
                end: Annotated[str, Query(pattern=DATE)],
                freq: Annotated[Literal["15min", "1h", "1d"], Query()] = "1h") -> SiteSeries:
    """Interval series of one site, on its customer's local clock."""
    return SiteSeries.model_validate(uc.series("site", site_id, start, end, freq))
