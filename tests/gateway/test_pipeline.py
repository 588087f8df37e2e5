"""The pipeline over a real embedded store: exactly-once delivery, outage buffering, rejects, clean stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from collectors.reading import Quality, Reading
from gateway.outbox import Outbox
from gateway.pipeline import Pipeline
from gateway.store.base import StoreRejected, StoreUnavailable
from gateway.store.sqlite import SqliteStore


class SwitchableStore(SqliteStore):
    """A real SqliteStore that can be made unreachable, and that refuses readings of a device named "bad"."""

    def __init__(self, path):
        super().__init__(path)
        self.down = threading.Event()
        self.batches: list[list[int]] = []

    def write(self, readings: Sequence[Reading]) -> None:
        if self.down.is_set():
            raise StoreUnavailable("connection refused (test switch)")
        if any(r.device == "bad" for r in readings):
            raise StoreRejected("field type conflict on device bad")
        super().write(readings)
        self.batches.append([r.source_ts for r in readings])


def _readings(start: int, n: int) -> list[Reading]:
    return [Reading(f"d{i % 7}", "p", float(i), "kW", Quality.GOOD, source_ts=start + i) for i in range(n)]


def _wait(pred, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def parts(tmp_path):
    store = SwitchableStore(tmp_path / "ts.db")
    outbox = Outbox(tmp_path / "ob.db")
    pipe = Pipeline(outbox, store, batch_size=500, retry_initial_s=0.05, retry_max_s=0.2)
    yield store, outbox, pipe
    pipe.stop(flush=False, timeout=5)


def test_every_reading_stored_exactly_once(parts):
    store, _, pipe = parts
    pipe.start()
    sent = _readings(10**12, 20_000)
    for i in range(0, len(sent), 137):
        pipe.ingest(sent[i : i + 137])
    assert pipe.flush(30)
    stats = pipe.stats()
    assert stats["collected"] == 20_000
    assert stats["stored"] == 20_000
    assert stats["outbox_depth"] == 0
    assert store.count(0, 2**62) == (20_000, float(sum(range(20_000))))


def test_outage_buffers_then_drains_in_time_order_while_new_data_flows(parts):
    store, outbox, pipe = parts
    pipe.start()
    store.down.set()
    pipe.ingest(_readings(10**12, 3000))
    assert _wait(lambda: outbox.depth == 3000)
    assert store.count(0, 2**62)[0] == 0
    assert pipe.stats()["errors"] > 0
    store.down.clear()
    pipe.ingest(_readings(10**12 + 3000, 3000))  # keeps flowing while the backlog drains
    assert pipe.flush(30)
    assert store.count(0, 2**62) == (6000, float(sum(range(3000)) * 2))
    firsts = [b[0] for b in store.batches]
    assert firsts == sorted(firsts), "backlog must drain oldest first"


def test_rejected_reading_is_isolated_and_kept(parts):
    store, outbox, pipe = parts
    pipe.start()
    batch = _readings(10**12, 100)
    batch[42] = Reading("bad", "p", 1.0, "kW", Quality.GOOD, source_ts=10**12 + 42)
    pipe.ingest(batch)
    assert pipe.flush(30)
    assert store.count(0, 2**62)[0] == 99
    (reading, why), = outbox.dead_letters()
    assert reading.device == "bad"
    assert "conflict" in why
    assert pipe.stats()["rejected"] == 1


def test_stop_persists_memory_and_next_start_delivers(tmp_path):
    store = SwitchableStore(tmp_path / "ts.db")
    store.down.set()
    pipe = Pipeline(Outbox(tmp_path / "ob.db"), store, retry_initial_s=0.05)
    pipe.start()
    pipe.ingest(_readings(10**12, 1234))
    pipe.stop(flush=True, timeout=1)
    assert store.count(0, 2**62)[0] == 0
    store.down.clear()
    again = Pipeline(Outbox(tmp_path / "ob.db"), store)
    again.start()
    assert again.flush(30)
    again.stop()
    assert store.count(0, 2**62) == (1234, float(sum(range(1234))))


def test_memory_bound_counts_drops(tmp_path):
    store = SwitchableStore(tmp_path / "ts.db")
    pipe = Pipeline(Outbox(tmp_path / "ob.db"), store, memory_limit=100)
    # Not started: nothing moves out of memory, so the bound is reached deterministically.
    pipe.ingest(_readings(10**12, 80))
    pipe.ingest(_readings(10**12 + 80, 50))
    stats = pipe.stats()
    assert stats["collected"] == 100
    assert stats["dropped_by_reason"] == {"memory_full": 30}


class GatedStore(SqliteStore):
    """A real SqliteStore whose writes wait for `open`: a store that is up but slower than collection."""

    def __init__(self, path):
        super().__init__(path)
        self.open = threading.Event()

    def write(self, readings: Sequence[Reading]) -> None:
        self.open.wait()
        super().write(readings)


def test_back_pressure_slows_collection_while_the_store_falls_behind_and_releases_after(tmp_path):
    from prometheus_client import REGISTRY

    store = GatedStore(tmp_path / "ts.db")
    pipe = Pipeline(Outbox(tmp_path / "ob.db"), store, batch_size=500, high_water=1000, max_slowdown=10.0)
    pipe.start()
    try:
        assert pipe.ingest(_readings(10**12, 500)) == 1.0
        for k in range(1, 6):  # the first batch is stuck in the store; the backlog grows to 3,000
            pipe.ingest(_readings(10**12 + k * 500, 500))
        assert _wait(lambda: pipe.ingest([]) > 1.0)
        factor = pipe.ingest(_readings(10**12 + 3000, 10))
        assert 1.0 < factor <= 10.0
        bp = pipe.stats()["backpressure"]
        assert bp["factor"] > 1.0
        assert bp["slowed"] >= 1
        assert bp["high_water"] == 1000
        assert REGISTRY.get_sample_value("gateway_backpressure_factor") > 1.0
        assert pipe.stats()["dropped"] == 0, "slowed, never dropped"
        store.open.set()
        assert pipe.flush(30)
        assert _wait(lambda: pipe.ingest([]) == 1.0)
        assert store.count(0, 2**62)[0] == 3010
    finally:
        store.open.set()
        pipe.stop(flush=False, timeout=5)


def test_no_back_pressure_during_an_outage(parts):
    store, outbox, pipe = parts
    pipe.high_water = 1000
    pipe.start()
    store.down.set()
    for k in range(6):
        pipe.ingest(_readings(10**12 + k * 500, 500))
    # An outage is the outbox's job, not a reason to slow: with the backlog three times the mark, no slow-down.
    assert _wait(lambda: outbox.depth == 3000 and pipe.stats()["errors"] > 0 and pipe.ingest([]) == 1.0)
    assert pipe.stats()["backpressure"]["factor"] == 1.0
    store.down.clear()
    assert pipe.flush(30)
