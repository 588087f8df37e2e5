"""The OPC UA collector: one client per device, polling in chunks or subscribing, reconnecting with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asyncua import Client, Node, ua
from asyncua.common.subscription import DataChangeEvent, OverflowPolicy, StatusChangeEvent, Subscription

from collectors.base import (
    Collector,
    CollectorError,
    DeviceHealth,
    Emit,
    ReadingBatch,
    run_tasks,
    sleep_or_stop,
    stretched,
)
from collectors.opcua.config import OpcUaDeviceConfig, OpcUaNodeConfig
from collectors.opcua.security import open_session
from collectors.reading import Quality, Reading

log = logging.getLogger(__name__)
DEFAULT_CHUNK = 500  # nodes per request when the server states no limit
_NS = 1_000_000_000


def quality_of(status: ua.StatusCode) -> Quality:
    """OPC UA status code -> quality: Good, Uncertain and Bad by the code's severity bits."""
    if status.is_good():
        return Quality.GOOD
    if status.is_uncertain():
        return Quality.UNCERTAIN
    return Quality.BAD


def _ts_ns(t: Any) -> int | None:
    if t is None:
        return None
    return int(t.timestamp() * _NS)


_WIDE_INTS = (ua.VariantType.Int64, ua.VariantType.UInt64)  # more digits than a float holds


