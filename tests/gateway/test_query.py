"""The query layer over a real embedded store: energy from registers, roll-ups, time zones, missing data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collectors.reading import Quality, Reading
from gateway.query import QueryError, QueryService, Topology, day_bounds
from gateway.store.sqlite import SqliteStore

E = "active_energy_import_kwh"
Q = "reactive_energy_import_kvarh"


def _registers(device, meter, start, kwh_per_interval, kvarh_per_interval=None, every="15min"):
    """Register readings at every interval boundary, starting from 1000 kWh."""
    n = len(kwh_per_interval)
    idx = pd.date_range(start, periods=n + 1, freq=every)
    kwh = 1000 + np.concatenate([[0.0], np.cumsum(kwh_per_interval)])
    kvarh = None if kvarh_per_interval is None else 500 + np.concatenate([[0.0], np.cumsum(kvarh_per_interval)])
    out = []
    for i, ts in enumerate(idx):
        out.append(Reading(device, E, float(kwh[i]), "kWh", Quality.GOOD, int(ts.value), meter=meter))
        if kvarh is not None:
            out.append(Reading(device, Q, float(kvarh[i]), "kvarh", Quality.GOOD, int(ts.value), meter=meter))
    return out


@pytest.fixture
def env(tmp_path):
    store = SqliteStore(tmp_path / "ts.db")
    topo = Topology(
        customer_tz={"sh": "Asia/Shanghai", "be": "Europe/Berlin"},
        site_customer={"sh-1": "sh", "be-1": "be"},
        meter_site={"m1": "sh-1", "m2": "sh-1", "b1": "be-1"},
        meter_device={"m1": "dev1", "m2": "dev2", "b1": "devb"},
    )
    return store, QueryService(store, topo)


def test_day_curve_energy_demand_and_pf(env):
    store, q = env
    day0 = pd.Timestamp("2026-11-19", tz="Asia/Shanghai")
    kwh = np.arange(1, 97, dtype=float)
    kvarh = kwh * 0.75  # PF 0.8 in every interval
    store.write(_registers("dev1", "m1", day0, kwh, kvarh))
    start, end = day_bounds("2026-11-19", "Asia/Shanghai")
    f = q.meter_intervals("m1", start, end)
    assert len(f) == 96
    assert str(f.index.tz) == "Asia/Shanghai"
    assert f.index[0] == day0
    np.testing.assert_allclose(f["kwh"].to_numpy(), kwh)
    np.testing.assert_allclose(f["kw"].to_numpy(), kwh * 4)
    np.testing.assert_allclose(f["pf"].to_numpy(), 0.8)
    assert not f["missing"].any()
    daily = q.series("meter", "m1", start, end, "1d")
    assert len(daily) == 1
    assert daily["kwh"].iloc[0] == pytest.approx(kwh.sum())
    assert daily["demand_max_kw"].iloc[0] == pytest.approx(96 * 4)
    assert daily["kw_mean"].iloc[0] == pytest.approx(kwh.sum() / 24)
    assert daily["pf"].iloc[0] == pytest.approx(0.8)
    hourly = q.series("meter", "m1", start, end, "1h")
    assert len(hourly) == 24
    assert hourly["kwh"].iloc[0] == pytest.approx(1 + 2 + 3 + 4)
    assert hourly["demand_max_kw"].iloc[0] == pytest.approx(16)


def test_missing_interval_is_reported_never_filled(env):
    store, q = env
    day0 = pd.Timestamp("2026-11-19", tz="Asia/Shanghai")
    rows = _registers("dev1", "m1", day0, np.full(96, 10.0))
    del rows[40]  # the register sample at 10:00 never arrived
    store.write(rows)
    start, end = day_bounds("2026-11-19", "Asia/Shanghai")
    f = q.meter_intervals("m1", start, end)
    assert f["missing"].sum() == 2  # 09:45-10:00 and 10:00-10:15 both need the 10:00 value
    assert f["kwh"].isna().sum() == 2
    assert list(f.index[f["missing"]].strftime("%H:%M")) == ["09:45", "10:00"]
    daily = q.series("meter", "m1", start, end, "1d").iloc[0]
    assert daily["missing"]
    assert daily["missing_intervals"] == 2
    assert daily["kwh"] == pytest.approx(940.0)  # what was measured, flagged incomplete


def test_counter_reset_makes_interval_missing(env):
    store, q = env
    day0 = pd.Timestamp("2026-11-19", tz="Asia/Shanghai")
    rows = _registers("dev1", "m1", day0, np.full(8, 10.0))
    rows[5] = Reading("dev1", E, 3.0, "kWh", Quality.GOOD, rows[5].source_ts, meter="m1")  # meter replaced
    store.write(rows)
    f = q.meter_intervals("m1", day0, day0 + pd.Timedelta(hours=2))
    assert f["missing"].tolist() == [False] * 4 + [True] + [False] * 3


def test_customer_is_sum_of_meters_and_missing_if_any_meter_missing(env):
    store, q = env
    day0 = pd.Timestamp("2026-11-19", tz="Asia/Shanghai")
    store.write(_registers("dev1", "m1", day0, np.full(96, 10.0)))
    store.write(_registers("dev2", "m2", day0, np.full(48, 5.0)))  # m2 stops reporting at noon
    start, end = day_bounds("2026-11-19", "Asia/Shanghai")
    f = q.customer_intervals("sh", start, end)
    assert f["kwh"].iloc[:48].tolist() == [15.0] * 48
    assert f["missing"].iloc[48:].all()
    site = q.series("site", "sh-1", start, end, "1h")
    assert site["kwh"].iloc[0] == pytest.approx(60.0)


def test_dst_day_has_92_intervals_in_berlin(env):
    store, q = env
    start, end = day_bounds("2026-03-29", "Europe/Berlin")  # clocks jump 02:00 -> 03:00
    store.write(_registers("devb", "b1", pd.Timestamp(start), np.full(92, 1.0)))
    f = q.meter_intervals("b1", start, end)
    assert len(f) == 92
    daily = q.series("customer", "be", start, end, "1d")
    assert len(daily) == 1
    assert daily["intervals"].iloc[0] == 92
    assert daily["kwh"].iloc[0] == pytest.approx(92.0)
    assert not daily["missing"].iloc[0]


def test_power_only_meter_integrates_mean_power(env):
    store, q = env
    day0 = pd.Timestamp("2026-11-19", tz="Asia/Shanghai")
    rows = [
        Reading("dev1", "active_power_kw", 400.0 + ((i // 15) % 2) * 200 + (i % 3 - 1) * 10, "kW", Quality.GOOD,
                int((day0 + pd.Timedelta(minutes=i)).value), meter="m1")
        for i in range(60)
    ]
    store.write(rows)
    f = q.meter_intervals("m1", day0, day0 + pd.Timedelta(hours=1))
    np.testing.assert_allclose(f["kwh"].to_numpy(), [100.0, 150.0, 100.0, 150.0], rtol=1e-9)


def test_bad_quality_values_are_not_used(env):
    store, q = env
    day0 = pd.Timestamp("2026-11-19", tz="Asia/Shanghai")
    rows = _registers("dev1", "m1", day0, np.full(4, 10.0))
    rows[2] = Reading("dev1", E, None, "kWh", Quality.COMM_LOST, rows[2].source_ts, meter="m1")
    store.write(rows)
    f = q.meter_intervals("m1", day0, day0 + pd.Timedelta(hours=1))
    assert f["missing"].tolist() == [False, True, True, False]


def test_unknown_ids_and_bad_ranges_are_clear_errors(env):
    _, q = env
    start, end = day_bounds("2026-11-19", "Asia/Shanghai")
    with pytest.raises(QueryError, match="unknown customer 'nope'"):
        q.customer_intervals("nope", start, end)
    with pytest.raises(QueryError, match="unknown meter"):
        q.meter_intervals("zz", start, end)
    with pytest.raises(QueryError, match="empty range"):
        q.series("meter", "m1", end, start)
    with pytest.raises(QueryError, match="freq"):
        q.series("meter", "m1", start, end, "5min")  # type: ignore[arg-type]


def test_forecast_round_trip(env):
    _, q = env
    start, end = day_bounds("2026-11-20", "Asia/Shanghai")
    idx = pd.date_range(start, end, freq="15min", inclusive="left")
    fc = pd.DataFrame({"forecast": np.arange(96.0), "lower80": np.arange(96.0) - 1, "upper80": np.arange(96.0) + 1,
                       "lower95": np.arange(96.0) - 2, "upper95": np.arange(96.0) + 2}, index=idx)
    assert q.store_forecast("sh", fc, made_at_ns=1) == 96 * 5
    back = q.forecast("sh", start, end)
    np.testing.assert_allclose(back["forecast"].to_numpy(), np.arange(96.0))
    np.testing.assert_allclose(back["upper95"].to_numpy(), np.arange(96.0) + 2)
    assert q.forecast("sh", *day_bounds("2026-11-21", "Asia/Shanghai"))["forecast"].isna().all()


def test_last_seen_uses_good_values_only(env):
    store, q = env
    assert q.meter_last_seen("m1") is None
    store.write([Reading("dev1", "active_power_kw", 1.0, "kW", Quality.GOOD, 10**18, meter="m1"),
                 Reading("dev1", "voltage", None, "V", Quality.COMM_LOST, 2 * 10**18, meter="m1")])
    assert q.meter_last_seen("m1") == pd.Timestamp(10**18, tz="UTC")
