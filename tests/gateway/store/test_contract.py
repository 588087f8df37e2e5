"""The store contract: the embedded store and InfluxDB (API v1 direct, API v2 through influxdb-client) agree."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from collectors.reading import Quality, Reading
from gateway.store.base import StoreUnavailable, TimeSeriesStore
from gateway.store.influx import InfluxStoreConfig, build_influx_store
from tests.gateway.store.conftest import open_store
from tests.servers.influx import free_port

S = 10**9
T0 = 1_767_225_600 * S  # 2026-01-01T00:00:00Z


def rd(device: str, point: str, value: float | None, ts: int, quality: Quality = Quality.GOOD, meter: str = "",
       unit: str = "kW", site: str = "site-1", customer: str = "cust-1") -> Reading:
    return Reading(device=device, point=point, value=value, unit=unit, quality=quality, source_ts=ts,
                   gateway_ts=ts + 5_000_000, customer=customer, site=site, meter=meter or device)


def test_write_then_raw_returns_exact_values_and_timestamps(store: TimeSeriesStore) -> None:
    values = [0.1, -273.15, 1e-300, 123456789.12345679, float(2**53), 0.0, 1e20, 1 / 3]
    readings = [rd("dev-a", "active_power_kw", v, T0 + i * 1_000_000_007 + 123) for i, v in enumerate(values)]
    readings.append(rd("dev-a", "other_point", 99.0, T0))  # another point: must not show up
    readings.append(rd("dev-b", "active_power_kw", 98.0, T0))  # another device: must not show up
    store.write(readings)

    frame = store.raw("dev-a", "active_power_kw", T0, T0 + 3600 * S)
    assert list(frame.columns) == ["ts", "value", "quality"]
    assert frame["ts"].dtype == np.int64
    assert frame["ts"].tolist() == [r.source_ts for r in readings[: len(values)]]
    assert frame["value"].tolist() == values  # bit-exact floats, nanosecond-exact timestamps
    assert frame["quality"].tolist() == ["good"] * len(values)

    # the range is half-open and honours the nanosecond
    part = store.raw("dev-a", "active_power_kw", readings[1].source_ts, readings[3].source_ts)
    assert part["ts"].tolist() == [readings[1].source_ts, readings[2].source_ts]
    assert store.raw("dev-a", "nope", T0, T0 + 3600 * S).empty


def test_rewriting_the_same_readings_stores_them_once(store: TimeSeriesStore) -> None:
    readings = [rd(f"dev-{i % 3}", "p", float(i), T0 + i * S) for i in range(30)]
    store.write(readings)
    first = store.count(T0, T0 + 3600 * S)
    store.write(readings)
    store.write(readings[5:17])
    assert first == (30, float(sum(range(30))))
    assert store.count(T0, T0 + 3600 * S) == first
    assert len(store.raw("dev-0", "p", T0, T0 + 3600 * S)) == 10
    # the same (device, point, source_ts) with a corrected value: still one value, the newest write wins
    store.write([rd("dev-0", "p", 1000.0, T0)])
    again = store.raw("dev-0", "p", T0, T0 + 1)
    assert again["value"].tolist() == [1000.0]
    assert store.count(T0, T0 + 3600 * S) == (30, float(sum(range(30))) + 1000.0)


# Bucket data: 60 s buckets; m1 has data in buckets 0, 1 and 3 (2 is empty), m2 only in bucket 0, m3 has none.
# Non-good readings (uncertain with a value, bad/comm_lost without) sit in the buckets and must not count.
_GOOD = {
    "m1": [(0, 10.0), (15, 30.0), (45, 20.0), (61, 5.0), (119, 7.5), (185, -2.0)],
    "m2": [(1, 100.0), (59, 300.0)],
}
_NOT_GOOD = [("m1", 30, 1e6, Quality.UNCERTAIN), ("m1", 62, None, Quality.BAD), ("m2", 70, None, Quality.COMM_LOST),
             ("m1", 130, 555.0, Quality.UNCERTAIN)]


def _bucket_readings() -> list[Reading]:
    out = [rd(f"dev-{m}", "active_power_kw", v, T0 + s * S, meter=m) for m, pts in _GOOD.items() for s, v in pts]
    out += [rd(f"dev-{m}", "active_power_kw", v, T0 + s * S, quality=q, meter=m) for m, s, v, q in _NOT_GOOD]
    out.append(rd("dev-m1", "reactive_power_kvar", 1e9, T0 + 10 * S, meter="m1"))  # other point
    return out


def _expected(agg: str, pts: list[tuple[int, float]]) -> float:
    vals = [v for _, v in sorted(pts)]
    if not vals:
        return math.nan
    return {"last": vals[-1], "first": vals[0], "mean": sum(vals) / len(vals), "max": max(vals), "min": min(vals),
            "count": float(len(vals)), "sum": sum(vals)}[agg]


@pytest.mark.parametrize("agg", ["last", "first", "mean", "max", "min", "count", "sum"])
def test_buckets_aggregate_good_values_per_meter(store: TimeSeriesStore, agg: str) -> None:
    store.write(_bucket_readings())
    frame = store.buckets(["m1", "m2", "m3"], "active_power_kw", T0, T0 + 240 * S, 60, agg)  # type: ignore[arg-type]

    starts = [T0 + k * 60 * S for k in range(4)]
    assert list(frame.index) == list(pd.to_datetime(starts, utc=True))
    assert str(frame.index.tz) == "UTC"
    assert list(frame.columns) == ["m1", "m2", "m3"]
    assert all(frame[c].dtype == np.float64 for c in frame.columns)
    for meter in ("m1", "m2", "m3"):
        for k, start in enumerate(starts):
            pts = [(s, v) for s, v in _GOOD.get(meter, []) if start <= T0 + s * S < start + 60 * S]
            want, got = _expected(agg, pts), frame[meter].iloc[k]
            if math.isnan(want):
                assert math.isnan(got), (meter, k, got)
            else:
                assert got == pytest.approx(want, rel=1e-12), (meter, k)
    assert frame["m3"].isna().all()
    assert math.isnan(frame["m1"].iloc[2])  # empty bucket


def test_buckets_start_at_the_first_aligned_bucket_and_cover_the_range(store: TimeSeriesStore) -> None:
    store.write(_bucket_readings())
    # start 30 s into bucket 0: the first bucket returned starts at 60 s; bucket 0's data is not in range
    frame = store.buckets(["m1"], "active_power_kw", T0 + 30 * S, T0 + 600 * S, 60, "sum")
    assert frame.index[0] == pd.Timestamp(T0 + 60 * S, unit="ns", tz="UTC")
    assert len(frame) == 9
    assert frame["m1"].iloc[0] == 12.5
    assert frame["m1"].iloc[2] == -2.0
    assert frame["m1"].iloc[3:].isna().all()
    empty = store.buckets([], "active_power_kw", T0, T0 + 600 * S, 60, "sum")
    assert empty.shape == (10, 0)


def test_bad_and_comm_lost_readings_are_stored_and_visible_in_raw(store: TimeSeriesStore) -> None:
    readings = [
        rd("dev", "p", 1.5, T0),
        rd("dev", "p", None, T0 + S, Quality.BAD),
        rd("dev", "p", None, T0 + 2 * S, Quality.COMM_LOST),
        rd("dev", "p", 4.25, T0 + 3 * S, Quality.UNCERTAIN),
    ]
    store.write(readings)
    frame = store.raw("dev", "p", T0, T0 + 10 * S)
    assert frame["quality"].tolist() == ["good", "bad", "comm_lost", "uncertain"]
    assert frame["value"].iloc[0] == 1.5
    assert frame["value"].iloc[3] == 4.25
    assert frame["value"].iloc[1:3].isna().all()
    assert store.count(T0, T0 + 10 * S) == (4, 5.75)


def test_a_value_rewritten_as_comm_lost_is_no_longer_a_number(store: TimeSeriesStore) -> None:
    store.write([rd("dev", "p", 5.0, T0), rd("dev", "p", 2.0, T0 + S)])
    store.write([rd("dev", "p", None, T0 + S, Quality.COMM_LOST)])  # same (device, point, source_ts)
    frame = store.raw("dev", "p", T0, T0 + 10 * S)
    assert frame["quality"].tolist() == ["good", "comm_lost"]
    assert frame["value"].iloc[0] == 5.0
    assert math.isnan(frame["value"].iloc[1])
    assert store.count(T0, T0 + 10 * S) == (2, 5.0)
    newest = store.latest(["dev"])[0]
    assert (newest.value, newest.quality) == (None, "comm_lost")
    assert store.buckets(["dev"], "p", T0, T0 + 60 * S, 60, "sum")["dev"].tolist() == [5.0]


def test_latest_gives_the_newest_value_of_every_device_point(store: TimeSeriesStore) -> None:
    store.write([
        rd("d1", "p1", 1.0, T0, meter="M-1"),
        rd("d1", "p1", 2.0, T0 + 2 * S, meter="M-1"),
        rd("d1", "p1", 1.5, T0 + S, meter="M-1"),  # arrives late, but is older
        rd("d1", "p2", 7.0, T0, meter="M-1", unit="kvar"),
        rd("d1", "p2", None, T0 + 9 * S, Quality.COMM_LOST, meter="M-1", unit="kvar"),
        rd("d2", "p1", 3.0, T0 + 5 * S, meter="M-2"),
    ])
    got = {(v.device, v.point): v for v in store.latest()}
    assert sorted(got) == [("d1", "p1"), ("d1", "p2"), ("d2", "p1")]
    a = got[("d1", "p1")]
    assert (a.value, a.quality, a.source_ts, a.meter, a.unit) == (2.0, "good", T0 + 2 * S, "M-1", "kW")
    b = got[("d1", "p2")]
    assert (b.value, b.quality, b.source_ts, b.unit) == (None, "comm_lost", T0 + 9 * S, "kvar")
    assert got[("d2", "p1")].value == 3.0
    assert [(v.device, v.point) for v in store.latest(["d2"])] == [("d2", "p1")]
    assert [(v.device, v.point) for v in store.latest(["d1", "ghost"])] == [("d1", "p1"), ("d1", "p2")]
    assert store.latest([]) == []


def test_count_is_half_open_and_sums_numeric_values(store: TimeSeriesStore) -> None:
    store.write([rd("d", "p", float(i), T0 + i * S) for i in range(10)] + [rd("d", "q", None, T0, Quality.BAD)])
    assert store.count(T0, T0 + 10 * S) == (11, 45.0)
    assert store.count(T0 + 2 * S, T0 + 5 * S) == (3, 9.0)
    assert store.count(T0 + 100 * S, T0 + 200 * S) == (0, 0.0)


_ODD_NAMES = [
    "meter with spaces",
    "a,b=c",
    'double"quote',
    "single'quote",
    "中文电表 1号",
    "mid\\dle",
    "') OR 1=1 --",
    "x\" OR \"1\"=\"1",
    "all ,=\"' 混合 \\q",
]


@pytest.mark.parametrize("name", _ODD_NAMES)
def test_tag_values_with_special_characters_round_trip(store: TimeSeriesStore, name: str) -> None:
    other = rd("plain", "p", 1.0, T0, meter="plain-m")
    odd = [rd(name, name, 2.5, T0 + S, meter=name, site=name, customer=name, unit=name),
           rd(name, name, 3.5, T0 + 2 * S, meter=name, site=name, customer=name, unit=name)]
    store.write([other, *odd])
    raw = store.raw(name, name, T0, T0 + 10 * S)
    assert raw["value"].tolist() == [2.5, 3.5]
    latest = {(v.device, v.point): v for v in store.latest([name])}
    assert list(latest) == [(name, name)]
    assert (latest[(name, name)].meter, latest[(name, name)].unit) == (name, name)
    frame = store.buckets([name, "plain-m"], name, T0, T0 + 60 * S, 60, "sum")
    assert frame[name].tolist() == [6.0]
    assert frame["plain-m"].isna().all()  # other meter, other point
    near = store.near_boundaries([name, "plain-m"], name, T0, 60, 1, S)
    assert near[["meter", "k", "ts", "value"]].values.tolist() == [[name, 0, T0 + S, 2.5]]
    assert store.raw("plain", name, T0, T0 + 10 * S).empty


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_a_server_that_is_down_raises_store_unavailable(api: str) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    fields = {"database": "nowhere"} if api == "v1" else {"org": "o", "bucket": "b", "token_env": "TOK"}
    cfg = InfluxStoreConfig(url=closed, api=api, timeout_s=2, **fields)  # type: ignore[arg-type]
    store = build_influx_store(cfg, {"TOK": "secret"})
    try:
        with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{closed.rsplit(':', 1)[1]}"):
            store.write([rd("d", "p", 1.0, T0)])
        with pytest.raises(StoreUnavailable):
            store.raw("d", "p", T0, T0 + S)
        with pytest.raises(StoreUnavailable):
            store.count(T0, T0 + S)
        with pytest.raises(StoreUnavailable):
            store.latest()
    finally:
        store.close()


def test_open_store_gives_independent_databases(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Guard for the suite itself: two influx stores never see each other's data."""
    a = open_store("influx_v1", request, tmp_path)
    b = open_store("influx_v1", request, tmp_path)
    try:
        a.write([rd("d", "p", 1.0, T0)])
        assert b.count(T0, T0 + S) == (0, 0.0)
        assert a.count(T0, T0 + S) == (1, 1.0)
    finally:
        a.close()
        b.close()