def _number(value: Any, exact: bool = False) -> float | int | None:
    """A node's value as a number: a float, or with `exact` (an unscaled Int64/UInt64 node) the int as is."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if exact and isinstance(value, int):
        return value  # an int64 or uint64 keeps every digit (gateway/store/exact.py)
    if isinstance(value, (int, float)):
        f = float(value)
        return f if math.isfinite(f) else None
    return None


@dataclass
class _Point:
    cfg: OpcUaNodeConfig
    node: Node | None = None
    error: str = ""  # why the node could not be resolved (then every read reports it bad)
    last_source_ns: int | None = None
    exact: bool = False  # read as is (no scale, no offset): a 64-bit integer node's value then stays an int

    def __post_init__(self) -> None:
        self.exact = self.cfg.scale == 1.0 and self.cfg.offset == 0.0


async def _take_notifications(device: _Device, sub: Subscription) -> None:
    """Move a subscription's notifications into the device's buffer (a `ReadingBatch`) as they come.

    asyncua's callback mode starts one asyncio task per notification (10,000 a second at 10,000 nodes); its
    iterator mode, used here, puts them on a queue this one task empties. Its bound (`queue_maxsize`) is set far
    above one publish, and an overflow reconnects (DISCONNECT), which the collector sees: never a silent drop.
    """
    by_node, buffer_of = device.by_node, device.take
    async for ev in sub:
        if isinstance(ev, DataChangeEvent):
            dv = ev.data.monitored_item.Value
            for point in by_node.get(ev.node.nodeid, ()):
                buffer_of(point, dv)
        elif isinstance(ev, StatusChangeEvent):
            device.lost_reason = f"subscription status {ev.notification.Status}"


class _Device:
    def __init__(self, cfg: OpcUaDeviceConfig, state_dir: Path, environ: Mapping[str, str]) -> None:
        self.cfg, self.state_dir, self.environ = cfg, state_dir, environ
        # Reconnects start at 1 s and double; the jitter keeps devices behind one plant network from retrying in step.
        self.health = DeviceHealth(cfg.name, "opcua", address=cfg.url, backoff_max_s=cfg.backoff_max_s, jitter=0.2)
        self.points = [_Point(n) for n in cfg.nodes]
        self.by_node: dict[ua.NodeId, list[_Point]] = {}  # one node may feed several points (e.g. kW and W)
        self.buffer = ReadingBatch.empty()  # subscription notifications not yet emitted
        self.slowdown: float | None = None  # the gateway's back-pressure, as its last answer to emit said
        self.read_requests = 0
        self.chunk = cfg.max_nodes_per_read or DEFAULT_CHUNK
        self.lost_reason = ""
        self.client: Client | None = None

    # -- readings --------------------------------------------------------------------------------
    def reading(self, p: _Point, dv: ua.DataValue) -> Reading:
        return Reading(self.cfg.name, p.cfg.point, *self._decode(p, dv))

    def take(self, p: _Point, dv: ua.DataValue) -> None:
        """`reading` for a subscription's notification, appended to `buffer` as columns (no Reading made)."""
        self.buffer.append(self.cfg.name, p.cfg.point, *self._decode(p, dv))

    def _decode(self, p: _Point, dv: ua.DataValue) -> tuple[float | int | None, str, Quality, int, int]:
        """(value, unit, quality, source ns, gateway ns) of a point's DataValue."""
        now = time.time_ns()
        src = _ts_ns(dv.SourceTimestamp) or _ts_ns(dv.ServerTimestamp) or now
        status = dv.StatusCode
        quality = Quality.GOOD if status is None or status.value == 0 else quality_of(status)
        variant = dv.Value
        raw = variant.Value if variant is not None else None
        exact = p.exact and variant is not None and variant.VariantType in _WIDE_INTS
        value = _number(raw, exact)
        if value is None and quality is not Quality.BAD:
            quality = Quality.BAD  # a string, array or NaN where a number belongs
        if quality is Quality.BAD:
            value = None
        elif value is not None and not exact:
            value = value * p.cfg.scale + p.cfg.offset
        return value, p.cfg.unit, quality, src, now

    def emit(self, emit: Emit, readings: Sequence[Reading]) -> None:
        """Hand readings to the gateway and keep its answer (the back-pressure factor) for the poll loop."""
        self.slowdown = emit(readings)

    def bad(self, p: _Point) -> Reading:
        now = time.time_ns()
        return Reading(self.cfg.name, p.cfg.point, None, p.cfg.unit, Quality.BAD, now, now)

    def offline(self) -> list[Reading]:
        """One comm_lost reading per point, once per outage: the explicit offline signal."""
        if not self.health.outage_began:
            return []
        now = time.time_ns()
        return [Reading(self.cfg.name, p.cfg.point, None, p.cfg.unit, Quality.COMM_LOST, now, now)
                for p in self.points]

    # -- connection ----------------------------------------------------------------------------
    async def connect(self) -> Client:
        cfg = self.cfg
        client = await open_session(cfg, self.state_dir, self.environ)  # with a watchdog as patient as timeout_s
        self.client = client
        try:
            await self.resolve(client)
            await self.read_limits(client)
        except BaseException:
            await self.close()
            raise
        return client

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            try:
                await asyncio.wait_for(client.disconnect(), timeout=2)
            except Exception:  # noqa: BLE001 - the connection is already gone; nothing to save
                log.debug("device %s: disconnect after failure", self.cfg.name, exc_info=True)

    async def resolve(self, client: Client) -> None:
        """Node ids of every form, and browse paths from the Root folder; failures are kept per point."""
        self.by_node.clear()
        namespaces: dict[str, int] = {}
        paths = [p for p in self.points if p.cfg.browse_path]
        for p in self.points:
            p.node, p.error = None, ""
            if p.cfg.node_id is None:
                continue
            nid = ua.NodeId.from_string(p.cfg.node_id)
            uri = getattr(nid, "NamespaceUri", None)
            if uri:
                if uri not in namespaces:
                    try:
                        namespaces[uri] = await client.get_namespace_index(uri)
                    except ValueError:
                        p.error = f"namespace {uri!r} is not on the server"
                        continue
                nid = ua.NodeId(nid.Identifier, namespaces[uri], nid.NodeIdType)
            p.node = client.get_node(nid)
        if paths:
            texts = ["/" + p.cfg.browse_path.strip("/") for p in paths if p.cfg.browse_path]
            results = await client.translate_browsepaths(ua.NodeId(ua.ObjectIds.RootFolder), texts)
            for p, r in zip(paths, results, strict=True):
                if r.StatusCode.is_good() and r.Targets:
                    target = r.Targets[0].TargetId
                    p.node = client.get_node(ua.NodeId(target.Identifier, target.NamespaceIndex, target.NodeIdType))
                else:
                    p.error = f"browse path {p.cfg.browse_path!r}: {r.StatusCode.name}"
        for p in self.points:
            if p.node is not None:
                self.by_node.setdefault(p.node.nodeid, []).append(p)
            else:
                log.warning("device %s point %s: %s", self.cfg.name, p.cfg.point, p.error)

    async def read_limits(self, client: Client) -> None:
        if self.cfg.max_nodes_per_read:
            return
        try:
            limit = await client.get_node(
                ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead).read_value()
        except ua.UaError:
            limit = 0
        self.chunk = int(limit) if limit else DEFAULT_CHUNK

    # -- polling ---------------------------------------------------------------------------------
    async def read_all(self, client: Client, fresh_only: bool) -> list[Reading]:
        """Read every point in chunks of the server's MaxNodesPerRead.

        With `fresh_only`, a value whose source timestamp has not moved since the last read is not sent again.
        """
        out = [self.bad(p) for p in self.points if p.node is None]
        live = [p for p in self.points if p.node is not None]
        for i in range(0, len(live), self.chunk):
            part = live[i:i + self.chunk]
            self.read_requests += 1
            values = await client.read_attributes([p.node for p in part if p.node is not None])
            for p, dv in zip(part, values, strict=True):
                r = self.reading(p, dv)
                if fresh_only and r.quality is not Quality.BAD and p.last_source_ns == r.source_ts:
                    continue  # the server has nothing newer: never re-send an old value as fresh
                p.last_source_ns = r.source_ts
                out.append(r)
        return out

    async def poll_loop(self, client: Client, emit: Emit, stop: asyncio.Event) -> None:
        period = self.cfg.interval_s
        next_at = time.monotonic()
        while not stop.is_set():
            started = time.monotonic()
            readings = await asyncio.wait_for(self.read_all(client, fresh_only=True), self.cfg.timeout_s * 2)
            self.health.succeeded(time.monotonic() - started)
            if readings:
                self.emit(emit, readings)
            period = stretched(self.cfg.interval_s, self.slowdown)  # slower, on purpose, under back-pressure
            next_at += period
            if time.monotonic() > next_at:
                self.health.overruns += int((time.monotonic() - next_at) // period) + 1
                next_at = time.monotonic() + period
            await sleep_or_stop(stop, next_at - time.monotonic())

    # -- subscriptions -------------------------------------------------------------------------
    async def subscribe_loop(self, client: Client, emit: Emit, stop: asyncio.Event) -> None:
        cfg = self.cfg
        period_ms = cfg.interval_s * 1000
        # Iterator mode (see _take_notifications), its queue sized for several publishes of every node.
        sub = await client.create_subscription(period_ms, None, queue_maxsize=max(10_000, 4 * len(self.points)),
                                               overflow=OverflowPolicy.DISCONNECT)
        taker = asyncio.create_task(_take_notifications(self, sub), name=f"opcua-notifications:{cfg.name}")
        try:
            await self._subscribed(client, sub, emit, stop)
        finally:
            taker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await taker

    async def _subscribed(self, client: Client, sub: Subscription, emit: Emit, stop: asyncio.Event) -> None:
        """Monitor every node in chunks the server takes, then emit the buffer each period until stopped."""
        cfg = self.cfg
        period_ms = cfg.interval_s * 1000
        sampling = cfg.sampling_interval_ms or period_ms
        try:
            per_call = int(await client.get_node(
                ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall).read_value() or 0)
        except ua.UaError:
            per_call = 0
        per_call = per_call or DEFAULT_CHUNK
        bad = [self.bad(p) for p in self.points if p.node is None]
        seen: set[ua.NodeId] = set()
        plain = []
        for p in self.points:
            if p.node is not None and not p.cfg.deadband and p.node.nodeid not in seen:
                seen.add(p.node.nodeid)
                plain.append(p)
        for i in range(0, len(plain), per_call):
            part = plain[i:i + per_call]
            results = await sub.subscribe_data_change([p.node for p in part if p.node is not None],
                                                      queuesize=cfg.queue_size, sampling_interval=sampling)
            bad += [self.bad(q) for p, r in zip(part, results, strict=True) if isinstance(r, ua.StatusCode)
                    for q in self.by_node[p.node.nodeid]]  # type: ignore[union-attr]
        for p in self.points:
            node = p.node
            if node is None or not p.cfg.deadband or node.nodeid in seen:
                continue
            seen.add(node.nodeid)
            r = await sub.deadband_monitor(node, p.cfg.deadband, 1, queuesize=cfg.queue_size)
            if isinstance(r, ua.StatusCode):
                bad += [self.bad(q) for q in self.by_node[node.nodeid]]
        if bad:
            emit(bad)
        server_time = client.get_node(ua.ObjectIds.Server_ServerStatus_CurrentTime)
        while not stop.is_set():
            started = time.monotonic()
            # A real request each period: a dead server or a lost session shows here, not only at the watchdog.
            await asyncio.wait_for(server_time.read_value(), cfg.timeout_s)
            if self.lost_reason:
                raise CollectorError(f"device {cfg.name!r}: {self.lost_reason}")
            self.health.succeeded(time.monotonic() - started)
            if self.buffer:
                batch, self.buffer = self.buffer, ReadingBatch.empty()
                self.emit(emit, batch)
            await sleep_or_stop(stop, min(cfg.interval_s, 1.0))

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        while not stop.is_set():
            delay = self.cfg.interval_s  # the loops return only when stopped; never reconnect in a tight loop
            try:
                client = await asyncio.wait_for(self.connect(), self.cfg.timeout_s * 3)
                self.lost_reason = ""
                if self.cfg.mode == "poll":
                    await self.poll_loop(client, emit, stop)
                else:
                    await self.subscribe_loop(client, emit, stop)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every device fault ends in backoff, never in the gateway
                delay = self.health.failed(exc)
                lost: Sequence[Reading] = self.offline()
                if self.buffer:
                    self.buffer.extend(ReadingBatch.of(lost))
                    lost, self.buffer = self.buffer, ReadingBatch.empty()
                if lost:
                    self.emit(emit, lost)
            finally:
                await self.close()
            if await sleep_or_stop(stop, delay):
                break


class OpcUaCollector(Collector):
    """OPC UA devices; each one its own client and task, so a dead server stalls nobody else."""

    name = "opcua"

    def __init__(self, devices: Sequence[OpcUaDeviceConfig], state_dir: Path,
                 environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.devices = [_Device(d, Path(state_dir), env) for d in devices]

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        await run_tasks((f"opcua:{d.cfg.name}", self._staggered(d, i, emit, stop)) for i, d in enumerate(self.devices))

    async def _staggered(self, d: _Device, i: int, emit: Emit, stop: asyncio.Event) -> None:
        await sleep_or_stop(stop, (i * 0.05) % max(d.cfg.interval_s, 0.05))
        await d.run(emit, stop)

    async def poll_once(self) -> list[Reading]:
        out: list[Reading] = []
        for d in self.devices:
            try:
                client = await asyncio.wait_for(d.connect(), d.cfg.timeout_s * 3)
                out += await asyncio.wait_for(d.read_all(client, fresh_only=False), d.cfg.timeout_s * 2)
                d.health.succeeded()
            except Exception as exc:  # noqa: BLE001 - reported as comm_lost readings, like a dead Modbus device
                d.health.failed(exc)
                out += d.offline()
            finally:
                await d.close()
        return out

    def health(self) -> list[DeviceHealth]:
        return [d.health for d in self.devices]

    def read_requests(self) -> dict[str, int]:
        """Read requests sent per device (chunking shows here)."""
        return {d.cfg.name: d.read_requests for d in self.devices}
