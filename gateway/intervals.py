"""Interval energy from meter readings, as utilities' VEE rules have it: measured, estimated, missing or pending.

Pure arithmetic on numpy arrays, no store I/O. The steps, per meter:

1. **The register at a boundary T** (`register_at`) comes from the readings next to T within the meter's
   tolerance: a reading at T itself; else the straight line between the last reading in [T - tol, T) and the
   first in (T, T + tol]; else the one reading inside the tolerance. Otherwise the register at T is unknown.
   (When the two readings around T step back, the register was reset or replaced between them: the nearer one is
   taken.)
2. **Intervals** (`register_intervals`): with the register known at both ends, an interval is *measured* (the
   difference). A run of intervals whose inner boundaries are unknown, between two known boundaries at most
   `max_estimate_ns` apart, is *estimated*: the register difference across the gap is shared in proportion to
   time, so the run adds up exactly to it and no interval takes the whole gap. A register that steps back makes its
   interval (or the whole gap) *missing*; so does a gap longer than the limit.
3. **Not yet is not missing.** An interval that is not resolved and ends in the future (its end boundary unknown
   and less than the tolerance before `now`), or that lies after the meter's last known boundary while that
   boundary is at most `max_estimate_ns` old (the meter may still report and the gap still be estimated), is
   *pending*. Pending counts neither as missing nor as zero.
4. **Meters without a register** (`power_intervals`) integrate their mean power over an interval only when its
   readings cover it: at least `min_coverage` of the interval's slices hold a reading. Those intervals are
   *measured* (by power integration; the caller reports the method); the others are missing or pending as above.
5. **Totals** (`combine`) of several meters take the worst status of their parts, in the order
   missing > pending > estimated > measured, and have energy only when every part has (measured or estimated): a
   part that is missing makes the total unknowable, one that is pending makes it not known yet, one that is
   estimated makes it estimated.

A 64-bit integer register (an int64/uint64 counter, which the stores give back as Python ints) enters as its
distance to the first integer of the meter's readings (`register_values`): the differences that make the energy
are then exact, and only the final figure is a float.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
StatusArray = npt.NDArray[np.int8]

MAX_TOLERANCE_S = 60.0
DEFAULT_MAX_ESTIMATE_S = 3600.0
DEFAULT_MIN_COVERAGE = 0.9


class Status(IntEnum):
    """An interval's status, from best to worst: a total of several parts takes the worst of theirs."""

    MEASURED = 0
    ESTIMATED = 1
    PENDING = 2
    MISSING = 3


STATUS_NAMES: tuple[str, ...] = tuple(s.name.lower() for s in Status)


def status_names(codes: npt.NDArray[np.integer[Any]]) -> npt.NDArray[np.object_]:
    """Status codes as their names (`measured`, `estimated`, `pending`, `missing`)."""
    return np.asarray(STATUS_NAMES, dtype=object)[np.asarray(codes, dtype=np.int64)]


@dataclass(frozen=True, slots=True)
class NearReadings:
    """Per boundary T: the last good reading before T and the first at or after T, near T; NaN where none.

    Offsets are in ns and never negative: `before_dt` = T - ts (> 0), `after_dt` = ts - T (>= 0).
    """

    before_dt: FloatArray
    before_value: FloatArray
    after_dt: FloatArray
    after_value: FloatArray

    @classmethod
    def empty(cls, n: int) -> NearReadings:
        def nan() -> FloatArray:
            return np.full(n, np.nan)

        return cls(nan(), nan(), nan(), nan())

    def any(self) -> bool:
        """True when any boundary has a reading near it."""
        return bool(np.isfinite(self.before_value).any() or np.isfinite(self.after_value).any())


