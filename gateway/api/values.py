"""Live values of a device from the store's newest rows, with their age and quality."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from gateway.runtime import Gateway


def live_values(gw: Gateway, device: str) -> list[dict[str, Any]]:
    now = time.time_ns()
    interval = next((getattr(d, "interval_s", 1.0) for d in gw.config.devices if d.name == device), 1.0)
    out = []
    for v in sorted(gw.store.latest([device]), key=lambda x: x.point):
        age = (now - v.source_ts) / 1e9
        out.append({"point": v.point, "value": v.value, "unit": v.unit, "quality": v.quality,
                    "source_time": datetime.fromtimestamp(v.source_ts / 1e9, UTC).isoformat(),
                    "age_s": round(age, 1), "stale": age > 3 * float(interval) + 5})
    return out
