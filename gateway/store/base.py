"""The time-series store interface that the embedded and InfluxDB backends both implement."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from collectors.reading import Reading

if TYPE_CHECKING:  # pandas loads when a store is read: a process that only writes (gateway.store_writer) never needs it
    import pandas as pd

Agg = Literal["last", "first", "mean", "max", "min", "count", "sum"]
FORECAST_COLUMNS = ("forecast", "lower80", "upper80", "lower95", "upper95")  # kWh per interval


class StoreError(Exception):
    """Root of time-series store errors."""


class StoreUnavailable(StoreError):
    """The store cannot be reached right now; the write may be retried later without loss."""


class StoreRejected(StoreError):
    """The store refused the data itself (retrying the same batch will not help)."""


def near_frame(rows: Sequence[tuple[str, int, int, float | int]], limit: int) -> pd.DataFrame:
    """The frame `near_boundaries` returns, from (meter, k, ts, value) rows in any order.

    Sorted by meter, k and ts; at most `limit` rows per meter and boundary (the earliest), one per timestamp. The
    value column is float64, or object dtype holding Python ints when an exact integer is among the values.
    """
    import pandas as pd

    if not rows:
        return pd.DataFrame({"meter": np.array([], dtype=object), "k": np.array([], dtype=np.int64),
                             "ts": np.array([], dtype=np.int64), "value": np.array([], dtype=np.float64)})
    cols = list(zip(*rows, strict=True))
    meter = np.array(cols[0], dtype=object)
    k = np.array(cols[1], dtype=np.int64)
    ts = np.array(cols[2], dtype=np.int64)
    exact = any(v.__class__ is int for v in cols[3])  # a 64-bit register: no digit may pass through a float
    value = np.array(cols[3], dtype=object if exact else np.float64)
    _, code = np.unique(meter.astype(str), return_inverse=True)
    order = np.lexsort((ts, k, code))
    code, k, ts = code[order], k[order], ts[order]
    new_group = np.concatenate([[True], (code[1:] != code[:-1]) | (k[1:] != k[:-1])])
    fresh = new_group | np.concatenate([[True], ts[1:] != ts[:-1]])
    starts = np.flatnonzero(new_group)
    rank = np.arange(len(order)) - starts[np.cumsum(new_group) - 1]
    keep = fresh & (rank < limit)
    order = order[keep]
    return pd.DataFrame({"meter": meter[order], "k": k[keep], "ts": ts[keep], "value": value[order]})


def check_near_args(every_s: int, count: int, tolerance_ns: int, limit: int) -> None:
    """Refuse windows that would overlap or be empty."""
    if int(every_s) <= 0 or count < 0 or limit < 1 or not 0 < 2 * int(tolerance_ns) < int(every_s) * 10**9:
        raise StoreError(
            "near_boundaries needs every_s > 0, count >= 0, limit >= 1 and 0 < 2 x tolerance_ns < every_s; got "
            f"every_s={every_s!r}, count={count!r}, tolerance_ns={tolerance_ns!r}, limit={limit!r}"
        )


@dataclass(frozen=True, slots=True)
class LatestValue:
    device: str
    point: str
    value: float | int | None  # an int for an integer reading (gateway.store.exact), else a float
    unit: str
    quality: str
    source_ts: int
    meter: str


@dataclass(frozen=True, slots=True)
class ForecastIssue:
    """One issue of a customer's forecast: when it was made, by which model, and whether live or backfilled.

    An issue is identified by (customer, issued_at_ns, model); each of its values by that and the target interval.
    A re-issue for the same day is a new issue beside the earlier ones, never written over them.
    """

    customer: str
    issued_at_ns: int
    model: str
    backfilled: bool = False


def forecast_rows(rows: Sequence[tuple[object, ...]]) -> pd.DataFrame:
    """The frame `read_forecasts` returns, from (ts, issued_at, model, backfilled, *FORECAST_COLUMNS) rows.

    Columns ts and issued_at (int64 ns), model (str), backfilled (bool), FORECAST_COLUMNS (float64, NaN for none),
    sorted by issued_at, model and ts.
    """
    import pandas as pd

    names = ["ts", "issued_at", "model", "backfilled", *FORECAST_COLUMNS]
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    frame = pd.DataFrame({
        "ts": np.array(cols[0], dtype=np.int64), "issued_at": np.array(cols[1], dtype=np.int64),
        "model": np.array(cols[2], dtype=object), "backfilled": np.array(cols[3], dtype=bool),
        **{c: np.array(v, dtype=np.float64) for c, v in zip(FORECAST_COLUMNS, cols[4:], strict=True)}})
    return frame.sort_values(["issued_at", "model", "ts"], kind="stable").reset_index(drop=True)


def check_forecast_frame(issue: ForecastIssue, frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of a forecast to write: int64 `ts` (target interval start, ns) and float FORECAST_COLUMNS.

    Rows without any value are left out; an issue without a customer or model is refused (StoreRejected).
    """
    if not issue.customer or not issue.model:
        raise StoreRejected(f"forecast issue {issue!r}: customer and model must not be empty")
    missing = [c for c in ("ts", *FORECAST_COLUMNS) if c not in frame.columns]
    if missing:
        raise StoreRejected(f"forecast of {issue.customer!r}: columns {missing} missing")
    out = frame[["ts", *FORECAST_COLUMNS]].astype({"ts": "int64", **dict.fromkeys(FORECAST_COLUMNS, "float64")})
    values = out[list(FORECAST_COLUMNS)].to_numpy()
    if np.isinf(values).any():
        raise StoreRejected(f"forecast of {issue.customer!r} issued at {issue.issued_at_ns}: infinite value")
    return out[~np.isnan(values).all(axis=1)]


