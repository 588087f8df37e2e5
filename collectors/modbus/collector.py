"""The Modbus collector: one polling worker per device, one connection and lock per bus, per-device backoff."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Sequence

from collectors.base import Collector, DeviceHealth, Emit, ReadingBatch, run_tasks, sleep_or_stop, stretched
from collectors.counters import CounterTracker, Step
from collectors.modbus.bus import Bus, DeviceException, DeviceUnreachable
from collectors.modbus.config import ModbusDeviceConfig, ModbusPointConfig
from collectors.modbus.datatypes import DataType, make_decoder, modulus
from collectors.modbus.plan import ReadBlock, plan_reads, point_size
from collectors.reading import Quality, Reading

log = logging.getLogger(__name__)

SPLIT_CODES = (2, 3)  # illegal data address / value: the block spans something the device does not have
GATEWAY_CODES = (10, 11)  # gateway path unavailable / target device failed to respond
_WIDE_INTS = (DataType.INT64, DataType.UINT64)  # more digits than a float holds: kept as int when unscaled
# What every store keeps exactly (gateway/store/exact.py): int64 and uint64. A counter unwrapped past it goes as float.
_STORABLE_MIN, _STORABLE_MAX = -(1 << 63), (1 << 64) - 1


class DeviceWorker:
    def __init__(self, cfg: ModbusDeviceConfig, bus: Bus) -> None:
        self.cfg = cfg
        self.bus = bus
        self.points = cfg.resolved_points()
        self.blocks: list[ReadBlock] = plan_reads(self.points, cfg.max_registers, cfg.max_gap)
        # No `address`: the bus's error messages already name the connection and unit.
        self.health = DeviceHealth(device=cfg.name, protocol="modbus", backoff_base_s=cfg.interval_s,
                                   backoff_max_s=cfg.backoff_max_s)
        self.lateness_s: deque[float] = deque(maxlen=5000)
        self._trackers = {p.name: CounterTracker(self._wrap_at(p)) for p in self.points if p.counter}
        self._decoders = {p.name: make_decoder(p.type, p.order, p.bit) for p in self.points}
        self._sizes = {p.name: point_size(p) for p in self.points}
        self._retry_at = 0.0

    @staticmethod
    def _wrap_at(p: ModbusPointConfig) -> float | int | None:
        m = modulus(p.type)
        if m is None:
            return None
        return m if p.scale == 1.0 else m * p.scale

    @staticmethod
    def _exact(p: ModbusPointConfig) -> bool:
        """A 64-bit integer point read as is: its value stays an int, so no digit is lost to a float."""
        return p.type in _WIDE_INTS and p.scale == 1.0 and p.offset == 0.0

    # -- one poll ----------------------------------------------------------------------------------
    def _value(self, p: ModbusPointConfig, block: ReadBlock, data: Sequence[int] | Sequence[bool]
               ) -> tuple[float | int | None, Quality]:
        offset = p.address - block.address
        if p.kind.is_bit:
            return (1.0 if data[offset] else 0.0), Quality.GOOD
        raw = self._decoders[p.name](data[offset : offset + self._sizes[p.name]])  # type: ignore[arg-type]
        if isinstance(raw, str):
            return None, Quality.BAD  # a string is identification, not a measurement; see probe
        value: float | int
        if isinstance(raw, int) and self._exact(p):
            value = raw
        else:
            value = float(raw) * p.scale + p.offset
            if not math.isfinite(value):
                return None, Quality.BAD
        if p.counter:
            value, step = self._trackers[p.name].update(value)
            if isinstance(value, int) and not _STORABLE_MIN <= value <= _STORABLE_MAX:  # past the stores' integers
                value = float(value)
            if step is Step.RESET:
                log.warning("%s: energy register %s went back (meter reset?)", self.cfg.name, p.name)
                return value, Quality.UNCERTAIN
        return value, Quality.GOOD

    async def poll(self) -> tuple[ReadingBatch, bool]:
        """Read every block once. Returns the readings (one batch) and whether the device answered at all."""
        out = ReadingBatch.empty()
        name = self.cfg.name
        unit = self.cfg.unit
        started = time.perf_counter()
        queue = list(self.blocks)
        new_plan: list[ReadBlock] = []
        failure: str | None = None
        slow = False
        async with self.bus.lock:
            while queue:
                block = queue.pop(0)
                try:
                    data = await self.bus.read(block.kind, block.address, block.count, unit, self.cfg.timeout_s)
                except DeviceException as exc:
                    if exc.code in GATEWAY_CODES:  # the gateway is up but the meter behind it is silent: an outage
                        failure, slow = str(exc), True
                        new_plan.extend([block, *queue])
                        break
                    if exc.code in SPLIT_CODES and len(block.points) > 1:
                        parts = block.split()
                        log.info("%s: exception %d on %s %d+%d, splitting into %d requests", self.cfg.name,
                                 exc.code, block.kind.value, block.address, block.count, len(parts))
                        queue[:0] = parts
                        continue
                    now = time.time_ns()
                    for p in block.points:
                        out.append(name, p.name, None, p.unit, Quality.BAD, now, now)
                    new_plan.append(block)
                    continue
                except DeviceUnreachable as exc:
                    failure, slow = str(exc), exc.slow
                    new_plan.extend([block, *queue])
                    break
                answered = time.time_ns()  # the value is as of its answer
                new_plan.append(block)
                for p in block.points:
                    try:
                        value, quality = self._value(p, block, data)
                    except (ValueError, IndexError) as exc:
                        log.debug("%s: cannot decode %s: %s", self.cfg.name, p.name, exc)
                        value, quality = None, Quality.BAD
                    out.append(name, p.name, value, p.unit, quality, answered, answered)
        self.blocks = new_plan  # splits are remembered
        latency = time.perf_counter() - started
        if failure is None:
            self.health.succeeded(latency)
            self._retry_at = 0.0
            return out, True
        backoff = self.health.failed(failure, latency)
        if slow:  # timeouts hold the bus: back off; a refused connection is retried every interval
            self._retry_at = time.monotonic() + backoff
        if self.health.outage_began:  # the offline signal, once per outage; never an old value
            now = time.time_ns()
            got = set(out.point)
            for p in self.points:
                if p.name not in got:
                    out.append(name, p.name, None, p.unit, Quality.COMM_LOST, now, now)
        return out, False

    # -- the loop ----------------------------------------------------------------------------------
    async def run(self, emit: Emit, stop: asyncio.Event, offset_s: float) -> None:
        if await sleep_or_stop(stop, offset_s):
            return
        due = time.monotonic()
        slowdown: float | None = None  # the gateway's back-pressure, as its last answer to emit said
        while not stop.is_set():
            now = time.monotonic()
            if now >= self._retry_at:
                self.lateness_s.append(max(0.0, now - due))
                try:
                    readings, _ = await self.poll()
                except Exception:  # a bug in one device's decoding must not stop its worker
                    log.exception("%s: poll failed", self.cfg.name)
                    readings = ReadingBatch.empty()
                if readings:
                    slowdown = emit(readings)
            # Under back-pressure the next poll is further away: slower, on purpose, so not an overrun.
            interval = stretched(self.cfg.interval_s, slowdown)
            due += interval
            now = time.monotonic()
            if now > due:
                missed = math.ceil((now - due) / interval)
                self.health.overruns += missed
                due += missed * interval
            if await sleep_or_stop(stop, due - time.monotonic()):
                return


class ModbusCollector(Collector):
    """All Modbus devices of a gateway.

    Devices that share a connection share its lock; nothing else is shared, so a dead device only costs its own
    bus its timeouts (and backoff keeps even that small).
    """

    name = "modbus"

    def __init__(self, devices: Sequence[ModbusDeviceConfig]) -> None:
        self._buses: dict[str, Bus] = {}
        self.workers: list[DeviceWorker] = []
        for cfg in devices:
            bus = self._buses.setdefault(cfg.connection_key, Bus(cfg))
            self.workers.append(DeviceWorker(cfg, bus))

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        n = max(len(self.workers), 1)
        try:
            await run_tasks(
                (f"modbus:{w.cfg.name}", w.run(emit, stop, offset_s=(i / n) * w.cfg.interval_s))
                for i, w in enumerate(self.workers)  # staggered start spreads the requests over the interval
            )
        finally:
            for bus in self._buses.values():
                bus.close()

    async def poll_once(self) -> list[Reading]:
        async def one(w: DeviceWorker) -> ReadingBatch:
            readings, _ = await w.poll()
            return readings

        results = await asyncio.gather(*(one(w) for w in self.workers))
        for bus in self._buses.values():
            bus.close()
        return [r for rs in results for r in rs]

    def health(self) -> list[DeviceHealth]:
        return [w.health for w in self.workers]

    def lateness_samples(self) -> dict[str, list[float]]:
        return {w.cfg.name: list(w.lateness_s) for w in self.workers}
