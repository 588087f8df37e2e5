"""The small interface every collector plugin implements, and the per-device health it reports."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from collectors.reading import Reading

# The gateway passes an `emit` callback; it never blocks (it hands readings to the durable outbox writer).
Emit = Callable[[Sequence[Reading]], None]


class CollectorError(Exception):
    """Root of every error raised by the collectors package."""


class CollectorConfigError(CollectorError):
    """A device or point entry cannot be used as configured; the message names the device and key."""


@dataclass(slots=True)
class DeviceHealth:
    device: str
    protocol: str
    online: bool = False
    last_success_ns: int | None = None
    consecutive_failures: int = 0
    last_latency_s: float | None = None
    overruns: int = 0
    polls: int = 0
    last_error: str = ""


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