class TimeSeriesStore(abc.ABC):
    """Writes are idempotent: the same (device, point, source_ts) written twice is stored once.

    That is what turns the outbox's at-least-once delivery into exactly-once storage. An integer value (an
    int64/uint64 register) is stored and read back exactly, a float as a float (`gateway.store.exact`); an integer
    outside [-2**63, 2**64 - 1] is refused with StoreRejected.
    """

    @abc.abstractmethod
    def write(self, readings: Sequence[Reading]) -> None:
        """Store readings; return only once the store has confirmed them. Raises StoreUnavailable.

        `readings` may be a `collectors.base.ReadingBatch` (columns, as the pipeline hands them over): a sequence of
        Reading all the same, which a backend may read column by column.
        """

    @abc.abstractmethod
    def buckets(
        self,
        meters: Sequence[str],
        point: str,
        start_ns: int,
        end_ns: int,
        every_s: int,
        agg: Agg,
    ) -> pd.DataFrame:
        """Aggregate good-quality values of `point` per meter into UTC buckets aligned to the epoch.

        Returns a frame indexed by bucket start (tz-aware UTC), one float column per requested meter, NaN
        where a bucket holds no good value. Only buckets with start in [start_ns, end_ns) are returned. `first`
        and `last` give stored values as they are: a meter's column holding an exact integer (an int64/uint64
        register, `gateway.store.exact`) is object dtype with Python ints; the other aggregates are floats.
        """

    def near_boundaries(
        self,
        meters: Sequence[str],
        point: str,
        first_ns: int,
        every_s: int,
        count: int,
        tolerance_ns: int,
        limit: int = 8,
    ) -> pd.DataFrame:
        """The first good readings of `point` around each boundary T = first_ns + k * every_s (0 <= k < count).

        Per meter and boundary: the first `limit` good values in the window [T - tolerance, T + tolerance], each
        with its exact timestamp (with `limit` a little above the polls that fit before T, the window holds the
        readings just before T and the first at or after it). Only the windows are read where the backend allows
        it, never everything in between: the embedded store seeks each window on its (series, ts) key; InfluxQL can
        neither OR time ranges nor give first()'s own timestamp under GROUP BY time, so InfluxDB reads the range
        once and takes bottom(value, limit) of each bucket starting at T - tolerance, which keeps each reading's
        timestamp and is the earliest readings as long as the values do not decrease: meant for registers. (A
        register that steps back within `every_s` after T - tolerance may hide the readings there; the interval
        with the step is lost anyway.)

        Returns a frame with columns meter (str), k (int64), ts (int64 ns), value (float64; object dtype with
        Python ints when an exact integer is among them), sorted by meter, k, ts; nothing for a window without
        good values. Needs 0 < 2 x tolerance_ns < every_s seconds and limit >= 1.
        """
        check_near_args(every_s, count, tolerance_ns, limit)
        if not meters or count == 0:
            return near_frame([], limit)
        return self._near_boundaries(meters, point, int(first_ns), int(every_s), int(count), int(tolerance_ns),
                                     int(limit))

    @abc.abstractmethod
    def _near_boundaries(self, meters: Sequence[str], point: str, first_ns: int, every_s: int, count: int,
                         tolerance_ns: int, limit: int) -> pd.DataFrame:
        """near_boundaries for a backend, its arguments checked and at least one meter and one boundary asked."""

    @abc.abstractmethod
    def raw(self, device: str, point: str, start_ns: int, end_ns: int) -> pd.DataFrame:
        """Every stored value: columns ts (int ns), value, quality; sorted by ts.

        value is float64 (NaN without a value), or object dtype with Python ints when an exact integer is among them.
        """

    @abc.abstractmethod
    def latest(self, devices: Sequence[str] | None = None) -> list[LatestValue]:
        """The newest value of every (device, point), optionally for some devices only."""

    @abc.abstractmethod
    def count(self, start_ns: int, end_ns: int) -> tuple[int, float]:
        """Number of stored values and the sum of their numeric values in [start_ns, end_ns), as a float."""

    @abc.abstractmethod
    def write_forecast(self, issue: ForecastIssue, frame: pd.DataFrame) -> int:
        """Keep one forecast issue: `frame` has `ts` (target interval start, int ns) and FORECAST_COLUMNS.

        Writing the same issue again stores it once; another issue for the same intervals is kept beside it.
        Returns the number of values stored (NaN ones are left out).
        """

    @abc.abstractmethod
    def read_forecasts(self, customer: str, start_ns: int, end_ns: int) -> pd.DataFrame:
        """Every issue's values for targets in [start_ns, end_ns): `forecast_rows`' frame, oldest issue first."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
