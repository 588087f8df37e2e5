"""The forecast archive in InfluxDB: measurement `forecast`, one series per customer and issue slot.

Each issue of a forecast (gateway.store.base.ForecastIssue) is written as points at its target intervals, tags
customer and slot, fields forecast, lower80, upper80, lower95, upper95 (float), issued_at (integer ns), model
(string) and backfilled (boolean). InfluxDB identifies a point by tag set and time, so two issues for the same
interval need different tags: `slot` numbers the issues of the intervals an issue covers (0 for the first, 1 for a
re-issue, ...). That keeps series cardinality at customers x the most issues any one day had (usually one), where a
tag holding the issue time would add a series per issue, for ever. Writing an issue again finds its slot and
rewrites the same points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gateway.store.base import FORECAST_COLUMNS, ForecastIssue, StoreRejected, forecast_rows
from gateway.store.line_protocol import _BAD_TAG, _TAG_ESCAPES, MAX_NS, MIN_NS

if TYPE_CHECKING:  # pandas loads when a store is read: a process that only writes (gateway.store_writer) never needs it
    import pandas as pd

FORECAST_MEASUREMENT = "forecast"
READ_FIELDS = ("issued_at", "model", "backfilled", *FORECAST_COLUMNS)


def _tag(value: str, what: str) -> str:
    if _BAD_TAG.search(value):
        raise StoreRejected(f"forecast of {what!r}: the customer id holds a line break or a backslash before a space, "
                            "comma, '=', backslash or the end, which InfluxDB line protocol cannot carry")
    return value.translate(_TAG_ESCAPES)


def _string_field(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def slot_for(series: Sequence[dict[str, Any]], issue: ForecastIssue) -> int:
    """The slot of `issue` among the issues already stored on its intervals (series grouped by slot), or a new one."""
    used: set[int] = set()
    for s in series:
        slot = int(s["tags"].get("slot") or 0)
        used.add(slot)
        cols = s["columns"]
        i, m = cols.index("issued_at"), cols.index("model")
        if any(row[i] is not None and int(row[i]) == issue.issued_at_ns and row[m] == issue.model
               for row in s["values"]):
            return slot
    return max(used) + 1 if used else 0


def forecast_lines(issue: ForecastIssue, rows: pd.DataFrame, slot: int) -> bytes:
    """Line protocol for an issue's rows (`check_forecast_frame`'s) in `slot`."""
    prefix = f"{FORECAST_MEASUREMENT},customer={_tag(issue.customer, issue.customer)},slot={int(slot)}"
    meta = (f"issued_at={int(issue.issued_at_ns)}i,model={_string_field(issue.model)},"
            f"backfilled={'true' if issue.backfilled else 'false'}")
    lines = []
    for ts, *values in rows.itertuples(index=False):
        if not MIN_NS <= int(ts) <= MAX_NS:
            raise StoreRejected(f"forecast of {issue.customer!r}: interval {ts} is outside InfluxDB's time range")
        fields = ",".join(f"{c}={float(v)!r}" for c, v in zip(FORECAST_COLUMNS, values, strict=True)
                          if not math.isnan(v))
        lines.append(f"{prefix} {fields},{meta} {int(ts)}")
    return "\n".join(lines).encode()


def frame_from_series(series: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """`forecast_rows`' frame from the answer to a SELECT of READ_FIELDS grouped by slot."""
    out: list[tuple[object, ...]] = []
    for s in series:
        cols = s["columns"]
        idx = [cols.index(c) for c in ("time", *READ_FIELDS)]
        for row in s["values"]:
            t, issued, model, backfilled, *values = (row[i] for i in idx)
            if issued is None:
                continue
            out.append((int(t), int(issued), str(model), bool(backfilled),
                        *(math.nan if v is None else float(v) for v in values)))
    return forecast_rows(out)