# -- readings next to interval boundaries (what interval energy is made from) ---------------------------------------

_E = "active_energy_import_kwh"
_TOL = 3 * S
_NEAR = ["meter", "k", "ts", "value"]


def _near(frame: pd.DataFrame) -> list[tuple[str, int, int, float]]:
    return [(m, int(k), int(ts), float(v)) for m, k, ts, v in frame.itertuples(index=False)]


def _reference(readings: list[Reading], meters: list[str], first: int, every_s: int, count: int, tol: int,
               limit: int) -> list[tuple[str, int, int, float]]:
    """The contract in plain Python: the first `limit` good readings in [T - tol, T + tol] of each boundary."""
    good = sorted((r.source_ts, r.value, r.meter) for r in readings
                  if r.quality == Quality.GOOD and r.value is not None and r.point == _E)
    out = []
    for m in sorted(meters):
        for k in range(count):
            t = first + k * every_s * S
            window = [(ts, v) for ts, v, mm in good if mm == m and t - tol <= ts <= t + tol]
            out += [(m, k, int(ts), float(v)) for ts, v in window[:limit]]
    return out


def test_near_boundaries_gives_the_first_readings_within_the_tolerance_of_each_boundary(
    store: TimeSeriesStore,
) -> None:
    b = [T0 + k * 900 * S for k in range(6)]

    def e(value: float | None, ts: int, quality: Quality = Quality.GOOD, meter: str = "m1") -> Reading:
        return rd(f"dev-{meter}", _E, value, ts, quality, meter=meter, unit="kWh")

    readings = [
        # boundary 0: readings on both sides, with their exact nanoseconds
        e(10.0, b[0] - 2 * S - 7), e(10.5, b[0] - S), e(11.0, b[0] + S + 3), e(11.5, b[0] + 2 * S),
        # boundary 1: a reading exactly at T, one just outside the tolerance before
        e(20.0, b[1] - _TOL - 1), e(21.0, b[1]),
        # boundary 2: only a reading the tolerance after T (inclusive); the next one is outside
        e(30.0, b[2] + _TOL), e(30.1, b[2] + _TOL + 1),
        # boundary 3: the tolerance before T (inclusive); readings that are not good do not count
        e(None, b[3] - _TOL, Quality.BAD), e(40.0, b[3] - _TOL + 5), e(99.0, b[3] + S, Quality.UNCERTAIN),
        e(None, b[3] + 2 * S, Quality.COMM_LOST),
        # boundary 4: a flat register (equal values): still the first readings of the window, in time order
        *[e(50.0, b[4] + i * S) for i in range(-3, 4)],
        # boundary 5: nothing near it, only mid-interval readings
        e(55.0, b[5] - 400 * S), e(56.0, b[5] + 400 * S),
        # another meter, another point
        e(7.0, b[1] + S, meter="m2"),
        rd("dev-m1", "active_power_kw", 1e6, b[0], meter="m1"),
    ]
    store.write(readings)
    frame = store.near_boundaries(["m1", "m2", "m3"], _E, b[0], 900, 6, _TOL, limit=3)
    assert list(frame.columns) == _NEAR
    assert frame["ts"].dtype == np.int64
    assert frame["k"].dtype == np.int64
    assert frame["value"].dtype == np.float64
    assert _near(frame) == [
        ("m1", 0, b[0] - 2 * S - 7, 10.0), ("m1", 0, b[0] - S, 10.5), ("m1", 0, b[0] + S + 3, 11.0),
        ("m1", 1, b[1], 21.0),
        ("m1", 2, b[2] + _TOL, 30.0),
        ("m1", 3, b[3] - _TOL + 5, 40.0),
        ("m1", 4, b[4] - 3 * S, 50.0), ("m1", 4, b[4] - 2 * S, 50.0), ("m1", 4, b[4] - S, 50.0),
        ("m2", 1, b[1] + S, 7.0),
    ]
    assert _near(frame) == _reference(readings, ["m1", "m2", "m3"], b[0], 900, 6, _TOL, 3)
    # a later first boundary and a shorter count see only their own windows; the limit counts per window
    part = store.near_boundaries(["m1"], _E, b[3], 900, 2, _TOL, limit=8)
    assert _near(part) == [("m1", 0, b[3] - _TOL + 5, 40.0)] + [("m1", 1, b[4] + i * S, 50.0) for i in range(-3, 4)]
    assert _near(store.near_boundaries(["m1"], _E, b[0], 900, 1, _TOL, limit=1)) == [("m1", 0, b[0] - 2 * S - 7,
                                                                                       10.0)]


