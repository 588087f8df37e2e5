"""64-bit integer registers keep every digit: through the pipeline and outbox into each store, and out of every read.

The same cases run against the embedded store and a real influxd (API v1 direct, API v2 through influxdb-client),
like the rest of the store contract.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from collectors.reading import ACTIVE_ENERGY_IMPORT_KWH, Quality, Reading
from gateway.outbox import Outbox
from gateway.pipeline import Pipeline
from gateway.query import QueryService, Topology
from gateway.store.base import StoreRejected, TimeSeriesStore
from gateway.store.sqlite import SqliteStore
from tests.gateway.store.conftest import make_v1
from tests.servers.influx import InfluxServer

S = 10**9
T0 = 1_767_225_600 * S  # 2026-01-01T00:00:00Z, a 15-min boundary
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
UINT64_MAX = 2**64 - 1
# One reading a minute, so that every reading has a 60 s bucket and a boundary of its own.
EXACT = [INT64_MAX, INT64_MIN, 2**53 + 1, UINT64_MAX, 2**63, -1, 0, 2**53 - 1, -(2**53) - 1]
FLOATS = [3.0, 0.5, float(2**53), -7.0]


def rd(point: str, value: float | int | None, ts: int, meter: str = "m-int", device: str = "dev-1",
       unit: str = "kWh") -> Reading:
    return Reading(device, point, value, unit, Quality.GOOD, ts, ts + 1000, "cust-1", "site-1", meter)


def through_pipeline(store: TimeSeriesStore, readings: Sequence[Reading], outbox_path: Path) -> dict[str, object]:
    """Hand readings to a real pipeline, as collectors do, and wait until the store confirmed all of them."""
    outbox = Outbox(outbox_path)
    pipe = Pipeline(outbox, store, batch_size=4, commit_interval_s=0.01)  # small batches: many outbox round trips
    pipe.start()
    try:
        pipe.ingest(list(readings))
        assert pipe.flush(timeout=120), pipe.stats()
    finally:
        pipe.stop(timeout=30)
        outbox.close()
    return pipe.stats()


def kinds(values: Sequence[object]) -> list[str]:
    return [type(v).__name__ for v in values]


def test_integers_come_back_exactly_from_every_read(store: TimeSeriesStore, tmp_path: Path) -> None:
    ints = [rd("counter", v, T0 + i * 60 * S) for i, v in enumerate(EXACT)]
    floats = [rd("counter", v, T0 + i * 60 * S, meter="m-float", device="dev-2") for i, v in enumerate(FLOATS)]
    stats = through_pipeline(store, ints + floats, tmp_path / "outbox.db")
    assert (stats["stored"], stats["rejected"]) == (len(ints) + len(floats), 0)
    end = T0 + len(EXACT) * 60 * S

    raw = store.raw("dev-1", "counter", T0, end)
    assert raw["value"].tolist() == EXACT
    assert kinds(raw["value"].tolist()) == ["int"] * len(EXACT)
    assert raw["ts"].tolist() == [r.source_ts for r in ints]

    newest = {(v.device, v.point): v.value for v in store.latest()}
    assert (newest[("dev-1", "counter")], type(newest[("dev-1", "counter")])) == (EXACT[-1], int)
    assert (newest[("dev-2", "counter")], type(newest[("dev-2", "counter")])) == (FLOATS[-1], float)
    for i, v in enumerate(EXACT):  # the newest value of a series is each of them in turn
        store.write([rd("latest", v, T0 + i * S)])
        assert {x.point: x.value for x in store.latest(["dev-1"])}["latest"] == v

    for agg in ("first", "last"):
        frame = store.buckets(["m-int", "m-float"], "counter", T0, end, 60, agg)  # type: ignore[arg-type]
        assert frame["m-int"].tolist() == EXACT, agg
        assert kinds(frame["m-int"].tolist()) == ["int"] * len(EXACT)
        assert frame["m-float"].dtype == np.float64  # a float meter beside it stays a float column
        assert frame["m-float"].tolist()[: len(FLOATS)] == FLOATS
        assert frame["m-float"].iloc[len(FLOATS):].isna().all()

    near = store.near_boundaries(["m-int", "m-float"], "counter", T0, 60, len(EXACT), 5 * S, limit=2)
    mine = near[near["meter"] == "m-int"]
    assert mine["k"].tolist() == list(range(len(EXACT)))
    assert mine["value"].tolist() == EXACT
    assert kinds(mine["value"].tolist()) == ["int"] * len(EXACT)
    assert near[near["meter"] == "m-float"]["value"].tolist() == FLOATS
    assert kinds(near[near["meter"] == "m-float"]["value"].tolist()) == ["float"] * len(FLOATS)

    assert store.count(T0, end)[0] == 2 * len(EXACT) + len(FLOATS)  # with the "latest" series


def test_a_float_point_stays_float_even_with_integral_values(store: TimeSeriesStore, tmp_path: Path) -> None:
    """3.0 is a float reading and comes back a float (InfluxDB answers it as the JSON number 3), beside integers."""
    floats = [rd("power", v, T0 + i * 60 * S, meter="m-float", unit="kW") for i, v in enumerate(FLOATS)]
    ints = [rd("counter", 2**53 + 1 + i, T0 + i * 60 * S) for i in range(len(FLOATS))]
    through_pipeline(store, floats + ints, tmp_path / "outbox.db")  # one measurement, one shard: no type conflict
    end = T0 + len(FLOATS) * 60 * S

    raw = store.raw("dev-1", "power", T0, end)
    assert raw["value"].dtype == np.float64
    assert raw["value"].tolist() == FLOATS
    assert kinds(raw["value"].tolist()) == ["float"] * len(FLOATS)
    latest = {v.point: v.value for v in store.latest(["dev-1"])}
    assert (latest["power"], type(latest["power"])) == (-7.0, float)
    assert (latest["counter"], type(latest["counter"])) == (2**53 + 4, int)
    for agg in ("first", "last", "max", "sum"):
        frame = store.buckets(["m-float"], "power", T0, end, 60, agg)  # type: ignore[arg-type]
        assert frame["m-float"].dtype == np.float64
        assert frame["m-float"].tolist() == FLOATS
    near = store.near_boundaries(["m-float"], "power", T0, 60, len(FLOATS), 5 * S)
    assert near["value"].dtype == np.float64
    assert near["value"].tolist() == FLOATS


def test_a_point_rewritten_with_a_float_reads_as_the_float(store: TimeSeriesStore) -> None:
    """InfluxDB merges the fields of two writes to one point: the older integer must not outlive the newer float."""
    store.write([rd("counter", 2**53 + 1, T0), rd("counter", UINT64_MAX, T0 + S)])
    store.write([rd("counter", 5.5, T0), rd("counter", 6.5, T0 + S)])
    assert store.raw("dev-1", "counter", T0, T0 + 2 * S)["value"].tolist() == [5.5, 6.5]
    assert kinds(store.raw("dev-1", "counter", T0, T0 + 2 * S)["value"].tolist()) == ["float", "float"]
    assert store.latest(["dev-1"])[0].value == 6.5
    assert store.buckets(["m-int"], "counter", T0, T0 + 60 * S, 60, "first")["m-int"].tolist() == [5.5]
    lost = Reading("dev-1", "counter", None, "kWh", Quality.COMM_LOST, T0 + S, T0, "cust-1", "site-1", "m-int")
    store.write([rd("counter", UINT64_MAX, T0 + S)])
    store.write([lost])  # an error is never a number, not even the integer written before at that time
    assert store.latest(["dev-1"])[0].value is None
    assert np.isnan(store.raw("dev-1", "counter", T0, T0 + 2 * S)["value"].iloc[1])
    # within one batch too, in the order given: the last write of a (device, point, source_ts) wins
    store.write([rd("counter", 2**53 + 1, T0 + 5 * S), rd("counter", 4.5, T0 + 5 * S),
                 rd("counter", 1.5, T0 + 6 * S), rd("counter", UINT64_MAX, T0 + 6 * S)])
    both = store.raw("dev-1", "counter", T0 + 5 * S, T0 + 7 * S)["value"].tolist()
    assert (both, kinds(both)) == ([4.5, UINT64_MAX], ["float", "int"])


def test_an_integer_beyond_64_bits_is_refused_and_dead_lettered_exactly(store: TimeSeriesStore,
                                                                         tmp_path: Path) -> None:
    with pytest.raises(StoreRejected, match="outside the 64-bit range"):
        store.write([rd("counter", 2**64, T0)])
    with pytest.raises(StoreRejected, match="outside the 64-bit range"):
        store.write([rd("counter", INT64_MIN - 1, T0)])
    readings = [rd("counter", UINT64_MAX, T0), rd("counter", 2**64 + 5, T0 + S), rd("counter", 7, T0 + 2 * S)]
    stats = through_pipeline(store, readings, tmp_path / "outbox.db")
    assert (stats["stored"], stats["rejected"]) == (2, 1)
    assert store.raw("dev-1", "counter", T0, T0 + 3 * S)["value"].tolist() == [UINT64_MAX, 7]
    (kept, why), = Outbox(tmp_path / "outbox.db").dead_letters()
    assert (kept.value, type(kept.value)) == (2**64 + 5, int)
    assert "outside the 64-bit range" in why


def test_near_boundaries_picks_the_earliest_readings_of_a_counter_whose_floats_are_all_equal(
    store: TimeSeriesStore,
) -> None:
    """Near 2**64 a float64 is 4096 wide: InfluxDB's bottom() sees ties and must still give the earliest, exactly."""
    start = UINT64_MAX - 100
    store.write([rd("counter", start + i, T0 - 10 * S + i * S) for i in range(21)])  # 1 s polls around T0
    frame = store.near_boundaries(["m-int"], "counter", T0, 900, 1, 5 * S, limit=3)
    assert frame["ts"].tolist() == [T0 - 5 * S, T0 - 4 * S, T0 - 3 * S]
    assert frame["value"].tolist() == [start + 5, start + 6, start + 7]


