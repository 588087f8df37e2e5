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


NOW = pd.Timestamp("2026-11-25 12:00", tz="Asia/Shanghai")  # the tests' clock: the test day is long past


class Clock:
    """An injectable "now" that the tests move."""

    def __init__(self, now: pd.Timestamp = NOW) -> None:
        self.now = now

    def __call__(self):
        return self.now.to_pydatetime()


TOPO = Topology(
    customer_tz={"sh": "Asia/Shanghai", "be": "Europe/Berlin"},
    site_customer={"sh-1": "sh", "be-1": "be"},
    meter_site={"m1": "sh-1", "m2": "sh-1", "b1": "be-1"},
    meter_device={"m1": "dev1", "m2": "dev2", "b1": "devb"},
)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def env(tmp_path, clock):
    store = SqliteStore(tmp_path / "ts.db")
    return store, QueryService(store, TOPO, clock=clock)


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
    assert set(f["status"]) == {"measured"}
    assert set(f["method"]) == {"register"}
    daily = q.series("meter", "m1", start, end, "1d")
    assert len(daily) == 1
    assert daily["kwh"].iloc[0] == pytest.approx(kwh.sum())
    assert daily["demand_max_kw"].iloc[0] == pytest.approx(96 * 4)
    assert daily["kw_mean"].iloc[0] == pytest.approx(kwh.sum() / 24)
    assert daily["pf"].iloc[0] == pytest.approx(0.8)
    assert daily.iloc[0][["measured_intervals", "estimated_intervals", "pending_intervals", "missing_intervals",
                          "intervals"]].tolist() == [96, 0, 0, 0, 96]
    assert daily["status"].iloc[0] == "measured"
    hourly = q.series("meter", "m1", start, end, "1h")
    assert len(hourly) == 24
    assert hourly["kwh"].iloc[0] == pytest.approx(1 + 2 + 3 + 4)
    assert hourly["demand_max_kw"].iloc[0] == pytest.approx(16)
    quarter = q.series("meter", "m1", start, end)
    assert list(quarter.columns) == ["kw_mean", "kwh", "demand_max_kw", "kvarh", "pf", "missing_intervals",
                                     "intervals", "missing", "measured_intervals", "estimated_intervals",
                                     "pending_intervals", "status"]
    assert (quarter["measured_intervals"] == 1).all()


def test_a_long_range_gives_the_same_intervals_as_its_days(env):
    store, q = env
    day0 = pd.Timestamp("2026-11-16", tz="Asia/Shanghai")
    rng = np.random.default_rng(5)
    store.write(_registers("dev1", "m1", day0, rng.uniform(5, 15, 4 * 96), rng.uniform(1, 5, 4 * 96)))
    whole = q.meter_intervals("m1", day0, day0 + pd.Timedelta(days=4))  # long: kWh and kvarh read side by side
    days = pd.concat([q.meter_intervals("m1", *day_bounds(day0 + pd.Timedelta(days=i), "Asia/Shanghai"))
                      for i in range(4)])
    assert set(whole["status"]) == {"measured"}
    assert whole["pf"].notna().all()
    pd.testing.assert_frame_equal(whole, days)


def test_a_lost_register_sample_is_estimated_across_the_gap_not_booked_into_one_interval(env):
    store, q = env
    day0 = pd.Timestamp("2026-11-19", tz="Asia/Shanghai")
    rows = _registers("dev1", "m1", day0, np.full(96, 10.0))
    del rows[40]  # the register sample at 10:00 never arrived
    store.write(rows)
    start, end = day_bounds("2026-11-19", "Asia/Shanghai")
    f = q.meter_intervals("m1", start, end)
    est = f[f["status"] == "estimated"]
    assert list(est.index.strftime("%H:%M")) == ["09:45", "10:00"]  # both need the 10:00 value
    np.testing.assert_allclose(est["kwh"].to_numpy(), [10.0, 10.0])  # 20 kWh across the gap, shared by time
    assert not f["missing"].any()
    daily = q.series("meter", "m1", start, end, "1d").iloc[0]
    assert not daily["missing"]
    assert (daily["missing_intervals"], daily["estimated_intervals"], daily["measured_intervals"]) == (0, 2, 94)
    assert daily["status"] == "estimated"
    assert daily["kwh"] == pytest.approx(960.0)


