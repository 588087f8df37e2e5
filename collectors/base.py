"""The small interface every collector plugin implements, the per-device health it reports, and the shared waits."""

from __future__ import annotations

import abc
import asyncio
import ipaddress
import logging
import random
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, get_args, runtime_checkable

from pydantic import BaseModel

from collectors.reading import Reading

log = logging.getLogger(__name__)

# The gateway passes an `emit` callback; it never blocks (it hands readings to the durable outbox writer).
Emit = Callable[[Sequence[Reading]], None]


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
