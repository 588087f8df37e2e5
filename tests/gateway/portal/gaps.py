"""A portal world whose meter data has gaps: acme loses its readings at chosen 15-min boundaries of one local day."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import tests.gateway.api.world as world_module
from tests.gateway.api.world import CUSTOMERS, World, build_world

ESTIMATED_BOUNDARIES = (time(10, 15),)  # a 30-min gap: 10:00-10:30 estimated (2 intervals)
MISSING_BOUNDARIES = tuple(time(14 + m // 60, m % 60) for m in range(15, 120, 15))  # 14:00-16:00 missing (8)


@dataclass
class GapWorld:
    world: World
    day: str  # acme's local day with the gaps (ISO date)
    estimated: list[str]  # local "HH:MM" starts of the intervals the gaps leave estimated
    missing: list[str]  # ... and missing


def _dropping(original: Callable[..., list[Any]], device: str, drop_ns: set[int]) -> Callable[..., list[Any]]:
    def history_readings(model: Any, dev: str, *args: Any, **kwargs: Any) -> list[Any]:
        readings = original(model, dev, *args, **kwargs)
        if dev != device:
            return readings
        return [r for r in readings if r.source_ts not in drop_ns]

    return history_readings


def build_gap_world(tmp: Path, days_back: int = 2) -> GapWorld:
    """build_world, with acme's readings at the boundaries above missing on the local day `days_back` days ago.

    The world is tests/api/world.py's (same customers, contracts and users); only the simulated history written
    into the store leaves out every reading (registers and power) of acme's device at the dropped boundaries, as a
    meter that did not answer would. With the default [query] max_estimate_s (1 h) one dropped boundary makes the
    two intervals around it estimated, and seven in a row (a two-hour gap) leave their eight intervals missing.
    """
    tz = ZoneInfo(CUSTOMERS["acme"])
    day = datetime.now(tz).date() - timedelta(days=days_back)
    drop = {_ns(day, t, tz) for t in ESTIMATED_BOUNDARIES + MISSING_BOUNDARIES}
    patched = _dropping(world_module.history_readings, "acme-dev", drop)
    with mock.patch.object(world_module, "history_readings", patched):
        world = build_world(tmp)
    return GapWorld(world, day.isoformat(), estimated=["10:00", "10:15"],
                    missing=[f"{14 + m // 60:02d}:{m % 60:02d}" for m in range(0, 120, 15)])


def _ns(day: date, t: time, tz: ZoneInfo) -> int:
    return int(datetime.combine(day, t, tzinfo=tz).timestamp()) * 10**9
