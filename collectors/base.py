"""The small interface every collector plugin implements, the per-device health it reports, and the shared waits."""

from __future__ import annotations

import abc
import asyncio
import ipaddress
import logging
import random
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, get_args, overload, runtime_checkable

from pydantic import BaseModel

from collectors.reading import Quality, Reading

log = logging.getLogger(__name__)

# The gateway passes an `emit` callback; it never blocks (it hands readings to the durable outbox writer). A list of
# readings or, cheaper, one `ReadingBatch` per poll. It may answer with a slow-down factor (>= 1, see
# `stretched`): the gateway's outbox grows faster than the store takes it, so every device polls that much slower.
Emit = Callable[[Sequence[Reading]], float | None]


def stretched(interval_s: float, factor: float | None) -> float:
    """A poll interval under the gateway's back-pressure: `interval_s` times the factor emit answered (if > 1)."""
    return interval_s * factor if factor is not None and factor > 1.0 else interval_s


class ReadingBatch(Sequence[Reading]):
    """Readings as columns: one list per field, one entry per reading, for the path from the collector to the store.

    One poll of a device becomes one batch: ten lists instead of one object per reading, which the outbox packs
    and the stores write column by column. It is also a `Sequence[Reading]` (a Reading is made only when one is
    asked for), so code that takes a list of readings takes a batch too.
    """

    __slots__ = ("customer", "device", "gateway_ts", "meter", "point", "quality", "site", "source_ts", "unit",
                 "value")
    FIELDS = ("device", "point", "value", "unit", "quality", "source_ts", "gateway_ts", "customer", "site", "meter")

    def __init__(self, device: list[str], point: list[str], value: list[float | int | None], unit: list[str],
                 quality: list[Quality], source_ts: list[int], gateway_ts: list[int], customer: list[str],
                 site: list[str], meter: list[str]) -> None:
        self.device, self.point, self.value, self.unit, self.quality = device, point, value, unit, quality
        self.source_ts, self.gateway_ts = source_ts, gateway_ts
        self.customer, self.site, self.meter = customer, site, meter

    @classmethod
    def of(cls, readings: Iterable[Reading]) -> ReadingBatch:
        """The readings as a batch (a batch is returned as it is)."""
        if isinstance(readings, ReadingBatch):
            return readings
        rs = readings if isinstance(readings, (list, tuple)) else list(readings)
        return cls([r.device for r in rs], [r.point for r in rs], [r.value for r in rs], [r.unit for r in rs],
                   [r.quality for r in rs], [r.source_ts for r in rs], [r.gateway_ts for r in rs],
                   [r.customer for r in rs], [r.site for r in rs], [r.meter for r in rs])

    @classmethod
    def empty(cls) -> ReadingBatch:
        return cls([], [], [], [], [], [], [], [], [], [])

    @classmethod
    def concat(cls, batches: Iterable[ReadingBatch]) -> ReadingBatch:
        out = cls.empty()
        for b in batches:
            out.extend(b)
        return out

    def extend(self, other: ReadingBatch) -> None:
        """Append `other`'s readings to this batch (in place)."""
        for name in self.FIELDS:
            getattr(self, name).extend(getattr(other, name))

    def append(self, device: str, point: str, value: float | int | None, unit: str, quality: Quality,
               source_ts: int, gateway_ts: int) -> None:
        """Add one reading of a collector (untagged): the cheap way to build a poll's batch."""
        self.device.append(device)
        self.point.append(point)
        self.value.append(value)
        self.unit.append(unit)
        self.quality.append(quality)
        self.source_ts.append(source_ts)
        self.gateway_ts.append(gateway_ts)
        self.customer.append("")
        self.site.append("")
        self.meter.append("")

    def columns(self) -> tuple[list[Any], ...]:
        """The ten columns in `FIELDS` order (the lists themselves, not copies)."""
        return (self.device, self.point, self.value, self.unit, self.quality, self.source_ts, self.gateway_ts,
                self.customer, self.site, self.meter)

    def take(self, indices: Sequence[int]) -> ReadingBatch:
        """A new batch of the readings at `indices`, in that order."""
        return ReadingBatch(*([col[i] for i in indices] for col in self.columns()))

    def readings(self) -> list[Reading]:
        """Every reading as a `Reading` (for tools, tests and the rare slow path)."""
        return [Reading(*row) for row in zip(*self.columns(), strict=True)]

    def __len__(self) -> int:
        return len(self.device)

    def __iter__(self) -> Iterator[Reading]:
        for row in zip(*self.columns(), strict=True):
            yield Reading(*row)

    @overload
    def __getitem__(self, i: int) -> Reading: ...

    @overload
    def __getitem__(self, i: slice) -> ReadingBatch: ...

    def __getitem__(self, i: int | slice) -> Reading | ReadingBatch:
        if isinstance(i, slice):
            return ReadingBatch(*(col[i] for col in self.columns()))
        return Reading(*(col[i] for col in self.columns()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ReadingBatch):
            return self.columns() == other.columns()
        if isinstance(other, (list, tuple)):  # compares like the list of its readings
            return self.readings() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    def __repr__(self) -> str:
        return f"ReadingBatch({len(self)} readings)"


class CollectorError(Exception):
    """Root of every error raised by the collectors package."""


class CollectorConfigError(CollectorError):
    """A device or point entry cannot be used as configured; the message names the device and key."""


@dataclass(slots=True)
class DeviceHealth:
    """One device's health as the gateway shows it, and the rules every collector follows on failure.

    A device error is logged once at ERROR, then at DEBUG until the device answers again, which is logged once
    ("back online"): a dead meter costs two log lines per outage, not one per poll. The wait before the next
    attempt doubles from `backoff_base_s` with each failure in a row, up to `backoff_max_s`.
    """

    device: str
    protocol: str
    online: bool = False
    last_success_ns: int | None = None
    consecutive_failures: int = 0
    last_latency_s: float | None = None
    overruns: int = 0
    polls: int = 0  # attempts, answered or not
    last_error: str = ""
    address: str = field(default="", compare=False)  # where the device is, for the log lines
    backoff_base_s: float = field(default=1.0, repr=False, compare=False)
    backoff_max_s: float = field(default=60.0, repr=False, compare=False)
    jitter: float = field(default=0.0, repr=False, compare=False)  # +-fraction, so many devices do not retry in step

    def succeeded(self, latency_s: float | None = None) -> None:
        """Record an answer; the first one after an outage is logged once."""
        if self.consecutive_failures:
            log.warning("%s device %s%s: back online after %d failed attempts", self.protocol, self.device,
                        self._where(), self.consecutive_failures)
        self.polls += 1
        if latency_s is not None:
            self.last_latency_s = latency_s
        self.online = True
        self.consecutive_failures = 0
        self.last_success_ns = time.time_ns()
        self.last_error = ""

    def failed(self, error: BaseException | str, latency_s: float | None = None) -> float:
        """Record a failed attempt, log it (once loud per outage), and return the seconds to back off."""
        self.polls += 1
        if latency_s is not None:
            self.last_latency_s = latency_s
        self.online = False
        self.consecutive_failures += 1
        self.last_error = error if isinstance(error, str) else (str(error) or type(error).__name__)
        level = logging.ERROR if self.consecutive_failures == 1 else logging.DEBUG
        log.log(level, "%s device %s%s: %s", self.protocol, self.device, self._where(), self.last_error)
        return self.backoff_s()

    @property
    def outage_began(self) -> bool:
        """True right after the failure that began an outage: the moment to send the offline signal, once."""
        return self.consecutive_failures == 1

    def backoff_s(self) -> float:
        """Seconds to wait after the current run of failures (0 while the device answers)."""
        n = self.consecutive_failures
        if n == 0:
            return 0.0
        delay = min(self.backoff_base_s * 2 ** min(n - 1, 30), self.backoff_max_s)
        if self.jitter:
            delay *= random.uniform(1 - self.jitter, 1 + self.jitter)  # noqa: S311 - spreading retries, not secrecy
        return delay

    def _where(self) -> str:
        return f" ({self.address})" if self.address else ""


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Wait `seconds` or until `stop` is set, whichever comes first; True when stopped."""
    if seconds <= 0 or stop.is_set():
        return stop.is_set()
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        return False
    return True


async def run_tasks(named: Iterable[tuple[str, Coroutine[Any, Any, None]]]) -> None:
    """Run one named task per device until all end; when one raises or the caller is cancelled, cancel the rest."""
    tasks = [asyncio.create_task(coro, name=name) for name, coro in named]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()


class Collector(abc.ABC):
    """One protocol's collector over a set of devices (one worker per connection inside)."""

    name: str = "collector"

    @abc.abstractmethod
    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        """Poll or subscribe until `stop` is set; emit readings as they come. Never raises for device faults."""

    @abc.abstractmethod
    async def poll_once(self) -> list[Reading]:
        """One read of every configured point (used by `energy-gateway collect --once`)."""

    @abc.abstractmethod
    def health(self) -> list[DeviceHealth]:
        """Current health of every device."""


def host_key(host: str) -> str:
    """A host as compared for duplicates: loopback names and addresses are one host; nothing is resolved."""
    h = host.strip().lower().rstrip(".")
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    if h == "localhost" or h.endswith(".localhost"):
        return "loopback"
    try:
        ip = ipaddress.ip_address(h)
    except ValueError:
        return h
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return "loopback" if ip.is_loopback else str(ip)


@runtime_checkable
class Device(Protocol):
    """What the gateway asks of any `[[devices]]` entry, whatever its protocol (each plugin's model implements it).

    The gateway's config checks, the device API and the status display use only this, so adding a protocol needs
    no `isinstance` or `getattr` on the gateway's side.
    """

    name: str
    interval_s: float

    @property
    def address(self) -> str:
        """Where the device is, as an engineer would write it (a URL, host:port and unit, or a serial port)."""
        ...

    def resolved_points(self) -> Sequence[Any]:
        """The points the collector reads from the device (each with `name`, or `point`, and `unit`)."""
        ...

    def secret_envs(self) -> list[tuple[str, str]]:
        """(key in the entry, environment variable) for every secret the entry names."""
        ...

    def identity(self) -> tuple[str, str, str | None] | None:
        """The one physical device this entry reads, when no other entry may read it too.

        (comparison key, as written, host as written); None when entries may share an address (one OPC UA server
        serves many meters).
        """
        ...

    def entry_problems(self) -> list[tuple[str, str]]:
        """(key path inside the entry, why) for what its model alone cannot check (a point past the last register)."""
        ...


@dataclass(frozen=True, slots=True)
class CollectorContext:
    """What the gateway gives every collector besides its devices."""

    state_dir: Path  # the gateway's data_dir: certificates, pinned server keys
    environ: Mapping[str, str]  # where the secrets a device entry names (`password_env`) are looked up


@dataclass(frozen=True, slots=True)
class Plugin:
    """A collector plugin: the model of its `[[devices]]` entries and how to build its collector from them.

    `create` gets every device of the plugin's type at once, so a plugin can share connections between them.
    """

    config: type[BaseModel]  # with a `type: Literal["<protocol>"]` field: the entry's tag in gateway.toml
    create: Callable[[Sequence[Any], CollectorContext], Collector]

    @property
    def type(self) -> str:
        (tag,) = get_args(self.config.model_fields["type"].annotation)
        return str(tag)
