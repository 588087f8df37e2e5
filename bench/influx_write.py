"""Benchmark: readings/s written end to end into a real influxd (v1 direct, v2 via the proxy), printed as JSON.

Baseline, measured in the same run: POSTing the same, already-encoded line protocol straight to /write (the
server's own ceiling on this machine). Prints one JSON object as its last stdout line.
Usage: .venv/bin/python bench/influx_write.py [READINGS [BATCH]]
"""

from __future__ import annotations

import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.reading import Reading  # noqa: E402
from gateway.outbox import Outbox  # noqa: E402
from gateway.pipeline import Pipeline  # noqa: E402
from gateway.store.influx import LineEncoder  # noqa: E402
from tests.gateway.store.conftest import make_v1, make_v2  # noqa: E402
from tests.servers.influx import run_influxd  # noqa: E402
from tests.servers.influx_v2_proxy import InfluxV2Proxy  # noqa: E402

T0 = 1_767_225_600 * 10**9


def readings(n: int, offset: int) -> list[Reading]:
    # 200 meters x 5 points, one value each per second: the shape of a large plant
    return [
        Reading(device=f"meter-{i % 200:03d}", point=f"p{(i // 200) % 5}", value=float(i % 1000) + 0.25, unit="kW",
                source_ts=T0 + offset + (i // 1000) * 10**9, gateway_ts=T0, customer="cust-1", site="site-1",
                meter=f"meter-{i % 200:03d}")
        for i in range(n)
    ]


def main(n: int = 200_000, batch: int = 5000) -> dict[str, object]:
    out: dict[str, object] = {"readings": n, "batch_size": batch}
    with tempfile.TemporaryDirectory() as tmp, run_influxd(Path(tmp)) as server:
        data = readings(n, 0)
        t = time.perf_counter()
        enc = LineEncoder()
        bodies = [enc.encode(data[i : i + batch]) for i in range(0, n, batch)]
        out["encode_only_per_s"] = round(n / (time.perf_counter() - t))

        server.create_database("baseline")
        with httpx.Client(base_url=server.url) as c:
            t = time.perf_counter()
            for body in bodies:
                c.post("/write", params={"db": "baseline"}, content=gzip.compress(body, 1),
                       headers={"Content-Encoding": "gzip"}).raise_for_status()
            out["baseline_preencoded_post_per_s"] = round(n / (time.perf_counter() - t))

        v1 = make_v1(server, "bench_v1", batch_size=batch)
        data = readings(n, 10**6)
        t = time.perf_counter()
        for i in range(0, n, batch):
            v1.write(data[i : i + batch])
        out["v1_store_write_per_s"] = round(n / (time.perf_counter() - t))
        assert v1.count(T0, T0 + 10**15)[0] == n
        v1.close()

        # through the gateway's durable outbox and pipeline: ingest -> SQLite outbox -> influxd, until drained
        v1p = make_v1(server, "bench_pipeline", batch_size=batch)
        pipe = Pipeline(outbox=Outbox(Path(tmp) / "outbox.sqlite"), store=v1p, batch_size=batch)
        pipe.start()
        data = readings(n, 3 * 10**6)
        t = time.perf_counter()
        for i in range(0, n, 1000):
            pipe.ingest(data[i : i + 1000])
        assert pipe.flush(timeout=300)
        out["pipeline_outbox_to_v1_per_s"] = round(n / (time.perf_counter() - t))
        pipe.stop(timeout=10)
        pipe.outbox.close()
        assert v1p.count(T0, T0 + 10**15)[0] == n
        v1p.close()

        proxy = InfluxV2Proxy(server.url).start()
        v2 = make_v2(proxy, server, "bench_v2", batch_size=batch)
        data = readings(n, 2 * 10**6)
        t = time.perf_counter()
        for i in range(0, n, batch):
            v2.write(data[i : i + batch])
        out["v2_store_write_via_test_proxy_per_s"] = round(n / (time.perf_counter() - t))
        assert v2.count(T0, T0 + 10**15)[0] == n
        v2.close()
        proxy.stop()
    out["v1_vs_baseline"] = round(int(out["v1_store_write_per_s"]) / int(out["baseline_preencoded_post_per_s"]), 2)
    return out


if __name__ == "__main__":
    print(json.dumps(main(*(int(a) for a in sys.argv[1:]))))
