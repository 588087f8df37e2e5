"""Outage: influxd is stopped for 30+ s while readings keep arriving; after its restart every reading is there once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from collectors.reading import Quality, Reading
from gateway.outbox import Outbox
from gateway.pipeline import Pipeline
from gateway.store.base import TimeSeriesStore
from tests.gateway.store.conftest import make_v1, make_v2
from tests.servers.influx import run_influxd
from tests.servers.influx_v2_proxy import InfluxV2Proxy

S = 10**9
T0 = 1_767_225_600 * S
OUTAGE_S = 32.0
RATE_PER_S = 200


class Feeder(threading.Thread):
    """Hands 200 readings/s to every pipeline, each with a unique (device, point, source_ts)."""

    def __init__(self, pipelines: list[Pipeline]) -> None:
        super().__init__(name="feeder", daemon=True)
        self.pipelines = pipelines
        self.stop_event = threading.Event()
        self.fed = 0
        self.total = 0.0

    def run(self) -> None:
        tick = 0
        started = time.monotonic()
        while not self.stop_event.is_set():
            batch = []
            for j in range(RATE_PER_S // 10):
                n = self.fed + j
                # integral values keep the float sum exact; every 50th reading is a comm_lost gap (value None)
                value = None if n % 50 == 49 else float(n % 997)
                batch.append(Reading(
                    device=f"dev-{n % 7}", point="active_power_kw", value=value, unit="kW",
                    quality=Quality.GOOD if value is not None else Quality.COMM_LOST,
                    source_ts=T0 + n * 1_000_000, gateway_ts=time.time_ns(), meter=f"m-{n % 7}",
                ))
            for p in self.pipelines:
                p.ingest(batch)
            self.fed += len(batch)
            self.total += sum(r.value for r in batch if r.value is not None)
            tick += 1
            self.stop_event.wait(max(0.0, started + tick * 0.1 - time.monotonic()))


def _wait(cond: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_readings_survive_an_influxd_outage_exactly_once(tmp_path: Path) -> None:
    with run_influxd(tmp_path) as server:
        proxy = InfluxV2Proxy(server.url).start()
        stores: dict[str, TimeSeriesStore] = {
            "v1": make_v1(server, "outage_v1", timeout_s=3),
            "v2": make_v2(proxy, server, "outage_v2", timeout_s=3),
        }
        pipes = {
            name: Pipeline(outbox=Outbox(tmp_path / f"outbox-{name}.sqlite"), store=store, batch_size=1000,
                           retry_initial_s=0.2, retry_max_s=1.0)
            for name, store in stores.items()
        }
        for p in pipes.values():
            p.start()
        feeder = Feeder(list(pipes.values()))
        feeder.start()
        try:
            _wait(lambda: all(int(p.stats()["stored"]) >= 500 for p in pipes.values()), 30, "first writes")

            server.stop()
            down_at = time.monotonic()
            fed_at_stop = feeder.fed
            time.sleep(OUTAGE_S)
            assert time.monotonic() - down_at >= 30
            # while influxd was down the readings waited in the outbox and every write attempt failed
            for name, p in pipes.items():
                st = p.stats()
                assert int(st["errors"]) > 0, (name, st)
                assert int(st["outbox_depth"]) >= (feeder.fed - fed_at_stop) // 2, (name, st)
                assert "Unavailable" in str(st["last_error"]), (name, st)

            server.start()  # same data dir, same port
            time.sleep(3)  # new readings keep flowing while the backlog drains
        finally:
            feeder.stop_event.set()
            feeder.join(5)
        try:
            for name, p in pipes.items():
                assert p.flush(timeout=60), (name, p.stats())
            for name, p in pipes.items():
                st = p.stats()
                assert st["dropped"] == 0, (name, st)
                assert st["rejected"] == 0, (name, st)
                assert int(st["collected"]) == feeder.fed, (name, st)
                assert int(st["stored"]) >= feeder.fed, (name, st)  # at-least-once delivery ...
                # ... and exactly-once storage: counts and sums straight from influxd
                count, total = stores[name].count(T0, T0 + feeder.fed * 1_000_000)
                assert count == feeder.fed, (name, count, feeder.fed)
                assert total == feeder.total, (name, total, feeder.total)
                db = f"outage_{name}"
                direct = server.query('SELECT count("quality") FROM "reading"', db=db)
                n_direct = direct["results"][0]["series"][0]["values"][0][1]  # type: ignore[index]
                assert n_direct == feeder.fed, (name, direct)
            assert feeder.fed >= RATE_PER_S * (OUTAGE_S + 3)
        finally:
            for p in pipes.values():
                p.stop(flush=False, timeout=10)
                p.outbox.close()
            for s in stores.values():
                s.close()
            proxy.stop()
