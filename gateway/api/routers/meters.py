"""Meters, their interval series and their live values."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from gateway.api.deps import Page, PageParams, UseCasesDep, page_of
from gateway.api.roles import Capability, needs
from gateway.api.routers.customers import DATE
from gateway.api.schemas.devices import LiveValue, MeterLive
from gateway.api.schemas.figures import MeterSeries
from gateway.api.schemas.places import MeterPublic
from gateway.api.scope import AccessDep, GatewayDep, MeterId
from gateway.api.values import live_values

router = APIRouter(prefix="/api/v1/meters", tags=["meters"], dependencies=[needs(Capability.METERED_DATA)])


def _meter(gw: GatewayDep, mid: str) -> MeterPublic:
    m = gw.directory.meters[mid]
    return MeterPublic(id=m.id, name=m.name or m.id, site=m.site, customer=gw.directory.owner_of_meter(mid),
                       device=m.device, role=m.role)


@router.get("")
def list_meters(gw: GatewayDep, access: AccessDep, page: PageParams) -> Page[MeterPublic]:
    items = [_meter(gw, m) for m in gw.directory.meters if access.sees_meter(gw, m)]
    return page_of(items, page)


@router.get("/{meter_id}")
def get_meter(meter_id: MeterId, gw: GatewayDep) -> MeterPublic:
    return _meter(gw, meter_id)


@router.get("/{meter_id}/series")
def meter_series(meter_id: MeterId, uc: UseCasesDep, start: Annotated[str, Query(pattern=DATE)],
                 end: Annotated[str, Query(pattern=DATE)],
                 freq: Annotated[Literal["15min", "1h", "1d"], Query()] = "1h") -> MeterSeries:
    """Interval series of one meter, on its customer's local clock, each interval with its status."""
    return MeterSeries.model_validate(uc.series("meter", meter_id, start, end, freq))


@router.get("/{meter_id}/live")
def meter_live(meter_id: MeterId, gw: GatewayDep) -> MeterLive:
    """The newest value of every point of the meter, with quality and source time (stale values say so)."""
    device = gw.query.topology.meter_device[meter_id]
    return MeterLive(meter=meter_id, device=device,
                     points=[LiveValue.model_validate(v) for v in live_values(gw, device)])
