"""Engineers: devices with their health, points and live values; Modbus probe and OPC UA browse."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.deps import PageParams, client_of, get_auth, page_of, require_roles
from gateway.api.errors import ApiError
from gateway.api.scope import AccessDep, DeviceName, GatewayDep
from gateway.api.values import live_values
from gateway.auth import AuthService

router = APIRouter(prefix="/api/v1/devices", tags=["devices"],
                   dependencies=[Depends(require_roles("admin", "engineer"))])


def _health(gw: GatewayDep) -> dict[str, Any]:
    out = {}
    for h in gw.health():
        out[h.device] = {"online": h.online, "consecutive_failures": h.consecutive_failures,
                         "last_success": (datetime.fromtimestamp(h.last_success_ns / 1e9, UTC).isoformat()
                                          if h.last_success_ns else None),
                         "last_latency_s": h.last_latency_s, "overruns": h.overruns, "last_error": h.last_error}
    return out


def _device_json(gw: GatewayDep, d: Any, health: dict[str, Any]) -> dict[str, Any]:
    tags = gw.config.tags_by_device().get(d.name)
    address = getattr(d, "url", None) or f"{getattr(d, 'host', '')}:{getattr(d, 'port', '')}"
    return {"name": d.name, "protocol": d.type, "address": address, "interval_s": getattr(d, "interval_s", None),
            "customer": tags[0] if tags else None, "site": tags[1] if tags else None,
            "meter": tags[2] if tags else None, "health": health.get(d.name)}


@router.get("/health", tags=["collectors"])
def collector_health(gw: GatewayDep) -> list[dict[str, Any]]:
    """Per device: online, last success, consecutive failures, last poll latency, cycle overruns, polls, last error."""
    return [{"device": h.device, "protocol": h.protocol, "online": h.online,
             "last_success": (datetime.fromtimestamp(h.last_success_ns / 1e9, UTC).isoformat()
                              if h.last_success_ns else None),
             "consecutive_failures": h.consecutive_failures, "last_latency_s": h.last_latency_s,
             "overruns": h.overruns, "polls": h.polls, "last_error": h.last_error} for h in gw.health()]


@router.get("")
def list_devices(gw: GatewayDep, page: PageParams) -> dict[str, Any]:
    health = _health(gw)
    return page_of([_device_json(gw, d, health) for d in gw.config.devices], page)


@router.get("/{device}")
def get_device(device: DeviceName, gw: GatewayDep) -> dict[str, Any]:
    d = next(x for x in gw.config.devices if x.name == device)
    return _device_json(gw, d, _health(gw))


@router.get("/{device}/points")
def device_points(device: DeviceName, gw: GatewayDep) -> list[dict[str, Any]]:
    """The points the collector reads from the device (from its profile or its own list)."""
    d = next(x for x in gw.config.devices if x.name == device)
    resolved = getattr(d, "resolved_points", None)
    points = resolved() if callable(resolved) else getattr(d, "nodes", [])
    return [p.model_dump(mode="json") for p in points]


@router.get("/{device}/live")
def device_live(device: DeviceName, gw: GatewayDep) -> list[dict[str, Any]]:
    return live_values(gw, device)


class ProbeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(502, ge=1, le=65535)
    unit: int = Field(1, ge=0, le=255)
    address: int = Field(0, ge=0, le=65535)
    count: int = Field(4, ge=1, le=125)
    function: int = Field(3, ge=3, le=4)
    timeout_s: float = Field(2.0, gt=0, le=10)


@router.post("/probe")
async def probe(body: ProbeRequest, request: Request, access: AccessDep,
                auth: Annotated[AuthService, Depends(get_auth)]) -> dict[str, Any]:
    """Read registers once and show every plausible decoding (type x byte/word order)."""
    from gateway.cli_modbus import ProbeError, decodings, read_registers

    try:
        regs = await read_registers(body.host, body.port, body.unit, body.address, body.count, body.function,
                                    body.timeout_s)
    except ProbeError as exc:
        raise ApiError(502, str(exc), code="device_error") from None
    auth.audit(access.principal.username, "device.probe", f"{body.host}:{body.port}", None,
               client_of(request))
    return {"registers": regs, "decodings": [dataclasses.asdict(d) for d in decodings(regs)]}


@router.get("/opcua/browse")
async def browse(url: Annotated[str, Query(pattern=r"^opc\.tcp://", max_length=300)],
                 depth: Annotated[int, Query(ge=1, le=6)] = 3) -> list[dict[str, Any]]:
    """Walk an OPC UA server's address space from Objects (anonymous, no security)."""
    from gateway.cli_opcua import BrowseError, browse_nodes

    try:
        return await asyncio.wait_for(browse_nodes(url, depth), timeout=30)
    except (BrowseError, TimeoutError) as exc:
        raise ApiError(502, f"{url}: {exc}", code="device_error") from None
