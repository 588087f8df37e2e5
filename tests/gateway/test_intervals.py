"""Interval energy (gateway.intervals) against a simulated true load: conservation, no energy from outside, statuses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.intervals import (
    NearReadings,
    Status,
    combine,
    near_readings,
    power_intervals,
    register_at,
    register_intervals,
    register_values,
    status_names,
)

S = 10**9
IV = 900 * S
T0 = 1_767_225_600 * S  # a 15-min boundary
SEG = 300 * S  # the true load changes every 5 minutes
LEAD = 1800 * S  # data starts this long before the first boundary


@dataclass
class World:
    """A true load, the register it drives (with resets), the readings that reached the store and the rules."""

    boundaries: np.ndarray
    powers: np.ndarray  # kW per 5-min segment from T0 - LEAD
    resets: list[tuple[int, float]]  # (time, register value right after)
    ts: np.ndarray
    values: np.ndarray
    tol: int
    max_est: int
    now: int
    limit: int | None = None  # readings per boundary window the store hands over (None: all)

    def energy(self, t: np.ndarray | int) -> np.ndarray:
        """True energy (kWh) drawn since T0 - LEAD, at t."""
        x = np.asarray(t, dtype=np.int64) - (T0 - LEAD)
        seg = np.clip(x // SEG, 0, len(self.powers) - 1)
        cum = np.concatenate([[0.0], np.cumsum(self.powers) * (SEG / 3.6e12)])
        return cum[seg] + self.powers[seg] * ((x - seg * SEG) / 3.6e12)

    def register(self, t: np.ndarray) -> np.ndarray:
        out = 50_000.0 + self.energy(t)
        for r, v in self.resets:
            after = t >= r
            out[after] = v + self.energy(t[after]) - float(self.energy(r))
        return out

    def p_range(self, lo: int, hi: int) -> tuple[float, float]:
        a = max(0, (lo - (T0 - LEAD)) // SEG)
        b = min(len(self.powers), (hi - (T0 - LEAD)) // SEG + 1)
        p = self.powers[a:b]
        return float(p.min()), float(p.max())

    def reset_near(self, lo: int, hi: int) -> bool:
        return any(lo <= r <= hi for r, _ in self.resets)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    n = draw(st.integers(2, 16))
    poll_s = draw(st.sampled_from([1, 2, 5, 10, 20]))
    jitter = draw(st.floats(0.0, 0.45))
    seed = draw(st.integers(0, 2**32 - 1))
    max_est = draw(st.sampled_from([900, 1800, 3600, 7200])) * S
    span = LEAD + n * IV + LEAD
    powers = np.array(draw(st.lists(st.floats(0.0, 5000.0), min_size=span // SEG + 1, max_size=span // SEG + 1)))
    rng = np.random.default_rng(seed)
    steps = poll_s * S * (1.0 + jitter * rng.uniform(-1, 1, size=int(span / (poll_s * S * 0.5)) + 2))
    ts = (T0 - LEAD + np.cumsum(steps)).astype(np.int64)
    ts = ts[ts < T0 - LEAD + span]
    gaps = draw(st.lists(st.tuples(st.integers(0, span // S), st.integers(1, 7200)), max_size=4))
    keep = np.ones(len(ts), dtype=bool)
    for start, length in gaps:  # restarts and lost connections
        g0 = T0 - LEAD + start * S
        keep &= ~((ts >= g0) & (ts < g0 + length * S))
    # a counter reset (a replaced meter starts again near zero, far below the register it replaces)
    resets = [(T0 - LEAD + t * S, v) for t, v in
              draw(st.lists(st.tuples(st.integers(0, span // S), st.floats(0.0, 50.0)), max_size=1))]
    now = T0 - LEAD + draw(st.integers(0, (span + 3 * 3600 * S) // S)) * S
    keep &= ts <= now  # nothing is read from the future
    w = World(T0 + np.arange(n + 1, dtype=np.int64) * IV, powers, resets, ts[keep], np.zeros(0),
              int(min(60, 3 * poll_s) * S), max_est, now)
    w.values = w.register(w.ts)
    w.limit = draw(st.sampled_from([None, 1, 2, 5, 8]))
    return w


def _run(w: World) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    register = register_at(near_readings(w.ts, w.values, w.boundaries, w.tol, w.limit), w.tol)
    energy, status = register_intervals(w.boundaries, register, w.now, w.max_est, w.tol)
    return register, energy, status


def _runs(status: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs [i, j) of intervals with energy (measured or estimated)."""
    out, i = [], 0
    while i < len(status):
        if status[i] <= Status.ESTIMATED:
            j = i
            while j < len(status) and status[j] <= Status.ESTIMATED:
                j += 1
            out.append((i, j))
            i = j
        else:
            i += 1
    return out


PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(worlds())
def test_measured_and_estimated_intervals_add_up_to_the_register_difference_across_them(w: World) -> None:
    register, energy, status = _run(w)
    assert np.isfinite(energy[status <= Status.ESTIMATED]).all()
    assert np.isnan(energy[status >= Status.PENDING]).all()
    for i, j in _runs(status):
        for a in range(i, j):  # every span inside a run, not only the whole run
            for z in range(a + 1, j + 1):
                if np.isfinite(register[a]) and np.isfinite(register[z]):
                    assert energy[a:z].sum() == pytest.approx(register[z] - register[a], rel=1e-9, abs=1e-9)
        assert np.isfinite(register[i])
        assert np.isfinite(register[j])


@PROPS
@given(worlds())
def test_no_interval_holds_energy_from_outside_it(w: World) -> None:
    _, energy, status = _run(w)
    slack = 2 * w.tol
    for i in np.flatnonzero(status == Status.MEASURED):
        lo, hi = int(w.boundaries[i]), int(w.boundaries[i + 1])
        true = float(w.energy(hi) - w.energy(lo))
        p_min, p_max = w.p_range(lo - w.tol, hi + w.tol)
        # the register at a boundary comes from readings within the tolerance of it, nowhere else
        assert abs(energy[i] - true) <= p_max * slack / 3.6e12 + 1e-6
    for i in np.flatnonzero(status == Status.ESTIMATED):
        lo, hi = int(w.boundaries[i]), int(w.boundaries[i + 1])
        # a gap's energy is shared by time: the mean power of the span around it, never a pile-up in one interval
        kw = energy[i] / ((hi - lo) / 3.6e12)
        p_min, p_max = w.p_range(lo - w.max_est - w.tol, hi + w.max_est + w.tol)
        assert p_min * (1 - slack / (hi - lo)) - 1e-6 <= kw <= p_max * (1 + slack / (hi - lo)) + 1e-6
    # no false peak: every interval's kW is within the true load's range over the whole world
    kw_all = energy[status <= Status.ESTIMATED] * 4
    if len(kw_all):
        lo_p, hi_p = float(w.powers.min()), float(w.powers.max())
        assert kw_all.max() <= hi_p * (1 + 2 * slack / IV) + 1e-6
        assert kw_all.min() >= lo_p * (1 - 2 * slack / IV) - 1e-6


@PROPS
@given(worlds())
def test_a_gap_longer_than_the_estimation_limit_is_missing(w: World) -> None:
    register, _, status = _run(w)
    known = np.flatnonzero(np.isfinite(register))
    for i in np.flatnonzero(status == Status.ESTIMATED):
        a = known[known <= i].max()
        z = known[known > i].min()
        assert w.boundaries[z] - w.boundaries[a] <= w.max_est
    # in terms of the data: a silence longer than the limit (plus the tolerances) leaves what lies inside missing
    edges = np.concatenate([[T0 - LEAD], w.ts])
    for r0, r1 in zip(edges[:-1], edges[1:], strict=True):
        if r1 - r0 - 2 * w.tol <= w.max_est:
            continue
        inside = (w.boundaries[:-1] > r0 + w.tol) & (w.boundaries[1:] < r1 - w.tol)
        assert set(status[inside].tolist()) <= {Status.MISSING}