# -- interval energy from 64-bit counters ---------------------------------------------------------------------------

TOPO = Topology({"cust-1": "UTC"}, {"site-1": "cust-1"}, {"m-int": "site-1"}, {"m-int": "dev-1"})


def _counter(start: int, steps: Sequence[int]) -> list[Reading]:
    """A register read exactly at each 15-min boundary, plus one reading between boundaries 2 and 3."""
    values = np.cumsum([0, *steps]).tolist()
    out = [rd(ACTIVE_ENERGY_IMPORT_KWH, start + int(v), T0 + i * 900 * S) for i, v in enumerate(values)]
    out.append(rd(ACTIVE_ENERGY_IMPORT_KWH, start + int(values[2]) + 1, T0 + 2 * 900 * S + 450 * S))
    return out


@pytest.mark.parametrize("start", [UINT64_MAX - 100, INT64_MAX - 50, 2**53 + 1, INT64_MIN])
def test_interval_energy_from_a_64_bit_counter_is_exact(store: TimeSeriesStore, tmp_path: Path, start: int) -> None:
    """Differences of big counters are taken on integers: a float64 near 2**64 is 4096 apart, which would show."""
    steps = [7, 1, 3, 0, 11, 2]
    through_pipeline(store, _counter(start, steps), tmp_path / "outbox.db")
    query = QueryService(store, TOPO, clock=lambda: datetime.fromtimestamp((T0 + 3 * 86400 * S) / S, UTC))
    frame = query.meter_intervals("m-int", pd.Timestamp(T0, tz="UTC"), pd.Timestamp(T0 + 6 * 900 * S, tz="UTC"))
    assert frame["status"].tolist() == ["measured"] * len(steps)
    assert frame["kwh"].tolist() == [float(s) for s in steps]  # exactly: no approx
    assert frame["kwh"].dtype == np.float64  # the figure itself stays a float


