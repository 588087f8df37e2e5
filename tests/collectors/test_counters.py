"""Energy counter deltas across wraps and resets."""

from __future__ import annotations

import pytest

from collectors.counters import CounterTracker, Step, counter_delta


def test_normal_wrap_and_reset():
    assert counter_delta(100.0, 150.0, 2**32) == (counter_delta(100.0, 150.0, None))
    d = counter_delta(2**32 - 10, 5, 2**32)
    assert (d.value, d.step) == (15, Step.WRAP)
    d = counter_delta(1_000_000, 3, 2**32)  # far from the top: not a wrap
    assert (d.value, d.step) == (None, Step.RESET)
    d = counter_delta(50.0, 10.0, None)  # a float register never wraps
    assert d.step is Step.RESET


def test_tracker_is_monotonic_across_wraps():
    t = CounterTracker(wrap_at=65536 * 0.1)
    values = [6550.0, 6553.0, 1.0, 3.0, 6552.0, 2.0]
    totals = [t.update(v)[0] for v in values]
    assert totals == pytest.approx([6550.0, 6553.0, 6554.6, 6556.6, 13105.6, 13109.2])
    assert all(b >= a for a, b in zip(totals, totals[1:], strict=False))


def test_tracker_restarts_after_reset():
    t = CounterTracker(wrap_at=2**32)
    t.update(5000.0)
    total, step = t.update(12.0)
    assert (total, step) == (12.0, Step.RESET)
