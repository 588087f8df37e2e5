"""The Reading: one measured value of one point of one device, as every collector emits it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum


class Quality(StrEnum):
    """OPC-style quality carried by every value; `comm_lost` is the explicit "device offline" signal."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"
    COMM_LOST = "comm_lost"


def now_ns() -> int:
    return time.time_ns()


def ns_to_datetime(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


@dataclass(frozen=True, slots=True)
class Reading:
    """One value.

    Timestamps are integer nanoseconds since the Unix epoch (UTC): cheap to make at 10k+ values/s and exact
    when stored. `value` is None whenever quality is bad or comm_lost: an error is never a number. It is an int
    for an unscaled 64-bit integer register (which a float would round past 2**53), else a float.
    `customer`, `site` and `meter` are filled by the gateway from the meter-to-customer mapping.
    """

    device: str
    point: str
    value: float | int | None
    unit: str = ""
    quality: Quality = Quality.GOOD
    source_ts: int = field(default_factory=now_ns)
    gateway_ts: int = field(default_factory=now_ns)
    customer: str = ""
    site: str = ""
    meter: str = ""

    @property
    def source_time(self) -> datetime:
        return ns_to_datetime(self.source_ts)

    @property
    def gateway_time(self) -> datetime:
        return ns_to_datetime(self.gateway_ts)

    def tagged(self, customer: str, site: str, meter: str) -> Reading:
        return replace(self, customer=customer, site=site, meter=meter)


# Canonical point names. Meter profiles and node maps name their points with these so the query layer,
# forecasts and services can find active power and energy whatever the meter model is.
ACTIVE_POWER_KW = "active_power_kw"
REACTIVE_POWER_KVAR = "reactive_power_kvar"
ACTIVE_ENERGY_IMPORT_KWH = "active_energy_import_kwh"
REACTIVE_ENERGY_IMPORT_KVARH = "reactive_energy_import_kvarh"
POWER_FACTOR = "power_factor"
