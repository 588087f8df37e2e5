"""The OPC UA collector: one client per device, polling in chunks or subscribing, reconnecting with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asyncua import Client, Node, ua
from asyncua.client.ua_session import SessionState, UaSession
from asyncua.common.subscription import Subscription

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


# When the server reports a monitored value: on a new status or value (OPC UA's default), or on every new sample.
_TRIGGERS = {"status_value": ua.DataChangeTrigger.StatusValue,
             "status_value_timestamp": ua.DataChangeTrigger.StatusValueTimestamp}
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


async def _server_limit(client: Client, node_id: int) -> int:
    """One of the server's ServerCapabilities limits; 0 when it states none (or has no such node)."""
    try:
        return int(await client.get_node(node_id).read_value() or 0)
    except ua.UaError:
        return 0


async def _publish(session: UaSession) -> None:
    """Keep one more Publish request at the server and hand each answer to its subscription, until the session ends.

    asyncua's own loop does the same with one request; errors while the session closes end this one quietly.
    """
    acks: list[ua.SubscriptionAcknowledgement] = []
    while session.state is SessionState.ACTIVATED:
        try:
            response = await session.publish(acks)
        except (ua.UaError, ConnectionError):  # a timeout, or BadSessionClosed at the end: asyncua's loop goes on
            acks = []
            if session.state is not SessionState.ACTIVATED:
                return
            await asyncio.sleep(1.0)  # as asyncua's loop after a failed round
            continue
        result = response.Parameters
        acks = []
        callback = session._subscription_callbacks.get(result.SubscriptionId)
        if callback is not None:
            done = callback(result)
            if asyncio.iscoroutine(done):
                await done
        if result.NotificationMessage.NotificationData:
            acks.append(ua.SubscriptionAcknowledgement(SubscriptionId=result.SubscriptionId,
                                                       SequenceNumber=result.NotificationMessage.SequenceNumber))


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
        self.subscriptions = 0  # subscriptions of the current session
        self.publishers: list[asyncio.Task[None]] = []  # its extra Publish loops (see subscribe_loop)

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
        publishers, self.publishers = self.publishers, []
        if client is not None:
            try:
                await asyncio.wait_for(client.disconnect(), timeout=2)
            except Exception:  # noqa: BLE001 - the connection is already gone; nothing to save
                log.debug("device %s: disconnect after failure", self.cfg.name, exc_info=True)
        for task in publishers:  # most ended with the session; asyncua ignores answers to the rest once closed
            task.cancel()
        for task in publishers:
            with contextlib.suppress(asyncio.CancelledError):
                await task

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
        limit = await _server_limit(client, ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead)
        self.chunk = limit or DEFAULT_CHUNK

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
        """Monitor every node, spread over as many subscriptions as the limits ask, then emit each period."""
        cfg = self.cfg
        publishing_ms = cfg.publishing_interval_ms or cfg.interval_s * 1000
        per_call = await _server_limit(
            client, ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall) or DEFAULT_CHUNK
        bad = [self.bad(p) for p in self.points if p.node is None]
        seen: set[ua.NodeId] = set()
        monitored = []  # one point per node (the others read the node's notifications through by_node)
        for p in sorted((p for p in self.points if p.node is not None), key=lambda p: bool(p.cfg.deadband)):
            if p.node is not None and p.node.nodeid not in seen:
                seen.add(p.node.nodeid)
                monitored.append(p)
        groups = await self.subscription_groups(client, monitored)
        session = client.uaclient.session
        for group in groups:
            sub = await client.create_subscription(publishing_ms, None)
            if sub.subscription_id is None:
                raise CollectorError(f"device {cfg.name!r}: the server gave the subscription no id")
            # Its Publish answers come here, before any item exists (see `published`), not to asyncua's queue.
            session._subscription_callbacks[sub.subscription_id] = functools.partial(self.published, sub)
            bad += await self._monitor(sub, group, per_call)
        self.subscriptions = len(groups)
        # asyncua keeps one Publish request at the server per session; a subscription whose turn comes while
        # none is there waits for the client's next one, and a busy client's lag becomes a lost value. One
        # more request per subscription (Part 4 5.13.5: keep several queued) lets each publish when due.
        self.publishers += [asyncio.create_task(_publish(session), name=f"opcua-publish:{cfg.name}:{i}")
                            for i in range(len(groups))]
        if bad:
            emit(bad)
        await self._subscribed(client, emit, stop)

    def published(self, sub: Subscription, result: ua.PublishResult) -> None:
        """A Publish answer of `sub` straight into the buffer, as columns.

        asyncua's iterator makes an event object per notification and passes it through a bounded queue (a burst
        of late publishes overflows it); its callback mode starts a task per notification. Here a publish of
        thousands of values is one loop, in the publish loop that received it, and never drops one.
        """
        # asyncua's own line for each Publish answer (its logger, so `log_levels` asyncua = "INFO" still shows it)
        sub.logger.info("Publish callback called with result: %s", result)
        sub.last_publish_at = time.monotonic()
        sub.last_sequence_number = int(result.NotificationMessage.SequenceNumber)
        items, by_node, take = sub._monitored_items, self.by_node, self.take
        for notification in result.NotificationMessage.NotificationData or ():
            if isinstance(notification, ua.DataChangeNotification):
                for item in notification.MonitoredItems:
                    data = items.get(item.ClientHandle)
                    node = data.node if data is not None else None
                    if node is None:
                        continue  # an item being deleted, or not ours
                    for point in by_node.get(node.nodeid, ()):
                        take(point, item.Value)
            elif isinstance(notification, ua.StatusChangeNotification):
                self.lost_reason = f"subscription status {notification.Status}"

    async def subscription_groups(self, client: Client, points: list[_Point]) -> list[list[_Point]]:
        """The points split over subscriptions: at most `max_items_per_subscription` (else the server's limit) each.

        Without either limit all go in one subscription. A server that also limits subscriptions per session gets
        no more than that; its items per subscription then grow (and an item it refuses is reported bad).
        """
        per_sub = self.cfg.max_items_per_subscription or await _server_limit(
            client, ua.ObjectIds.Server_ServerCapabilities_MaxMonitoredItemsPerSubscription)
        count = -(-len(points) // per_sub) if per_sub else 1
        max_subs = await _server_limit(client, ua.ObjectIds.Server_ServerCapabilities_MaxSubscriptionsPerSession)
        if max_subs:
            count = min(count, max_subs)
        count = max(1, min(count, len(points)))
        size = -(-len(points) // count)
        return [points[i:i + size] for i in range(0, len(points), size)] or [[]]

    async def _monitor(self, sub: Subscription, points: list[_Point], per_call: int) -> list[Reading]:
        """Monitored items for `points` (one node each), in calls of `per_call`; the points refused, as bad readings."""
        cfg = self.cfg
        sampling = cfg.sampling_interval_ms or cfg.interval_s * 1000
        bad: list[Reading] = []
        trigger = _TRIGGERS[cfg.data_change_trigger]
        plain = [p for p in points if not p.cfg.deadband]
        every = None if trigger is ua.DataChangeTrigger.StatusValue else ua.DataChangeFilter(Trigger=trigger)
        for i in range(0, len(plain), per_call):
            part = plain[i:i + per_call]
            results = await sub._subscribe([p.node for p in part if p.node is not None], ua.AttributeIds.Value,
                                           every, cfg.queue_size, sampling_interval=sampling)
            bad += [self.bad(q) for p, r in zip(part, results, strict=True) if isinstance(r, ua.StatusCode)
                    for q in self.by_node[p.node.nodeid]]  # type: ignore[union-attr]
        for p in points:
            if p.node is None or not p.cfg.deadband:
                continue
            band = ua.DataChangeFilter(Trigger=trigger, DeadbandType=ua.DeadbandType.Absolute,
                                       DeadbandValue=p.cfg.deadband)
            r = await sub._subscribe(p.node, ua.AttributeIds.Value, band, cfg.queue_size, sampling_interval=sampling)
            if isinstance(r, ua.StatusCode):
                bad += [self.bad(q) for q in self.by_node[p.node.nodeid]]
        return bad

    async def _subscribed(self, client: Client, emit: Emit, stop: asyncio.Event) -> None:
        """Emit the buffer each period until stopped, checking the session with a real request each time."""
        cfg = self.cfg
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
