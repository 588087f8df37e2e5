"""InfluxDB line protocol: readings (one by one, or a collector's column batch) as the lines the store writes.

Schema: measurement `reading`; tags customer, device, meter, point, site, unit (sorted, as InfluxDB keeps them; an
empty tag is omitted); fields value, value_int (`gateway.store.exact`), quality and gateway_ts; timestamp =
source_ts in ns. A tag value InfluxDB 1.x cannot represent is refused (StoreRejected), never mangled.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from collectors.base import ReadingBatch
from collectors.reading import Quality, Reading
from gateway.store.base import StoreRejected
from gateway.store.exact import check_range, exact_int, to_influx

MEASUREMENT = "reading"
# InfluxDB's representable time range (models.MinNanoTime / MaxNanoTime).
MIN_NS = -9223372036854775806
MAX_NS = 9223372036854775806
_PREFIX_CACHE_MAX = 200_000


# -- line protocol -----------------------------------------------------------------------------------------

_TAG_ESCAPES = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})
# InfluxDB 1.x cannot represent a backslash right before a character it would have to escape, or at the end of a
# tag value (the parser reads it as an escape); nor a line break anywhere. Refuse those instead of mangling them.
_BAD_TAG = re.compile(r"[\n\r]|\\(?=[ ,=\\]|$)")
_QUALITY_FIELD = {q: f'quality="{q.value}"' for q in Quality}
# A point rewritten as bad/comm_lost keeps the value field of its earlier write (line protocol cannot write a null),
# so the reads mask it: an error is never a number.
_NO_VALUE = frozenset({Quality.BAD.value, Quality.COMM_LOST.value})
_TAG_ORDER = ("customer", "device", "meter", "point", "site", "unit")  # sorted keys: InfluxDB's own order


def _escape_tag(key: str, value: str, r: Reading) -> str:
    if _BAD_TAG.search(value):
        raise StoreRejected(
            f"reading {r.device!r}/{r.point!r} at {r.source_ts}: tag {key}={value!r} holds a line break or a "
            "backslash before a space, comma, '=', backslash or the end, which InfluxDB line protocol cannot carry"
        )
    return value.translate(_TAG_ESCAPES)


class LineEncoder:
    """Reading -> one line of line protocol; the escaped tag set of each series is built once and cached."""

    def __init__(self) -> None:
        self._prefixes: dict[tuple[str, str, str, str, str, str], str] = {}

    def _prefix(self, r: Reading) -> str:
        key = (r.customer, r.device, r.meter, r.point, r.site, r.unit)
        prefix = self._prefixes.get(key)
        if prefix is None:
            if not r.device or not r.point:
                raise StoreRejected(f"reading at {r.source_ts}: device and point must not be empty "
                                    f"(device={r.device!r}, point={r.point!r})")
            parts = [MEASUREMENT]
            for name, value in zip(_TAG_ORDER, key, strict=True):
                if value:
                    parts.append(f"{name}={_escape_tag(name, value, r)}")
            prefix = ",".join(parts)
            if len(self._prefixes) >= _PREFIX_CACHE_MAX:
                self._prefixes.clear()
            self._prefixes[key] = prefix
        return prefix

    def line(self, r: Reading) -> str:
        quality = _QUALITY_FIELD.get(r.quality)  # type: ignore[call-overload]
        if quality is None:
            raise StoreRejected(f"reading {r.device!r}/{r.point!r} at {r.source_ts}: unknown quality {r.quality!r}")
        ts = r.source_ts
        if not MIN_NS <= ts <= MAX_NS:
            raise StoreRejected(f"reading {r.device!r}/{r.point!r}: source_ts {ts} is outside InfluxDB's time range")
        value = r.value
        if value is None:
            return f"{self._prefix(r)} {quality},gateway_ts={int(r.gateway_ts)}i {int(ts)}"
        v = value
        if v.__class__ is not float:
            if (n := exact_int(value)) is not None:
                check_range(n, f"reading {r.device!r}/{r.point!r} at {ts}")
                return (f"{self._prefix(r)} value={float(n)!r},value_int={to_influx(n)}i,{quality},"
                        f"gateway_ts={int(r.gateway_ts)}i {int(ts)}")
            v = float(value)  # a float subclass (numpy) or a bool: written as a plain float
        if not math.isfinite(v):
            raise StoreRejected(f"reading {r.device!r}/{r.point!r} at {ts}: value {v} is not a finite number "
                                "(a value that is not a number must be sent as None with quality bad)")
        return f"{self._prefix(r)} value={v!r},{quality},gateway_ts={int(r.gateway_ts)}i {int(ts)}"

    def encode(self, readings: Iterable[Reading]) -> bytes:
        if isinstance(readings, ReadingBatch):
            return self.encode_batch(readings)
        line = self.line
        return "\n".join([line(r) for r in readings]).encode()

    def encode_batch(self, b: ReadingBatch) -> bytes:
        """A batch's columns -> line protocol: a float of a known series on one f-string, the rest through `line`."""
        prefixes, fields, isfinite = self._prefixes, _QUALITY_FIELD, math.isfinite
        lines = []
        for c, d, m, p, s, u, v, q, ts, gw in zip(b.customer, b.device, b.meter, b.point, b.site, b.unit, b.value,
                                                  b.quality, b.source_ts, b.gateway_ts, strict=True):
            prefix = prefixes.get((c, d, m, p, s, u))
            quality = fields.get(q)
            if (prefix is None or quality is None or v.__class__ is not float or not isfinite(v)  # type: ignore[arg-type]
                    or not MIN_NS <= ts <= MAX_NS):
                lines.append(self.line(Reading(d, p, v, u, q, ts, gw, c, s, m)))  # checks, caches, or refuses
            else:
                lines.append(f"{prefix} value={v!r},{quality},gateway_ts={int(gw)}i {int(ts)}")
        return "\n".join(lines).encode()
