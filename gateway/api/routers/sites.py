"""Sites and their interval series."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query

from gateway.api.deps import PageParams, page_of
from gateway.api.errors import ApiError
from gateway.api.roles import Capability, needs
from gateway.api.routers.customers import DATE, series_rows
from gateway.api.scope import AccessDep, GatewayDep, SiteId
from gateway.api.views import parse_day
from gateway.query import QueryError, day_bounds

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
def site_series(site_id: SiteId, gw: GatewayDep, start: Annotated[str, Query(pattern=DATE)],
                end: Annotated[str, Query(pattern=DATE)],
                freq: Annotated[Literal["15min", "1h", "1d"], Query()] = "1h") -> dict[str, Any]:
    """Interval series of one site, on its customer's local clock."""
    return scoped_series(gw, "site", site_id, start, end, freq)


def scoped_series(gw: GatewayDep, scope: Literal["site", "meter"], ident: str, start: str, end: str,
                  freq: Literal["15min", "1h", "1d"]) -> dict[str, Any]:
    tz = gw.query.topology.tz_of(scope, ident)
    first, last = parse_day(start, tz, "start"), parse_day(end, tz, "end")
    if last < first or (last - first).days > 92:
        raise ApiError(422, f"end must be within 93 days after start ({start}..{end})")
    s, _ = day_bounds(str(first), tz)
    _, e = day_bounds(str(last), tz)
    try:
        frame = gw.query.series(scope, ident, s, e, freq)
    except QueryError as exc:
        raise ApiError(404, str(exc)) from None
    return {scope: ident, "timezone": str(ZoneInfo(str(tz))), "freq": freq, "intervals": series_rows(frame)}