@PROPS
@given(worlds())
def test_not_yet_is_pending_never_missing_and_pending_is_a_tail(w: World) -> None:
    register, energy, status = _run(w)
    pending = np.flatnonzero(status == Status.PENDING)
    if len(pending):
        assert (status[pending[0]:] == Status.PENDING).all()  # nothing resolved after a pending interval
    # the future: an interval whose end boundary cannot be known yet is never missing
    future = (w.boundaries[1:] + w.tol > w.now) & ~np.isfinite(register[1:])
    assert set(status[future].tolist()) <= {Status.PENDING}
    # after the last known boundary of a meter heard within the limit: pending, not missing
    known = np.flatnonzero(np.isfinite(register))
    if len(known) and w.now - w.boundaries[known[-1]] <= w.max_est:
        assert (status[known[-1]:] == Status.PENDING).all()


@PROPS
@given(worlds())
def test_a_counter_reset_is_never_measured_or_estimated_across(w: World) -> None:
    register, _, status = _run(w)
    known = np.flatnonzero(np.isfinite(register))
    for r, _ in w.resets:
        for i in range(len(status)):
            if status[i] == Status.MEASURED:
                lo, hi = int(w.boundaries[i]), int(w.boundaries[i + 1])
                assert not (lo + w.tol < r < hi - w.tol), "a reset well inside a measured interval"
            if status[i] == Status.ESTIMATED:
                a = known[known <= i].max()
                z = known[known > i].min()
                assert not (w.boundaries[a] + w.tol < r < w.boundaries[z] - w.tol), "an estimate across a reset"


# -- worked examples ---------------------------------------------------------------------------------------------


def _b(n: int) -> np.ndarray:
    return T0 + np.arange(n + 1, dtype=np.int64) * IV


def test_the_register_at_a_boundary_is_exact_interpolated_or_the_one_reading_within_the_tolerance() -> None:
    tol = 3 * S
    near = NearReadings(
        before_dt=np.array([np.nan, 2 * S, S, 2 * S, 4 * S, S, np.nan]),
        before_value=np.array([np.nan, 10.0, 10.0, 10.0, 10.0, 50.0, np.nan]),
        after_dt=np.array([0.0, S, np.nan, 5 * S, S, 2 * S, np.nan]),
        after_value=np.array([7.0, 13.0, np.nan, 99.0, 11.0, 2.0, np.nan]),
    )
    got = register_at(near, tol)
    # exact; on the line 2/3 of the way; before only; after outside; before outside; a step back: the nearer; none
    np.testing.assert_allclose(got[:6], [7.0, 12.0, 10.0, 10.0, 11.0, 50.0])
    assert np.isnan(got[6])


def test_a_gap_inside_the_limit_is_shared_by_time_and_conserves_energy() -> None:
    b = _b(6)
    reg = np.array([100.0, 110.0, np.nan, np.nan, 140.0, 150.0, np.nan])
    energy, status = register_intervals(b, reg, now_ns=int(b[-1]) + 10 * IV, max_estimate_ns=3600 * S)
    assert status_names(status).tolist() == ["measured", "estimated", "estimated", "estimated", "measured",
                                             "missing"]
    np.testing.assert_allclose(energy[:5], [10.0, 10.0, 10.0, 10.0, 10.0])
    shorter, st2 = register_intervals(b, reg, now_ns=int(b[-1]) + 10 * IV, max_estimate_ns=1800 * S)
    assert status_names(st2).tolist() == ["measured", "missing", "missing", "missing", "measured", "missing"]
    assert np.isnan(shorter[1:4]).all()