def test_a_gap_longer_than_the_estimation_limit_stays_missing_never_filled(env, clock):
    store, q = env
    day0 = pd.Timestamp("2026-11-19", tz="Asia/Shanghai")
    rows = _registers("dev1", "m1", day0, np.full(96, 10.0))
    del rows[40:46]  # no register from 10:00 to 11:15: the gap 09:45 .. 11:30 is longer than an hour
    store.write(rows)
    start, end = day_bounds("2026-11-19", "Asia/Shanghai")
    f = q.meter_intervals("m1", start, end)
    assert list(f.index[f["missing"]].strftime("%H:%M")) == ["09:45", "10:00", "10:15", "10:30", "10:45", "11:00",
                                                              "11:15"]
    assert set(f.loc[f["missing"], "status"]) == {"missing"}
    assert f["kwh"].isna().sum() == 7
    daily = q.series("meter", "m1", start, end, "1d").iloc[0]
    assert daily["missing"]
    assert (daily["missing_intervals"], daily["estimated_intervals"], daily["pending_intervals"]) == (7, 0, 0)
    assert daily["kwh"] == pytest.approx(890.0)  # what was measured, flagged incomplete
    assert daily["kw_mean"] == pytest.approx(890.0 / (89 * 0.25))
    assert daily["status"] == "missing"
    # the limit is the service's: two hours estimate the same gap, conserving its energy
    longer = QueryService(store, TOPO, max_estimate_s=2 * 3600, clock=clock).meter_intervals("m1", start, end)
    assert not longer["missing"].any()
    assert (longer["status"] == "estimated").sum() == 7
    assert longer["kwh"].sum() == pytest.approx(960.0)


def test_counter_reset_makes_interval_missing_and_is_never_estimated_across(env):
    store, q = env
    day0 = pd.Timestamp("2026-11-19", tz="Asia/Shanghai")
    kwh = 1000 + np.concatenate([[0.0], np.cumsum(np.full(8, 10.0))])
    kwh[5:] = kwh[5:] - 1040 + 3  # meter replaced before 01:15: the new one counts on from 3 kWh
    stamps = pd.date_range(day0, periods=9, freq="15min")
    rows = [Reading("dev1", E, float(v), "kWh", Quality.GOOD, int(t.value), meter="m1")
            for t, v in zip(stamps, kwh, strict=True)]
    store.write(rows)
    f = q.meter_intervals("m1", day0, day0 + pd.Timedelta(hours=2))
    assert f["status"].tolist() == ["measured"] * 4 + ["missing"] + ["measured"] * 3
    np.testing.assert_allclose(f["kwh"].dropna().to_numpy(), 10.0)
    store.write([Reading("dev1", E, None, "kWh", Quality.COMM_LOST, rows[5].source_ts, meter="m1")])
    f = q.meter_intervals("m1", day0, day0 + pd.Timedelta(hours=2))
    assert f["status"].tolist() == ["measured"] * 4 + ["missing"] * 2 + ["measured"] * 2  # no estimate across it


def test_customer_is_sum_of_meters_and_missing_if_any_meter_missing(env):
    store, q = env
    day0 = pd.Timestamp("2026-11-19", tz="Asia/Shanghai")
    store.write(_registers("dev1", "m1", day0, np.full(96, 10.0)))
    store.write(_registers("dev2", "m2", day0, np.full(48, 5.0)))  # m2 stops reporting at noon
    start, end = day_bounds("2026-11-19", "Asia/Shanghai")
    f = q.customer_intervals("sh", start, end)
    assert f["kwh"].iloc[:48].tolist() == [15.0] * 48
    assert f["missing"].iloc[48:].all()
    assert set(f["status"].iloc[48:]) == {"missing"}  # days ago: m2's silence is missing, not pending
    site = q.series("site", "sh-1", start, end, "1h")
    assert site["kwh"].iloc[0] == pytest.approx(60.0)
    assert site["missing_intervals"].iloc[12:].tolist() == [4] * 12


def test_intervals_not_yet_reached_are_pending_not_missing(env, clock):
    store, q = env
    day0 = pd.Timestamp("2026-11-19", tz="Asia/Shanghai")
    store.write(_registers("dev1", "m1", day0, np.full(40, 10.0)))  # registers up to 10:00 ...
    clock.now = day0 + pd.Timedelta(hours=10, minutes=7)  # ... and it is 10:07 now
    start, end = day_bounds("2026-11-19", "Asia/Shanghai")
    f = q.meter_intervals("m1", start, end)
    assert f["status"].tolist() == ["measured"] * 40 + ["pending"] * 56
    assert f["kwh"].iloc[40:].isna().all()
    daily = q.series("meter", "m1", start, end, "1d").iloc[0]
    assert (daily["missing_intervals"], daily["pending_intervals"], daily["measured_intervals"]) == (0, 56, 40)
    assert not daily["missing"]
    assert daily["status"] == "pending"
    assert daily["kwh"] == pytest.approx(400.0)
    assert daily["kw_mean"] == pytest.approx(40.0)  # over the 10 elapsed hours, not 24
    hourly = q.series("meter", "m1", start, end, "1h")
    assert hourly["status"].tolist() == ["measured"] * 10 + ["pending"] * 14
    assert hourly["kwh"].iloc[10:].isna().all()
    assert hourly["missing_intervals"].sum() == 0
    quarter = q.series("customer", "sh", start, end)  # m2 never reported at all: missing where elapsed
    assert quarter["status"].tolist() == ["missing"] * 40 + ["pending"] * 56
    assert quarter["missing_intervals"].sum() == 40


