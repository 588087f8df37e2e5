"""Back-pressure against a store that is up but slower than collection: the slow-down grows until the backlog stops.

The proportional part alone (factor = excess / high-water mark) lets the outbox grow to several marks before it
slows collection enough (issue 16: 580,000 readings and growing after a minute at 200 devices x 0.1 s).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from collectors.reading import Reading
from gateway.outbox import Outbox
from gateway.pipeline import Pipeline
from gateway.store.sqlite import SqliteStore
from tests.gateway.test_pipeline import _readings, _wait


class GatedStore(SqliteStore):
    """A real SqliteStore whose writes wait for `open`."""

    def __init__(self, path):
        super().__init__(path)
        self.open = threading.Event()

    def write(self, readings: Sequence[Reading]) -> None:
        self.open.wait()
        super().write(readings)


def test_the_slow_down_outgrows_the_backlog_while_it_grows_and_lets_go_once_the_store_catches_up(tmp_path):
    store = GatedStore(tmp_path / "ts.db")
    pipe = Pipeline(Outbox(tmp_path / "ob.db"), store, batch_size=500, high_water=1000, max_slowdown=10.0)
    pipe.start()
    sent = [0]

    def trickle() -> float:
        """Hand over one more reading (collection goes on, slowly); the answer is the factor."""
        factor = pipe.ingest(_readings(10**12 + sent[0], 1))
        sent[0] += 1
        return factor

    try:
        pipe.ingest(_readings(10**12, 1500))  # the first batch is stuck in the store: a backlog past the mark
        sent[0] = 1500
        assert _wait(lambda: pipe.stats()["outbox_depth"] == 1500, 30.0)  # all of it on disk, none in memory
        # The factor ends well above what the excess alone asks (backlog / mark; the few readings of the last 50 ms
        # in memory counted too), because the backlog kept growing.
        assert _wait(lambda: trickle() > 1.2 * (pipe.stats()["outbox_depth"] + 10) / 1000, 30.0)
        assert pipe.stats()["dropped"] == 0, "slowed, never dropped"
        store.open.set()
        assert pipe.flush(30)
        assert _wait(lambda: pipe.ingest([]) == 1.0, 30.0)  # caught up: polling at the configured intervals at once
        assert store.count(0, 2**62)[0] == sent[0]
    finally:
        store.open.set()
        pipe.stop(flush=False, timeout=5)