def test_the_interval_after_the_last_register_is_pending_while_the_meter_may_still_report() -> None:
    b = _b(4)
    reg = np.array([100.0, 110.0, np.nan, np.nan, np.nan])
    _, status = register_intervals(b, reg, now_ns=int(b[2]) + 60 * S, max_estimate_ns=3600 * S)
    assert status_names(status).tolist() == ["measured", "pending", "pending", "pending"]
    _, status = register_intervals(b, reg, now_ns=int(b[1]) + 3601 * S, max_estimate_ns=3600 * S)
    assert status_names(status).tolist() == ["measured", "missing", "missing", "missing"]


def test_power_integration_needs_coverage() -> None:
    b = _b(3)
    count = np.array([[10.0] * 10, [10.0] * 9 + [0.0], [10.0] * 8 + [0.0, 0.0]])
    total = count * 400.0
    energy, status = power_intervals(b, count, total, last_reading_ns=int(b[-1]), now_ns=int(b[-1]) + 7200 * S,
                                     max_estimate_ns=3600 * S)
    assert status_names(status).tolist() == ["measured", "measured", "missing"]
    np.testing.assert_allclose(energy[:2], [100.0, 100.0])
    _, status = power_intervals(b, count, total, last_reading_ns=int(b[2]) + 700 * S, now_ns=int(b[-1]) + 60 * S,
                                max_estimate_ns=3600 * S)
    assert status_names(status).tolist() == ["measured", "measured", "pending"]


def test_a_total_takes_the_worst_status_and_has_energy_only_when_every_part_has() -> None:
    m, e, p, x = Status.MEASURED, Status.ESTIMATED, Status.PENDING, Status.MISSING
    status = np.array([[m, m, e, m, p, x], [m, e, e, p, x, p]], dtype=np.int8)
    energy = np.array([[1.0, 1.0, 1.0, 1.0, np.nan, np.nan], [2.0, 2.0, 2.0, np.nan, np.nan, np.nan]])
    total, worst = combine(energy, status)
    assert status_names(worst).tolist() == ["measured", "estimated", "estimated", "pending", "missing", "missing"]
    np.testing.assert_allclose(total[:3], [3.0, 3.0, 3.0])
    assert np.isnan(total[3:]).all()


@pytest.mark.parametrize("start", [2**64 - 1 - 40, 2**63 - 1 - 40, 2**53 + 1, -(2**63)])
def test_a_64_bit_counter_gives_exact_differences(start: int) -> None:
    """Integers near 2**64 are 2048 apart as floats; taken relative to the first integer, every step survives."""
    steps = [7, 1, 0, 3, 11, 2]
    ints = [start + int(v) for v in np.cumsum([0, *steps])]
    values = np.array(ints, dtype=object)  # as a store answers for an int64/uint64 register
    rel = register_values(values)
    assert rel.dtype == np.float64
    assert np.diff(rel).tolist() == [float(s) for s in steps]
    b = T0 + np.arange(len(ints), dtype=np.int64) * IV
    near = near_readings(b, rel, b, S)
    energy, status = register_intervals(b, register_at(near, S), int(b[-1]) + IV, 3600 * S, S)
    assert energy.tolist() == [float(s) for s in steps]  # exact, not approx
    assert status.tolist() == [Status.MEASURED] * len(steps)
    # a reading half-way between two boundaries interpolates on the small numbers, not on 1.8e19
    mid = register_at(near_readings(np.array([b[0] - S // 2, b[0] + S // 2]), register_values(
        np.array([start, start + 2], dtype=object)), b[:1], S), S)
    assert mid.tolist() == [1.0]


def test_register_values_pass_floats_as_they_are() -> None:
    floats = np.array([1.5, 2.25, np.nan])
    np.testing.assert_array_equal(register_values(floats), floats)
    np.testing.assert_array_equal(register_values(np.array([1.5, 2.25], dtype=object)), [1.5, 2.25])
    mixed = register_values(np.array([10.0, 2**53 + 1, 2**53 + 3], dtype=object))  # a float among integers
    assert mixed[1:].tolist() == [0.0, 2.0]
