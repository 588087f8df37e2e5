"""The demo's switch from backfilled 15-min history to live 1 s readings, then a restart: no false peak anywhere."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from collectors.reading import (
    ACTIVE_ENERGY_IMPORT_KWH,
    ACTIVE_POWER_KW,
    REACTIVE_ENERGY_IMPORT_KVARH,
    Quality,
    Reading,
)
from collectors.sim.load import SLOT_S, LoadModel
from gateway.demo.backfill import backfill
from gateway.query import QueryService, Topology, day_bounds
from gateway.store.sqlite import SqliteStore

TZ = "Asia/Shanghai"
DAY = date(2026, 11, 18)  # a Wednesday the model runs production on
S = 10**9


def _live(model: LoadModel, start: pd.Timestamp, end: pd.Timestamp, gaps: list[tuple[str, str]]) -> list[Reading]:
    """What the collectors store: every second, the simulator's registers and power, except during the gaps."""
    out = []
    for t in pd.date_range(start, end, freq="1s", inclusive="left"):
        if any(pd.Timestamp(f"{DAY} {a}", tz=TZ) <= t < pd.Timestamp(f"{DAY} {b}", tz=TZ) for a, b in gaps):
            continue
        ts = int(t.value)
        v = model.instant(ts)
        for point, unit in ((ACTIVE_ENERGY_IMPORT_KWH, "kWh"), (REACTIVE_ENERGY_IMPORT_KVARH, "kvarh"),
                            (ACTIVE_POWER_KW, "kW")):
            out.append(Reading("dev1", point, v[point], unit, Quality.GOOD, ts, ts, "c1", "s1", "m1"))
    return out


def test_history_then_live_then_a_restart_books_no_gap_into_one_interval(tmp_path):
    model = LoadModel(peak_kw=4500.0, seed=3, timezone=TZ)
    assert model.plan_for(DAY)["operating"] == 1.0, "the scenario needs a production day"
    store = SqliteStore(tmp_path / "ts.db")
    # The demo starts at 13:52:10: history up to there (its last register is at 13:30, the last whole slot's start),
    # then the collectors' first reading a few seconds later, mid-interval.
    started = pd.Timestamp(f"{DAY} 13:52:10", tz=TZ)
    n = backfill(store.write, [(model, "dev1", ("c1", "s1", "m1"))], int(started.value) - 2 * 86400 * S,
                 int(started.value), int(started.value))
    assert n > 0
    # live for two hours; a restart from 14:58:30 to 15:03:40 (across 15:00) and a lost connection 15:20-15:21
    store.write(_live(model, started + pd.Timedelta(seconds=3), started + pd.Timedelta(hours=2),
                      gaps=[("14:58:30", "15:03:40"), ("15:20:00", "15:21:00")]))
    now = started + pd.Timedelta(hours=2, seconds=5)  # 15:52:15
    topo = Topology({"c1": TZ}, {"s1": "c1"}, {"m1": "s1"}, {"m1": "dev1"}, device_interval_s={"dev1": 1.0})
    q = QueryService(store, topo, clock=now.to_pydatetime)

    curve = q.series("customer", "c1", *day_bounds(str(DAY), TZ))
    at = {t.strftime("%H:%M"): row for t, row in curve.iterrows()}
    # the history-to-live gap (13:30 known, 13:45 unknown, 14:00 live) and the restart across 15:00 are estimated
    assert [k for k, r in at.items() if r["status"] == "estimated"] == ["13:30", "13:45", "14:45", "15:00"]
    assert at["15:15"]["status"] == "measured"  # a lost minute inside an interval costs nothing
    assert at["15:45"]["status"] == "pending"  # not yet over
    assert curve["missing_intervals"].sum() == 0
    assert curve["pending_intervals"].sum() == 33  # 15:45 .. 23:45

    slots = np.arange(int(pd.Timestamp(f"{DAY}", tz=TZ).value) // (SLOT_S * S),
                      int(pd.Timestamp(f"{DAY} 23:45", tz=TZ).value) // (SLOT_S * S) + 1)
    true_kw = pd.Series(model.slot_kw(slots), index=curve.index)
    kw = curve["kw_mean"].dropna()
    assert len(kw) == 63
    # no false peak: every interval (measured or estimated) within the true load's range of the day
    assert kw.max() <= true_kw.max() * (1 + 1e-6)
    assert kw.min() >= true_kw.min() * (1 - 1e-6)
    # measured intervals are the true ones; an estimated one is the mean of the load across its gap
    measured = curve["status"] == "measured"
    np.testing.assert_allclose(curve.loc[measured, "kw_mean"], true_kw[measured], rtol=2e-3)
    for first, last in (("13:30", "13:45"), ("14:45", "15:00")):
        gap = [t for t in curve.index if first <= t.strftime("%H:%M") <= last]
        est = curve.loc[gap, "kw_mean"]
        assert est.iloc[0] == pytest.approx(est.iloc[1])  # shared by time
        assert est.sum() == pytest.approx(true_kw[gap].sum(), rel=2e-3)  # and conserving the gap's energy

    day = q.series("customer", "c1", *day_bounds(str(DAY), TZ), freq="1d").iloc[0]
    assert day["demand_max_kw"] <= true_kw.max() * (1 + 1e-6)
    assert (day["measured_intervals"], day["estimated_intervals"], day["pending_intervals"],
            day["missing_intervals"]) == (59, 4, 33, 0)
    assert day["status"] == "pending"
    assert day["kw_mean"] == pytest.approx(day["kwh"] / (63 * 0.25))
