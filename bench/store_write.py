"""Store benchmark: pipeline (outbox on) into a real influxd vs raw batched line-protocol writes; embedded store
throughput; one-year daily load-curve query latency per store; SQLite vs DuckDB for the embedded choice.

Prints progress to stderr and one JSON object as its last stdout line.
Usage: .venv/bin/python bench/store_write.py [--readings 300000] [--queries 200]
       .venv/bin/python bench/store_write.py --writers-only   (store writer in a thread vs in its own process)
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.base import ReadingBatch  # noqa: E402
from collectors.reading import Quality, Reading  # noqa: E402
from gateway.outbox import Outbox  # noqa: E402
from gateway.pipeline import Pipeline  # noqa: E402
from gateway.query import QueryService, Topology, day_bounds  # noqa: E402
from gateway.store.base import TimeSeriesStore  # noqa: E402
from gateway.store.sqlite import SqliteStore  # noqa: E402


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def make_readings(n: int, t0: int) -> list[Reading]:
    """n readings from 200 devices x 50 points, 1 s apart per device, like a 10k-points/s plant."""
    out = []
    for i in range(n):
        dev, pt = divmod(i % 10_000, 50)
        out.append(Reading(f"meter-{dev:03d}", f"point_{pt:02d}", float(i % 9973) * 0.5, "kW", Quality.GOOD,
                           t0 + (i // 10_000) * 10**9, t0, "cust-a", "site-a", f"meter-{dev:03d}"))
    return out


def _esc_tag(v: str) -> str:
    return v.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def raw_line_protocol_rate(url: str, db: str, readings: list[Reading], batch: int) -> float:
    """Baseline: encode line protocol and POST gzip batches with one keep-alive client; nothing else."""
    httpx.post(f"{url}/query", data={"q": f'CREATE DATABASE "{db}"'}).raise_for_status()
    t = time.perf_counter()
    with httpx.Client(base_url=url, timeout=60) as client:
        for i in range(0, len(readings), batch):
            lines = []
            for r in readings[i : i + batch]:
                lines.append(
                    f"reading,customer={_esc_tag(r.customer)},device={_esc_tag(r.device)},meter={_esc_tag(r.meter)},"
                    f"point={_esc_tag(r.point)},site={_esc_tag(r.site)},unit={_esc_tag(r.unit)} "
                    f'value={r.value!r},quality="{r.quality}",gateway_ts={r.gateway_ts}i {r.source_ts}'
                )
            body = gzip.compress("\n".join(lines).encode(), compresslevel=1)
            resp = client.post("/write", params={"db": db, "precision": "n"}, content=body,
                               headers={"Content-Encoding": "gzip"})
            resp.raise_for_status()
    return len(readings) / (time.perf_counter() - t)


def polls(readings: list[Reading], size: int = 500) -> list[ReadingBatch]:
    """The readings as collectors hand them over: one `ReadingBatch` per device poll (made before timing)."""
    return [ReadingBatch.of(readings[i : i + size]) for i in range(0, len(readings), size)]


def pipeline_rate(store: TimeSeriesStore, readings: list[Reading], workdir: Path, batch: int) -> dict[str, float]:
    """Through the whole path: ingest -> durable outbox -> store, timed until the outbox is empty."""
    pipe = Pipeline(Outbox(workdir / f"outbox-{time.time_ns()}.db"), store, batch_size=batch)
    pipe.start()
    handovers = polls(readings)
    t = time.perf_counter()
    for poll in handovers:  # collectors hand over one device poll at a time
        pipe.ingest(poll)
    ok = pipe.flush(600)
    elapsed = time.perf_counter() - t
    stats = pipe.stats()
    pipe.stop()
    if not ok or stats["stored"] != len(readings):
        raise RuntimeError(f"pipeline did not deliver everything: {stats}")
    return {"readings_per_s": len(readings) / elapsed, "seconds": elapsed}


def writer_rates(readings: list[Reading], workdir: Path, batch: int) -> dict[str, object]:
    """The embedded store through the pipeline, its writer a thread (the baseline) then a process of its own.

    The process is started before the clock starts (it imports the store's libraries first); then the same readings
    are handed over and timed until the outbox is empty, as in `pipeline_rate`.
    """
    from gateway.config import parse_config
    from gateway.store_writer import StoreWriterProcess

    thread = pipeline_rate(SqliteStore(workdir / "ts-thread.db"), readings, workdir, batch)
    cfg = parse_config({"gateway": {"data_dir": str(workdir)}, "store": {"type": "embedded", "path": "ts-proc.db"},
                        "outbox": {"path": "outbox-proc.db", "batch_size": batch}})
    pipe = Pipeline(Outbox(workdir / "outbox-proc.db", shared=True), None, batch_size=batch,
                    store_writer=StoreWriterProcess(cfg))
    pipe.start()
    t = time.perf_counter()
    for poll in polls(readings):
        pipe.ingest(poll)
    ok = pipe.flush(600)
    elapsed = time.perf_counter() - t
    pipe.stop()
    stored = pipe.stats()["stored"]
    if not ok or stored != len(readings):
        raise RuntimeError(f"the store writer process did not deliver everything: {stored} of {len(readings)}")
    process = len(readings) / elapsed
    return {"thread_readings_per_s": round(thread["readings_per_s"]), "process_readings_per_s": round(process),
            "process_vs_thread": round(process / thread["readings_per_s"], 3)}


def stages(readings: list[Reading], workdir: Path, batch: int) -> dict[str, float]:
    """Microseconds per reading of each step of the outbox path, one thread, nothing overlapping (the profile)."""
    from gateway.outbox import _pack, _unpack

    out: dict[str, float] = {}

    def timed(name: str, step):  # noqa: ANN001, ANN202 - a bench helper
        t = time.perf_counter()
        result = step()
        out[name] = round((time.perf_counter() - t) / len(readings) * 1e6, 3)
        return result

    handovers = polls(readings)
    whole = timed("concat_us", lambda: ReadingBatch.concat(handovers))
    bodies = timed("pack_us", lambda: [_pack(whole[i : i + 1000]) for i in range(0, len(whole), 1000)])
    timed("unpack_us", lambda: [_unpack(b) for b in bodies])
    ob = Outbox(workdir / f"stages-{time.time_ns()}.db")
    timed("outbox_put_us", lambda: [ob.put(whole[i : i + batch]) for i in range(0, len(whole), batch)])

    def drain() -> list[ReadingBatch]:
        got = []
        while (b := ob.peek(batch)) is not None:
            ob.ack(b.last_id)
            got.append(b.batch)
        return got

    got = timed("outbox_peek_ack_us", drain)
    store = SqliteStore(workdir / f"stages-{time.time_ns()}.ts.db")

    def write() -> int:
        for b in got:
            store.write(b)
        return len(got)

    timed("embedded_write_us", write)
    return out


def year_of_registers(device: str, meter: str, year_start: pd.Timestamp) -> list[Reading]:
    idx = pd.date_range(year_start, periods=365 * 96 + 1, freq="15min")
    rng = np.random.default_rng(7)
    kwh = 1000 + np.concatenate([[0.0], np.cumsum(rng.uniform(50, 150, len(idx) - 1))])
    kvarh = 500 + np.concatenate([[0.0], np.cumsum(rng.uniform(20, 60, len(idx) - 1))])
    out = []
    for i, ts in enumerate(idx):
        out.append(Reading(device, "active_energy_import_kwh", float(kwh[i]), "kWh", Quality.GOOD, int(ts.value),
                           meter=meter, site="s1", customer="c1"))
        out.append(Reading(device, "reactive_energy_import_kvarh", float(kvarh[i]), "kvarh", Quality.GOOD,
                           int(ts.value), meter=meter, site="s1", customer="c1"))
    return out


def time_random_days(query, queries: int) -> dict[str, float]:
    """p50/p95 in ms of `query(start, end)` over `queries` random local days of 2025 (the same days every run)."""
    days = pd.date_range("2025-01-01", "2025-12-30", freq="D")
    rnd = random.Random(3)
    lat = []
    for _ in range(queries):
        start, end = day_bounds(rnd.choice(days), "Asia/Shanghai")
        t = time.perf_counter()
        query(start, end)
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    return {"p50_ms": statistics.median(lat), "p95_ms": lat[int(0.95 * (len(lat) - 1))]}


def _span_ns(start, end) -> tuple[int, int]:
    """The day plus the next interval: the energy of the last interval needs the register at midnight."""
    return int(pd.Timestamp(start).value), int(pd.Timestamp(end).value) + 900 * 10**9


def day_curve_latency(store: TimeSeriesStore, queries: int) -> dict[str, float]:
    """p50/p95 of one customer's daily load curve (96 intervals, kWh+kvarh) picked at random in the year."""
    q = QueryService(store, Topology({"c1": "Asia/Shanghai"}, {"s1": "c1"}, {"m1": "s1"}, {"m1": "dev1"}))

    def query(start, end):
        frame = q.customer_intervals("c1", start, end)
        if len(frame) != 96 or frame["missing"].any():
            raise RuntimeError("day curve query returned an incomplete day")

    return time_random_days(query, queries)


def store_day_query_latency(store: TimeSeriesStore, queries: int) -> dict[str, float]:
    """The store-level part of a day curve alone (two `buckets()` calls), comparable to the DuckDB SQL timing."""

    def query(start, end):
        s_ns, e_ns = _span_ns(start, end)
        for point in ("active_energy_import_kwh", "reactive_energy_import_kvarh"):
            store.buckets(["m1"], point, s_ns, e_ns, 900, "first")

    return time_random_days(query, queries)


def duckdb_comparison(
    readings: list[Reading], year: list[Reading], workdir: Path, queries: int, batch: int
) -> dict[str, float]:
    """The same write batches and day query against DuckDB, to back the embedded-store choice with numbers."""
    try:
        import duckdb
    except ImportError:
        return {"skipped": 1.0}
    con = duckdb.connect(str(workdir / "duck.db"))
    con.execute("CREATE TABLE samples (device VARCHAR, point VARCHAR, meter VARCHAR, ts BIGINT, value DOUBLE, "
                "quality TINYINT, PRIMARY KEY (device, point, ts))")
    def frame(rs: list[Reading]) -> pd.DataFrame:
        return pd.DataFrame({"device": [r.device for r in rs], "point": [r.point for r in rs],
                             "meter": [r.meter for r in rs], "ts": [r.source_ts for r in rs],
                             "value": [r.value for r in rs], "quality": np.zeros(len(rs), dtype=np.int8)})

    # DuckDB's fast path is a bulk insert from a frame (executemany is row by row); give it that advantage.
    t = time.perf_counter()
    for i in range(0, len(readings), batch):
        chunk = frame(readings[i : i + batch])  # noqa: F841 - read by name in the SQL below
        con.execute("INSERT OR REPLACE INTO samples SELECT * FROM chunk")
    write_rate = len(readings) / (time.perf_counter() - t)
    yframe = frame(year)  # noqa: F841
    con.execute("INSERT OR REPLACE INTO samples SELECT * FROM yframe")

    def query(start, end):
        con.execute("SELECT point, ts // 900000000000 AS b, arg_min(value, ts) FROM samples WHERE meter = ? AND "
                    "ts >= ? AND ts < ? GROUP BY point, b", ["m1", *_span_ns(start, end)]).fetchall()

    lat = time_random_days(query, queries)
    con.close()
    return {"write_readings_per_s": write_rate, "day_query_p50_ms": lat["p50_ms"], "day_query_p95_ms": lat["p95_ms"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--readings", type=int, default=300_000)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--writers-only", action="store_true",
                    help="only the embedded store's writer in a thread vs in a process (gateway.store_writer)")
    args = ap.parse_args()
    result: dict[str, object] = {"readings": args.readings, "batch": args.batch}
    t0 = 1_750_000_000 * 10**9
    readings = make_readings(args.readings, t0)
    if args.writers_only:
        with tempfile.TemporaryDirectory() as tmp:
            result["embedded_store_writer"] = writer_rates(readings, Path(tmp), args.batch)
        print(json.dumps(result))
        return
    year = year_of_registers("dev1", "m1", pd.Timestamp("2025-01-01", tz="Asia/Shanghai"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        log("embedded store ...")
        emb = SqliteStore(work / "ts.db")
        direct_batches = [ReadingBatch.of(readings[i : i + args.batch]) for i in range(0, len(readings), args.batch)]
        t = time.perf_counter()
        for b in direct_batches:
            emb.write(b)
        direct = len(readings) / (time.perf_counter() - t)
        emb2 = SqliteStore(work / "ts2.db")
        via = pipeline_rate(emb2, readings, work, args.batch)
        emb.write(year)
        result["outbox_stages_us_per_reading"] = stages(readings[:100_000], work, args.batch)
        log(f"stages: {result['outbox_stages_us_per_reading']}")
        result["embedded"] = {"direct_write_readings_per_s": direct, "pipeline_readings_per_s": via["readings_per_s"],
                              "pipeline_vs_direct": via["readings_per_s"] / direct,
                              "day_curve_query": day_curve_latency(emb, args.queries),
                              "day_query_store_only": store_day_query_latency(emb, args.queries)}
        log(f"embedded: {result['embedded']}")
        log("duckdb (for comparison) ...")
        result["duckdb_comparison"] = duckdb_comparison(readings, year, work, args.queries, args.batch)
        log(f"duckdb: {result['duckdb_comparison']}")
        try:
            from gateway.store.influx import InfluxStoreConfig, build_influx_store
            from tests.servers.influx import run_influxd
        except ImportError as exc:
            result["influxdb"] = {"error": f"not available: {exc}"}
        else:
            with run_influxd(work) as server:
                log(f"influxd at {server.url}: raw line protocol baseline ...")
                raw = raw_line_protocol_rate(server.url, "bench_raw", readings, args.batch)
                server.create_database("bench_pipe")
                cfg = InfluxStoreConfig(type="influxdb", url=server.url, api="v1", database="bench_pipe",
                                        batch_size=args.batch)
                store = build_influx_store(cfg, {})
                log("pipeline into influxd ...")
                via_influx = pipeline_rate(store, readings, work, args.batch)
                n_stored = store.count(0, 2**62)[0]
                server.create_database("bench_year")
                ystore = build_influx_store(cfg.model_copy(update={"database": "bench_year"}), {})
                for i in range(0, len(year), args.batch):
                    ystore.write(year[i : i + args.batch])
                result["influxdb"] = {
                    "raw_line_protocol_readings_per_s": raw,
                    "pipeline_readings_per_s": via_influx["readings_per_s"],
                    "pipeline_vs_raw": via_influx["readings_per_s"] / raw,
                    "stored_count_check": n_stored,
                    "day_curve_query": day_curve_latency(ystore, args.queries),
                }
                log(f"influxdb: {result['influxdb']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