def test_a_future_month_is_all_pending_with_no_energy(env):
    store, q = env
    store.write(_registers("dev1", "m1", pd.Timestamp("2026-11-19", tz="Asia/Shanghai"), np.full(96, 10.0)))
    start = pd.Timestamp("2027-01-01", tz="Asia/Shanghai").to_pydatetime()
    end = pd.Timestamp("2027-02-01", tz="Asia/Shanghai").to_pydatetime()
    month = q.series("meter", "m1", start, end, "1d")
    assert len(month) == 31
    assert (month["pending_intervals"] == 96).all()
    assert (month["missing_intervals"] == 0).all()
    assert not month["missing"].any()
    assert month["kwh"].isna().all()  # no data yet, not 0 kWh
    assert set(month["status"]) == {"pending"}


def test_a_silent_meter_is_pending_while_its_gap_could_still_be_estimated_then_missing(env, clock):
    store, q = env
    day0 = pd.Timestamp("2026-11-19", tz="Asia/Shanghai")
    store.write(_registers("dev1", "m1", day0, np.full(32, 10.0)))  # last register at 08:00
    start, end = day_bounds("2026-11-19", "Asia/Shanghai")
    clock.now = day0 + pd.Timedelta(hours=8, minutes=40)
    f = q.meter_intervals("m1", start, end)
    assert f["status"].iloc[32:].eq("pending").all()
    clock.now = day0 + pd.Timedelta(hours=9, minutes=30)  # 90 min since the last register: no estimate possible
    f = q.meter_intervals("m1", start, end)
    assert f["status"].tolist() == ["measured"] * 32 + ["missing"] * 5 + ["pending"] * 59
    # it comes back at 09:20 with the register: 08:00 .. 09:30 is 90 min, too long to estimate
    live = [Reading("dev1", E, 1320.0 + i * 0.01, "kWh", Quality.GOOD,
                    int((day0 + pd.Timedelta(hours=9, minutes=20, seconds=i)).value), meter="m1") for i in range(600)]
    store.write(live)
    f = q.meter_intervals("m1", start, end)
    assert f["status"].iloc[32:38].tolist() == ["missing"] * 6
    assert f["status"].iloc[38:].eq("pending").all()


def test_live_readings_between_polls_give_the_register_at_the_boundary(env, clock):
    store, q = env
    day0 = pd.Timestamp("2026-11-19 08:00", tz="Asia/Shanghai")
    # 360 kW constant, polled every second at .4 s past: no reading at any boundary, the line between two is exact
    t = day0.value + 400_000_000 + np.arange(-60, 3600) * 10**9
    kwh = 5000.0 + (t - day0.value) / 3.6e12 * 360.0
    store.write([Reading("dev1", E, float(v), "kWh", Quality.GOOD, int(ts), meter="m1") for ts, v in zip(t, kwh,
                                                                                                        strict=True)])
    f = q.meter_intervals("m1", day0, day0 + pd.Timedelta(minutes=45))
    assert f["status"].tolist() == ["measured"] * 3
    np.testing.assert_allclose(f["kw"].to_numpy(), 360.0, rtol=1e-9)


def test_the_tolerance_follows_the_device_poll_interval(tmp_path, clock):
    store = SqliteStore(tmp_path / "ts.db")
    day0 = pd.Timestamp("2026-11-19 08:00", tz="Asia/Shanghai")
    # polled every 10 s at 7 s past: the nearest readings are 3 s before and 7 s after each boundary
    t = day0.value + 7 * 10**9 + np.arange(-60, 3600, 10) * 10**9
    store.write([Reading("dev1", E, 100.0 + (ts - day0.value) / 1e10, "kWh", Quality.GOOD, int(ts), meter="m1")
                 for ts in t])
    span = (day0, day0 + pd.Timedelta(minutes=45))
    default = QueryService(store, TOPO, clock=clock).meter_intervals("m1", *span)  # 3 s: only the reading before
    assert default["status"].tolist() == ["measured"] * 3
    slow = Topology(TOPO.customer_tz, TOPO.site_customer, TOPO.meter_site, TOPO.meter_device,
                    device_interval_s={"dev1": 10.0})
    assert slow.tolerance_s("m1") == 30.0
    assert Topology(TOPO.customer_tz, TOPO.site_customer, TOPO.meter_site, TOPO.meter_device,
                    device_interval_s={"dev1": 60.0}).tolerance_s("m1") == 60.0  # never more than 60 s
    f = QueryService(store, slow, clock=clock).meter_intervals("m1", *span)
    np.testing.assert_allclose(f["kwh"].to_numpy(), 90.0, rtol=1e-9)  # interpolated: exact
    strict = Topology(TOPO.customer_tz, TOPO.site_customer, TOPO.meter_site, TOPO.meter_device,
                      meter_tolerance_s={"m1": 1.0})
    f = QueryService(store, strict, clock=clock).meter_intervals("m1", *span)
    assert f["status"].tolist() == ["missing"] * 3  # no reading within 1 s of a boundary