def test_near_boundaries_agrees_with_the_plain_definition_on_a_random_register(store: TimeSeriesStore) -> None:
    rng = np.random.default_rng(11)
    readings = []
    for meter in ("m1", "m2"):
        ts = T0 - 30 * S + np.cumsum(rng.integers(200_000_000, 4 * S, size=6000))  # polls 0.2 .. 4 s apart
        keep = ~((ts > T0 + 3000 * S) & (ts < T0 + 3700 * S))  # a gap across a boundary
        value = 1000.0 + np.cumsum(rng.uniform(0.0, 2.0, size=len(ts)))
        readings += [rd(f"dev-{meter}", _E, float(v), int(t), meter=meter, unit="kWh")
                     for t, v in zip(ts[keep], value[keep], strict=True)]
    store.write(readings)
    for tol, limit in ((S // 2, 1), (2 * S, 3), (5 * S, 8), (5 * S, 64)):
        frame = store.near_boundaries(["m2", "m1"], _E, T0, 900, 16, tol, limit)
        assert _near(frame) == _reference(readings, ["m1", "m2"], T0, 900, 16, tol, limit), (tol, limit)


def test_near_boundaries_refuses_overlapping_windows_and_answers_empty_when_nothing_is_asked(
    store: TimeSeriesStore,
) -> None:
    from gateway.store.base import StoreError

    store.write([rd("d1", _E, 1.0, T0, meter="m1", unit="kWh")])
    for tol, limit in ((450 * S, 8), (0, 8), (S, 0)):
        with pytest.raises(StoreError, match="tolerance_ns"):
            store.near_boundaries(["m1"], _E, T0, 900, 4, tol, limit)
    for frame in (store.near_boundaries([], _E, T0, 900, 4, S), store.near_boundaries(["m1"], _E, T0, 900, 0, S)):
        assert frame.empty
        assert list(frame.columns) == _NEAR
