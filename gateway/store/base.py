"""The time-series store interface that the embedded and InfluxDB backends both implement."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from collectors.reading import Reading

Agg = Literal["last", "first", "mean", "max", "min", "count", "sum"]


class StoreError(Exception):
    """Root of time-series store errors."""


class StoreUnavailable(StoreError):
    """The store cannot be reached right now; the write may be retried later without loss."""


class StoreRejected(StoreError):
    """The store refused the data itself (retrying the same batch will not help)."""


@dataclass(frozen=True, slots=True)
class LatestValue:
    device: str
    point: str
    value: float | None
    unit: str
    quality: str
    source_ts: int
    meter: str


class TimeSeriesStore(abc.ABC):
    """Writes are idempotent: the same (device, point, source_ts) written twice is stored once.

    That is what turns the outbox's at-least-once delivery into exactly-once storage.
    """

    @abc.abstractmethod
    def write(self, readings: Sequence[Reading]) -> None:
        """Store readings; return only once the store has confirmed them. Raises StoreUnavailable."""

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
        where a bucket holds no good value. Only buckets with start in [start_ns, end_ns) are returned.
        """

    @abc.abstractmethod
    def raw(self, device: str, point: str, start_ns: int, end_ns: int) -> pd.DataFrame:
        """Every stored value: columns ts (int ns), value, quality; sorted by ts."""

    @abc.abstractmethod
    def latest(self, devices: Sequence[str] | None = None) -> list[LatestValue]:
        """The newest value of every (device, point), optionally for some devices only."""

    @abc.abstractmethod
    def count(self, start_ns: int, end_ns: int) -> tuple[int, float]:
        """Number of stored values and the sum of their numeric values in [start_ns, end_ns)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
