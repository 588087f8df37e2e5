"""Sites and their interval series."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from gateway.api.deps import PageParams, UseCasesDep, page_of
from gateway.api.roles import Capability, needs
from gateway.api.routers.customers import DATE
from gateway.api.scope import AccessDep, GatewayDep, SiteId

router = APIRouter(prefix="/api/v1/sites", tags=["sites"], dependencies=[needs(Capability.METERED_DATA)])


def _site_json(gw: GatewayDep, sid: str) -> dict[str, Any]:
    s = next(x for x in gw.config.sites if x.id == sid)
    return {"id": s.id, "customer": s.customer, "name": s.name or s.id,
            "meters": [m.id for m in gw.config.meters if m.site == sid]}


@router.get("")
def list_sites(gw: GatewayDep, access: AccessDep, page: PageParams) -> dict[str, Any]:
    return page_of([_site_json(gw, s.id) for s in gw.config.sites if access.sees(s.customer)], page)


@router.get("/{site_id}")
def get_site(site_id: SiteId, gw: GatewayDep) -> dict[str, Any]:
    return _site_json(gw, site_id)


@router.get("/{site_id}/series")
def site_series(site_id: SiteId, uc: UseCasesDep, start: Annotated[str, Query(pattern=DATE)],
                end: Annotated[str, Query(pattern=DATE)],
                freq: Annotated[Literal["15min", "1h", "1d"], Query()] = "1h") -> dict[str, Any]:
    """Interval series of one site, on its customer's local clock."""
    return uc.series("site", site_id, start, end, freq)
