"""Simulated history for the demo: 15-minute register and power values from the plant load model."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from collectors.reading import (
    ACTIVE_ENERGY_IMPORT_KWH,
    ACTIVE_POWER_KW,
    POWER_FACTOR,
    REACTIVE_ENERGY_IMPORT_KVARH,
    REACTIVE_POWER_KVAR,
    Quality,
    Reading,
)
from collectors.sim.load import SLOT_S, LoadModel

# The points of every history slot, in the order history_readings writes them.
POINTS = ((ACTIVE_ENERGY_IMPORT_KWH, "kWh"), (REACTIVE_ENERGY_IMPORT_KVARH, "kvarh"), (ACTIVE_POWER_KW, "kW"),
          (REACTIVE_POWER_KVAR, "kvar"), (POWER_FACTOR, ""))


def history_readings(
    model: LoadModel,
    device: str,
    tags: tuple[str, str, str],
    start_ns: int,
    end_ns: int,
    gateway_ts: int,
) -> list[Reading]:
    """Register values at every 15-min boundary in [start, end) and the slot-mean power, PF of each slot.

    The registers are exactly what the live simulators will show at those instants, so history and live data
    join without a step.
    """
    first = -(-start_ns // (SLOT_S * 10**9))
    last = end_ns // (SLOT_S * 10**9)
    slots = np.arange(first, last, dtype=np.int64)
    if len(slots) == 0:
        return []
    kw = model.slot_kw(slots)
    kvar = model.slot_kvar(kw)
    pf = model.slot_pf(kw)
    kwh0, kvarh0 = model.counters_at(int(slots[0]) * SLOT_S * 10**9)
    hours = SLOT_S / 3600.0
    kwh = kwh0 + np.concatenate([[0.0], np.cumsum(kw[:-1]) * hours])
    kvarh = kvarh0 + np.concatenate([[0.0], np.cumsum(kvar[:-1]) * hours])
    customer, site, meter = tags
    columns = (kwh, kvarh, kw, kvar, pf)
    out: list[Reading] = []
    for i, slot in enumerate(slots):
        ts = int(slot) * SLOT_S * 10**9
        for (point, unit), values in zip(POINTS, columns, strict=True):
            out.append(Reading(device, point, float(values[i]), unit, Quality.GOOD, ts, gateway_ts, customer, site,
                               meter))
    return out


def history_size(meters: int, start_ns: int, end_ns: int) -> int:
    """How many readings `backfill` writes for `meters` meters over [start, end): a progress bar's total."""
    first = -(-start_ns // (SLOT_S * 10**9))
    last = end_ns // (SLOT_S * 10**9)
    return max(0, last - first) * len(POINTS) * meters


def backfill(
    write: Callable[[Sequence[Reading]], None],
    meters: Sequence[tuple[LoadModel, str, tuple[str, str, str]]],
    start_ns: int,
    end_ns: int,
    gateway_ts: int,
    chunk: int = 20_000,
    written: Callable[[int], None] | None = None,
) -> int:
    """Write history for every (model, device, tags); returns the number of readings written.

    `written(n)` is told after each chunk (a progress bar's advance).
    """
    n = 0
    for model, device, tags in meters:
        rows = history_readings(model, device, tags, start_ns, end_ns, gateway_ts)
        for i in range(0, len(rows), chunk):
            part = rows[i : i + chunk]
            write(part)
            if written is not None:
                written(len(part))
        n += len(rows)
    return n