# -- stores made by the previous version ----------------------------------------------------------------------------

_OLD_SQLITE_SCHEMA = """
CREATE TABLE series (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL, point TEXT NOT NULL, unit TEXT NOT NULL,
    meter TEXT NOT NULL, site TEXT NOT NULL, customer TEXT NOT NULL,
    UNIQUE (device, point, unit, meter, site, customer)
);
CREATE INDEX series_meter_point ON series (meter, point);
CREATE TABLE samples (
    series_id INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    value REAL,
    quality INTEGER NOT NULL,
    gateway_ts INTEGER NOT NULL,
    PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;
"""


def test_an_embedded_store_of_the_previous_version_reads_and_takes_integers(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(_OLD_SQLITE_SCHEMA)
        db.execute("INSERT INTO series VALUES (1, 'dev-1', 'counter', 'kWh', 'm-int', 'site-1', 'cust-1')")
        # the previous version wrote an int into the REAL column: it was kept as a float
        db.executemany("INSERT INTO samples VALUES (1, ?, ?, 0, ?)",
                       [(T0, 1.5, T0), (T0 + S, 2**53 + 1, T0), (T0 + 2 * S, None, T0)])
    store = SqliteStore(path)
    try:
        raw = store.raw("dev-1", "counter", T0, T0 + 10 * S)
        assert raw["value"].dtype == np.float64
        assert raw["value"].tolist()[:2] == [1.5, float(2**53)]  # what it held, as it was stored
        store.write([rd("counter", UINT64_MAX, T0 + 3 * S), rd("counter", 2**53 + 1, T0 + 4 * S)])
        values = store.raw("dev-1", "counter", T0 + 3 * S, T0 + 10 * S)["value"].tolist()
        assert (values, kinds(values)) == ([UINT64_MAX, 2**53 + 1], ["int", "int"])
        assert store.latest(["dev-1"])[0].value == 2**53 + 1
    finally:
        store.close()
    again = SqliteStore(path)  # the column is added once; a second open changes nothing
    try:
        assert again.raw("dev-1", "counter", T0, T0 + 10 * S)["value"].tolist()[3:] == [UINT64_MAX, 2**53 + 1]
    finally:
        again.close()


def test_an_influx_database_of_the_previous_version_reads_and_takes_integers(influxd: InfluxServer) -> None:
    database = f"old_{uuid.uuid4().hex[:12]}"
    influxd.create_database(database)
    old_lines = "\n".join([  # what the previous version wrote: value always a float field, integers too
        f'reading,customer=cust-1,device=dev-1,meter=m-int,point=counter,site=site-1,unit=kWh value=1.5,'
        f'quality="good",gateway_ts={T0}i {T0}',
        f'reading,customer=cust-1,device=dev-1,meter=m-int,point=counter,site=site-1,unit=kWh '
        f'value={float(2**53 + 1)!r},quality="good",gateway_ts={T0}i {T0 + S}',
    ])
    httpx.post(f"{influxd.url}/write", params={"db": database, "precision": "n"},
               content=old_lines.encode()).raise_for_status()
    store = make_v1(influxd, database)
    try:
        raw = store.raw("dev-1", "counter", T0, T0 + 10 * S)
        assert raw["value"].dtype == np.float64
        assert raw["value"].tolist() == [1.5, float(2**53)]
        # new integers land in the same shard beside the old floats: value stays a float field, value_int is new
        store.write([rd("counter", UINT64_MAX, T0 + 2 * S), rd("counter", INT64_MIN, T0 + 3 * S)])
        values = store.raw("dev-1", "counter", T0, T0 + 10 * S)["value"].tolist()
        assert values == [1.5, float(2**53), UINT64_MAX, INT64_MIN]
        assert kinds(values) == ["float", "float", "int", "int"]
        first = store.buckets(["m-int"], "counter", T0, T0 + 60 * S, 60, "first")["m-int"].tolist()
        assert first == [1.5]
    finally:
        store.close()