def register_values(values: npt.ArrayLike) -> FloatArray:
    """Register readings as float64 for the arithmetic here, integers taken relative to the first integer among them.

    Only differences of a register become energy. A 64-bit counter's value (9007199254740993, 2**64 - 1) does not
    survive a float64, but its distance to another reading of the same counter does: each integer minus the first
    one is computed on Python ints, exactly, and only that distance becomes a float (exact while below 2**53). A
    float among integers is taken relative to the same first integer; floats alone pass as they are.
    """
    arr = np.asarray(values)
    if arr.dtype != object:
        return arr.astype(np.float64)
    base = next((v for v in arr if v.__class__ is int), None)
    if base is None:
        return arr.astype(np.float64)
    return np.array([float(v - base) if v.__class__ is int else float(v) - base for v in arr], dtype=np.float64)


def near_from_windows(k: IntArray, ts: IntArray, values: FloatArray, boundaries: IntArray) -> NearReadings:
    """The readings either side of each boundary, from readings in windows around them sorted by (k, ts).

    `k` is the index of the boundary whose window holds the reading (what a store's `near_boundaries` answers).
    """
    k = np.asarray(k, dtype=np.int64)
    ts = np.asarray(ts, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    b = np.asarray(boundaries, dtype=np.int64)
    out = NearReadings.empty(len(b))
    before = ts < b[k]
    i = np.flatnonzero(before)
    i = i[np.concatenate([k[i][1:] != k[i][:-1], [True]])] if len(i) else i  # the last before T of each window
    out.before_dt[k[i]] = (b[k[i]] - ts[i]).astype(np.float64)
    out.before_value[k[i]] = values[i]
    j = np.flatnonzero(~before)
    j = j[np.concatenate([[True], k[j][1:] != k[j][:-1]])] if len(j) else j  # the first at or after T
    out.after_dt[k[j]] = (ts[j] - b[k[j]]).astype(np.float64)
    out.after_value[k[j]] = values[j]
    return out


def near_readings(
    ts: IntArray, values: FloatArray, boundaries: IntArray, tolerance_ns: int, limit: int | None = None
) -> NearReadings:
    """The reference selection from raw good readings sorted by time, then either side of each boundary.

    The first `limit` readings (all when None) in [T - tol, T + tol] of each boundary, as a store's
    `near_boundaries` selects them.
    """
    ts = np.asarray(ts, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    b = np.asarray(boundaries, dtype=np.int64)
    lo = np.searchsorted(ts, b - tolerance_ns, side="left")
    hi = np.searchsorted(ts, b + tolerance_ns, side="right")
    if limit is not None:
        hi = np.minimum(hi, lo + limit)
    counts = np.maximum(hi - lo, 0)
    k = np.repeat(np.arange(len(b), dtype=np.int64), counts)
    idx = np.concatenate([np.arange(x, y) for x, y in zip(lo, hi, strict=True)]) if counts.sum() else np.zeros(0, int)
    return near_from_windows(k, ts[idx], values[idx], b)


def register_at(near: NearReadings, tolerance_ns: float) -> FloatArray:
    """The register at each boundary from the readings near it; NaN where unknown."""
    with np.errstate(invalid="ignore"):
        ok_b = near.before_dt <= tolerance_ns
        ok_a = near.after_dt <= tolerance_ns
    bv, av, bdt, adt = near.before_value, near.after_value, near.before_dt, near.after_dt
    out = np.full(len(bv), np.nan)
    out[ok_b & ~ok_a] = bv[ok_b & ~ok_a]
    out[ok_a & ~ok_b] = av[ok_a & ~ok_b]
    both = ok_b & ok_a
    exact = both & (adt == 0)
    out[exact] = av[exact]
    line = both & ~exact & (av >= bv)
    out[line] = bv[line] + (av[line] - bv[line]) * (bdt[line] / (bdt[line] + adt[line]))
    stepped = both & ~exact & (av < bv)
    out[stepped] = np.where(bdt[stepped] <= adt[stepped], bv[stepped], av[stepped])
    return out


def register_intervals(
    boundaries: IntArray, register: FloatArray, now_ns: int, max_estimate_ns: int, tolerance_ns: int = 0
) -> tuple[FloatArray, StatusArray]:
    """Energy and status of each interval [boundaries[i], boundaries[i + 1]) from the register at the boundaries."""
    b = np.asarray(boundaries, dtype=np.int64)
    reg = np.asarray(register, dtype=np.float64)
    n = len(b) - 1
    energy = np.full(n, np.nan)
    status = np.full(n, Status.MISSING, dtype=np.int8)
    known = np.flatnonzero(np.isfinite(reg))
    if len(known) >= 2:
        lo, hi = known[:-1], known[1:]
        diff = reg[hi] - reg[lo]
        rising = diff >= 0  # a register that stepped back was reset or replaced: its interval stays missing
        measured = rising & (hi == lo + 1)
        energy[lo[measured]] = diff[measured]
        status[lo[measured]] = Status.MEASURED
        gaps = np.flatnonzero(rising & (hi > lo + 1) & (b[hi] - b[lo] <= max_estimate_ns))
        for g in gaps:
            a, z = int(lo[g]), int(hi[g])
            widths = np.diff(b[a : z + 1]).astype(np.float64)
            energy[a:z] = diff[g] * (widths / float(b[z] - b[a]))
            status[a:z] = Status.ESTIMATED
    unresolved = status == Status.MISSING
    pending = (b[1:] + tolerance_ns > now_ns) & ~np.isfinite(reg[1:])  # its end cannot be known yet
    if len(known):
        last = int(known[-1])
        if now_ns - int(b[last]) <= max_estimate_ns:
            pending |= np.arange(n) >= last
    status[unresolved & pending] = Status.PENDING
    return energy, status


def power_intervals(
    boundaries: IntArray,
    slice_count: FloatArray,
    slice_sum: FloatArray,
    last_reading_ns: int | None,
    now_ns: int,
    max_estimate_ns: int,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> tuple[FloatArray, StatusArray]:
    """Energy (kWh, or kvarh) and status of each interval from good power readings counted and summed per slice.

    `slice_count` and `slice_sum` have one row per interval and one column per slice of it (equal slices). An
    interval is measured when at least `min_coverage` of its slices hold a reading; its energy is then the mean of
    its readings times its length in hours.
    """
    b = np.asarray(boundaries, dtype=np.int64)
    count = np.nan_to_num(np.asarray(slice_count, dtype=np.float64))
    total = np.nan_to_num(np.asarray(slice_sum, dtype=np.float64))
    n = len(b) - 1
    energy = np.full(n, np.nan)
    status = np.full(n, Status.MISSING, dtype=np.int8)
    if n and count.shape[1]:
        covered = (count > 0).mean(axis=1) >= min_coverage - 1e-9
        hours = np.diff(b).astype(np.float64) / 3.6e12
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total.sum(axis=1) / count.sum(axis=1)
        energy[covered] = mean[covered] * hours[covered]
        status[covered] = Status.MEASURED
    unresolved = status == Status.MISSING
    pending = b[1:] > now_ns
    if last_reading_ns is not None and now_ns - last_reading_ns <= max_estimate_ns:
        pending |= b[1:] > last_reading_ns
    status[unresolved & pending] = Status.PENDING
    return energy, status


def combine(energy: FloatArray, status: StatusArray) -> tuple[FloatArray, StatusArray]:
    """The total of several meters (rows) per interval (columns): worst status; energy only if every part has one."""
    e = np.asarray(energy, dtype=np.float64)
    s = np.asarray(status, dtype=np.int8)
    if e.shape[0] == 0:
        return np.full(e.shape[1], np.nan), np.full(e.shape[1], Status.MISSING, dtype=np.int8)
    worst = s.max(axis=0).astype(np.int8)
    total = np.where(worst <= Status.ESTIMATED, e.sum(axis=0), np.nan)
    return total, worst