def test_meters_polled_at_different_rates_each_keep_their_own_tolerance(tmp_path, clock):
    store = SqliteStore(tmp_path / "ts.db")
    day0 = pd.Timestamp("2026-11-19 08:00", tz="Asia/Shanghai")
    fast = day0.value + 400_000_000 + np.arange(-60, 3600) * 10**9  # m1: every second
    slow = day0.value + 7 * 10**9 + np.arange(-60, 3600, 20) * 10**9  # m2: every 20 s, 13 s before a boundary
    store.write([Reading("dev1", E, 10.0 + (t - day0.value) / 1e10, "kWh", Quality.GOOD, int(t), meter="m1")
                 for t in fast])
    store.write([Reading("dev2", E, 50.0 + (t - day0.value) / 2e10, "kWh", Quality.GOOD, int(t), meter="m2")
                 for t in slow])
    topo = Topology(TOPO.customer_tz, TOPO.site_customer, TOPO.meter_site, TOPO.meter_device,
                    device_interval_s={"dev1": 1.0, "dev2": 20.0})
    f = QueryService(store, topo, clock=clock).customer_intervals("sh", day0, day0 + pd.Timedelta(minutes=45))
    assert f["status"].tolist() == ["measured"] * 3
    np.testing.assert_allclose(f["kwh"].to_numpy(), 90.0 + 45.0, rtol=1e-9)


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


def _power_rows(day0, minutes, skip=()):
    return [
        Reading("dev1", "active_power_kw", 400.0 + ((i // 15) % 2) * 200 + (i % 3 - 1) * 10, "kW", Quality.GOOD,
                int((day0 + pd.Timedelta(minutes=i)).value), meter="m1")
        for i in range(minutes) if i not in skip
    ]


def test_power_only_meter_integrates_mean_power(env):
    store, q = env
    day0 = pd.Timestamp("2026-11-19", tz="Asia/Shanghai")
    store.write(_power_rows(day0, 60))
    f = q.meter_intervals("m1", day0, day0 + pd.Timedelta(hours=1))
    np.testing.assert_allclose(f["kwh"].to_numpy(), [100.0, 150.0, 100.0, 150.0], rtol=1e-9)
    assert set(f["status"]) == {"measured"}
    assert set(f["method"]) == {"power"}


def test_power_only_meter_needs_readings_covering_the_interval(env, clock):
    store, q = env
    day0 = pd.Timestamp("2026-11-19", tz="Asia/Shanghai")
    store.write(_power_rows(day0, 60, skip={17, 18, 19, 20}))  # 4 min without power in 00:15-00:30
    f = q.meter_intervals("m1", day0, day0 + pd.Timedelta(hours=1, minutes=30))
    assert f["status"].tolist() == ["measured", "missing", "measured", "measured", "missing", "missing"]
    clock.now = day0 + pd.Timedelta(hours=1, minutes=5)  # the meter is live: after its last reading is pending
    f = q.meter_intervals("m1", day0, day0 + pd.Timedelta(hours=1, minutes=30))
    assert f["status"].tolist() == ["measured", "missing", "measured", "measured", "pending", "pending"]


def test_bad_quality_values_are_not_used(env):
    store, q = env
    day0 = pd.Timestamp("2026-11-19", tz="Asia/Shanghai")
    rows = _registers("dev1", "m1", day0, np.full(4, 10.0))
    rows[2] = Reading("dev1", E, None, "kWh", Quality.COMM_LOST, rows[2].source_ts, meter="m1")
    rows[3] = Reading("dev1", E, 5000.0, "kWh", Quality.UNCERTAIN, rows[3].source_ts, meter="m1")
    store.write(rows)
    f = q.meter_intervals("m1", day0, day0 + pd.Timedelta(hours=1))
    assert f["status"].tolist() == ["measured", "estimated", "estimated", "estimated"]
    np.testing.assert_allclose(f["kwh"].to_numpy(), 10.0)


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
