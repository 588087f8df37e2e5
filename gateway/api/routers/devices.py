"""Engineers: devices with their health, points and live values; Modbus probe and OPC UA browse."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from collectors.registry import DeviceConfig as AnyDeviceConfig
from collectors.registry import PointConfig
from gateway.api.deps import Page, PageParams, client_of, get_auth, page_of
from gateway.api.errors import ApiError, device_failed
from gateway.api.roles import Capability, needs
from gateway.api.schemas.devices import (
    BrowseNode,
    CollectorHealth,
    Decoding,
    DevicePublic,
    HealthPublic,
    LiveValue,
    ProbeResult,
)
from gateway.api.scope import AccessDep, DeviceName, GatewayDep
from gateway.api.values import live_values
from gateway.auth import AuthService
from gateway.device_input import MAX_URL, OPCUA_URL_FORM, InvalidInput, ProbeParams, parse_opcua_url

if TYPE_CHECKING:
    from collectors.modbus.probe import ProbeError
    from collectors.opcua.browse import BrowseError

router = APIRouter(prefix="/api/v1/devices", tags=["devices"],
                   dependencies=[needs(Capability.DEVICES)])


def _health(gw: GatewayDep) -> dict[str, CollectorHealth]:
    return {h.device: CollectorHealth(
        device=h.device, protocol=h.protocol, online=h.online,
        last_success=(datetime.fromtimestamp(h.last_success_ns / 1e9, UTC).isoformat() if h.last_success_ns else None),
        consecutive_failures=h.consecutive_failures, last_latency_s=h.last_latency_s, overruns=h.overruns,
        polls=h.polls, last_error=h.last_error) for h in gw.health()}


_HEALTH = set(HealthPublic.model_fields)  # a device's health in its listing: without device, protocol and polls


def _device(gw: GatewayDep, d: AnyDeviceConfig, health: dict[str, CollectorHealth]) -> DevicePublic:
    tags = gw.directory.tags.get(d.name)
    h = health.get(d.name)
    return DevicePublic(name=d.name, protocol=d.type, address=d.address, interval_s=d.interval_s,
                        customer=tags[0] if tags else None, site=tags[1] if tags else None,
                        meter=tags[2] if tags else None,
                        health=None if h is None else HealthPublic.model_validate(h.model_dump(include=_HEALTH)))


@router.get("/health", tags=["collectors"])
def collector_health(gw: GatewayDep, access: AccessDep) -> list[CollectorHealth]:
    """Per device: online, last success, consecutive failures, last poll latency, cycle overruns, polls, last error."""
    return [h for name, h in _health(gw).items() if access.sees_device(gw, name)]


@router.get("")
def list_devices(gw: GatewayDep, access: AccessDep, page: PageParams) -> Page[DevicePublic]:
    health = _health(gw)
    return page_of([_device(gw, d, health) for d in gw.config.devices if access.sees_device(gw, d.name)], page)


@router.get("/{device}")
def get_device(device: DeviceName, gw: GatewayDep) -> DevicePublic:
    d = next(x for x in gw.config.devices if x.name == device)
    return _device(gw, d, _health(gw))


@router.get("/{device}/points")
def device_points(device: DeviceName, gw: GatewayDep) -> list[PointConfig]:
    """The points the collector reads from the device (from its profile or its own list)."""
    d = next(x for x in gw.config.devices if x.name == device)
    return list(d.resolved_points())


@router.get("/{device}/live")
def device_live(device: DeviceName, gw: GatewayDep) -> list[LiveValue]:
    return [LiveValue.model_validate(v) for v in live_values(gw, device)]


def _anywhere(access: AccessDep) -> None:
    """The device tools reach any host: not for an engineer limited to named sites."""
    if access.sites is not None:
        raise ApiError(403, "the device tools reach any host; this engineer is limited to sites "
                       + ", ".join(sorted(access.sites)), code="limited_to_sites")


def _device_failed(exc: ProbeError | BrowseError, detail: dict[str, Any]) -> ApiError:
    return ApiError(424, str(exc), code=exc.code, detail=detail)


@router.post("/probe", responses=device_failed("The device could not be reached or gave no usable answer"))
async def probe(body: ProbeParams, request: Request, access: AccessDep,
                auth: Annotated[AuthService, Depends(get_auth)]) -> ProbeResult:
    """Read registers (functions 3, 4) or bits (1, 2) once and show every plausible decoding (type x byte/word order).

    `transport` is `tcp` or `rtu_over_tcp` (a serial gateway); `rtu` (a local serial port) is 422 here, as the
    running collector may hold the line: probe it with the command line on the gateway host.

    The rule for both device tools: every refusal is a 4xx with the standard error body, never a 5xx. Invalid
    input (a host that is neither a host name, IDNA included, nor an IP address; a port outside 1..65535; registers
    past 65535; an unknown field) is 422 naming the field and never touches the network. A valid request whose device
    fails is 424 Failed Dependency: `device_unreachable` when no connection was made (unknown name, refused,
    unreachable, timed out), `device_error` when the device answered with a Modbus exception, too few registers or
    not at all. The device's failure is the caller's to fix, not a failure of the gateway.
    """
    from collectors.modbus.probe import ProbeError, probe  # pymodbus only when a probe is asked

    _anywhere(access)

    if body.transport == "rtu":
        # A serial line carries one conversation: opened from here it would collide with the running collector's.
        reason = "serial ports are probed with `energy-gateway modbus probe --transport rtu` on the gateway host"
        raise ApiError(422, f"body.transport: {reason}", detail=[{"where": "body.transport", "reason": reason}])
    try:
        regs, decodings = await probe(body.request())
    except ProbeError as exc:
        raise _device_failed(exc, {"host": body.host, "port": body.port, "unit": body.unit}) from None
    auth.audit(access.principal.username, "device.probe", f"{body.host}:{body.port}", None, client_of(request))
    found = [Decoding.model_validate(dataclasses.asdict(d)) for d in decodings]
    return ProbeResult(registers=regs, decodings=found)


# Unset fields are left out: objects have no `value` or `status`.
@router.get("/opcua/browse", responses=device_failed("The server could not be reached or browsed"),
            response_model_exclude_unset=True)
async def browse(url: Annotated[str, Query(pattern=r"^opc\.tcp://", max_length=MAX_URL,
                                           description=OPCUA_URL_FORM)],
                 access: AccessDep, depth: Annotated[int, Query(ge=1, le=6)] = 3) -> list[BrowseNode]:
    """Walk an OPC UA server's address space from Objects (anonymous, no security).

    Same rule as the probe: a URL that is not `opc.tcp://host[:port][/path]` with a real host and a port in
    1..65535 is 422 (`query.url`) before any connection; a server that cannot be reached is 424
    `device_unreachable`, one that breaks off or takes more than 30 s is 424 `device_error`.
    """
    from collectors.opcua.browse import BrowseError, browse_nodes  # asyncua only when a browse is asked

    _anywhere(access)
    from collectors.opcua.config import OpcUaEndpointConfig

    try:
        target = parse_opcua_url(url)
    except InvalidInput as exc:
        raise ApiError(422, f"query.url: {exc}", detail=[{"where": "query.url", "reason": str(exc)}]) from None
    endpoint = OpcUaEndpointConfig(name="browse", url=target.url, timeout_s=5.0)
    try:
        nodes = await asyncio.wait_for(browse_nodes(endpoint, depth), timeout=30)
    except BrowseError as exc:
        raise _device_failed(exc, {"url": target.url}) from None
    except TimeoutError:
        raise ApiError(424, f"browsing {target.url} took more than 30 s", code="device_error",
                       detail={"url": target.url}) from None
    return [BrowseNode.model_validate(n) for n in nodes]
