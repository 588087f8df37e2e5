"""The pipeline: collectors -> in-memory hand-off -> durable outbox -> time-series store.

Readings travel as `ReadingBatch` columns all the way: a poll is one batch, the writer packs batches into outbox
rows, the drainer unpacks rows into one batch and the store writes its columns.

Two threads do the work. The writer group-commits what collectors hand in (every `commit_interval_s` or
`batch_size` readings) so that a burst of small polls costs one fsync-free WAL commit, not hundreds. The drainer
takes the oldest batch from the outbox, writes it to the store and removes it only after the store confirmed.
While the store is down the drainer backs off and the outbox grows; when it returns, the backlog drains in time
order while the writer keeps accepting new readings.

Back-pressure: while the store is up, a backlog that grows more than `high_water` readings above its lowest point
(since the store last came back) means collection outruns the store. `ingest` then answers with a slow-down
factor, the same for every device (fair), which the collectors apply to their poll interval (see
`collectors.base.stretched`): polling slows, counted and exported, instead of the outbox growing without end or
dropping readings. During an outage nothing slows: the outbox is there to hold it.

The drainer can run in a process of its own instead (`store_writer`, see gateway.store_writer): then collection
and storage do not share a GIL, and the store keeps its share of the CPU under any collection load. The outbox is
then shared by the two processes and its depth read from disk; the writer's counters come back over a pipe.

Stopping is bounded: `stop(timeout=...)` persists memory, delivers what the store takes in the time left, and leaves
the rest in the (durable) outbox for the next start, saying how many readings wait there.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge

from collectors.base import ReadingBatch
from collectors.reading import Reading
from gateway.outbox import Outbox

if TYPE_CHECKING:  # the store's modules load pandas: a collector process whose writer runs apart never needs them
    from gateway.store.base import TimeSeriesStore
    from gateway.store_writer import StoreWriterProcess

log = logging.getLogger(__name__)

READINGS_IN = Counter("gateway_readings_collected_total", "Readings handed to the pipeline")
READINGS_STORED = Counter("gateway_readings_stored_total", "Readings confirmed by the time-series store")
READINGS_DROPPED = Counter("gateway_readings_dropped_total", "Readings dropped by a bound", ["reason"])
STORE_ERRORS = Counter("gateway_store_write_errors_total", "Failed store writes (retried)")
OUTBOX_DEPTH = Gauge("gateway_outbox_depth", "Readings waiting in the outbox")
BACKPRESSURE = Gauge("gateway_backpressure_factor",
                     "How many times slower the collectors poll because the store falls behind (1: not slowed)")
# Back-pressure's push: while the backlog is past the mark and still growing, the factor grows by PUSH_STEP a second.
PUSH_EVERY_S = 1.0
PUSH_STEP = 1.25
SLOWED = Counter("gateway_backpressure_slowed_total", "Hand-overs answered with a slow-down (polls stretched)")


@dataclass
class PipelineStats:
    collected: int = 0
    stored: int = 0
    errors: int = 0
    rejected: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    last_error: str = ""
    slowed: int = 0  # hand-overs answered with a slow-down factor above 1


class Pipeline:
    def __init__(
        self,
        outbox: Outbox,
        store: TimeSeriesStore | None,
        batch_size: int = 5000,
        commit_interval_s: float = 0.05,
        memory_limit: int = 500_000,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 10.0,
        expire_every_s: float = 60.0,
        high_water: int = 200_000,
        max_slowdown: float = 10.0,
        store_writer: StoreWriterProcess | None = None,
    ) -> None:
        """`store` is written by a drainer thread here; or give `store_writer` (and no store) to drain apart."""
        if (store is None) == (store_writer is None):
            raise ValueError("a pipeline drains to a store or through a store writer process, exactly one")
        self.outbox = outbox
        self.store = store
        self.batch_size = batch_size
        self.commit_interval_s = commit_interval_s
        self.memory_limit = memory_limit
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.expire_every_s = expire_every_s
        self.high_water = high_water  # readings the backlog may grow (store up) before collection slows
        self.max_slowdown = max_slowdown
        self._pending: list[ReadingBatch] = []
        self._pending_n = 0  # readings in `_pending`
        self._in_flight = 0  # taken from memory by the writer, not yet committed to the outbox
        self._floor: int | None = None  # the backlog's lowest point since the store last came back
        self._factor = 1.0
        self._slowed_said = False  # the "falls behind" warning was logged and its "keeps up" not yet
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._drain_now = threading.Event()
        self._writer: threading.Thread | None = None
        self._drainer: threading.Thread | None = None
        self._stats = PipelineStats()
        self._stats_lock = threading.Lock()
        self._store_down_since: float | None = None
        self._stop_by = float("inf")  # when stopping: the deadline of the whole stop
        self.store_writer = store_writer
        self._relayed = {"stored": 0, "errors": 0}  # the writer process's counters already in our Prometheus ones
        self._writer_down_said = 0.0  # when a dead writer process was last restarted
        self._push = 1.0  # back-pressure's growing part (see _update_pressure)
        self._push_at = 0.0
        self._push_backlog = 0

    # -- public API --------------------------------------------------------------------------------
    def start(self, writer: bool = True) -> None:
        """Start the outbox writer (unless `writer` is False: a store writer process drains only) and the drain.

        With a store writer process, the process is started first and its failure to open the store raises
        `gateway.store_writer.StoreWriterError`.
        """
        self._stop.clear()
        with self._cond:
            self._floor = self._pending_n + self.outbox.depth  # a backlog left by the last run is no growth
        if self.store_writer is not None:
            self.store_writer.start()
        else:
            self._drainer = threading.Thread(target=self._drain_loop, name="outbox-drainer", daemon=True)
            self._drainer.start()
        if writer:
            self._writer = threading.Thread(target=self._write_loop, name="outbox-writer", daemon=True)
            self._writer.start()

    def ingest(self, readings: Sequence[Reading]) -> float:
        """Hand readings over (a list or, cheaper, a `ReadingBatch`); never blocks on disk or network.

        Safe to call from the event loop. Returns the slow-down factor the collectors should apply to their poll
        interval (1.0: keep pace; see the module docstring).
        """
        if not readings:
            return self._factor
        batch = ReadingBatch.of(readings)
        with self._cond:
            room = self.memory_limit - self._pending_n
            if room < len(batch):
                # The disk cannot keep up: refuse the excess now rather than grow without bound.
                self._drop("memory_full", len(batch) - max(room, 0))
                batch = batch[: max(room, 0)]
            if batch:
                self._pending.append(batch)
                self._pending_n += len(batch)
            with self._stats_lock:
                self._stats.collected += len(batch)
                factor = self._factor
                if factor > 1.0:
                    self._stats.slowed += 1
            READINGS_IN.inc(len(batch))
            if self._pending_n >= self.batch_size:
                self._cond.notify()
        if factor > 1.0:
            SLOWED.inc()
        return factor

    def flush(self, timeout: float = 30.0) -> bool:
        """Persist everything handed in so far and try to deliver the outbox; True when it is empty."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._cond.notify()
        while time.monotonic() < deadline:
            with self._cond:
                pending = self._pending_n + self._in_flight
            if pending == 0 and self.outbox.depth == 0:
                return True
            self._drain_now.set()
            time.sleep(0.02)
        return False

    def stop(self, flush: bool = True, timeout: float = 30.0) -> None:
        """Persist what is in memory, deliver what the store takes, then stop: all within `timeout` seconds.

        Whatever is not delivered stays in the outbox for the next start. The budget is shared: the flush gets
        what is left after a reserve for persisting memory and ending the threads (the store write in flight is
        waited for at most until the deadline, then left to the outbox).
        """
        deadline = time.monotonic() + timeout
        if flush:
            self.flush(max(0.0, timeout - min(5.0, timeout / 4)))
        self._stop_by = deadline
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._drain_now.set()
        if self.store_writer is not None:
            self.store_writer.stop(deadline)
        for t in (self._writer, self._drainer):
            if t is not None:
                t.join(timeout=max(0.1, deadline - time.monotonic()))
        self._persist_pending()
        if self._writer is not None and (left := self.outbox.depth):  # said by the process that collected them
            log.warning("stopped with %d readings left in the outbox %s: the store did not take them within the "
                        "%.0f s stop budget; they are delivered after the next start", left, self.outbox.path,
                        timeout)

    def stats(self) -> dict[str, object]:
        depth = self.outbox.depth
        with self._stats_lock:
            s = self._stats
            dropped = dict(self.outbox.drops)
            for k, v in s.dropped.items():
                dropped[k] = dropped.get(k, 0) + v
            out: dict[str, object] = {
                "collected": s.collected,
                "stored": s.stored,
                "errors": s.errors,
                "rejected": s.rejected,
                "dropped": sum(v for k, v in dropped.items() if k != "rejected"),
                "dropped_by_reason": dropped,
                "outbox_depth": depth,
                "store_down_s": round(time.monotonic() - self._store_down_since, 1)
                if self._store_down_since is not None else 0.0,
                "backpressure": {"factor": round(self._factor, 2), "slowed": s.slowed,
                                 "high_water": self.high_water},
                "last_error": s.last_error,
            }
        if self.store_writer is not None:
            w = self.store_writer.stats()
            out.update(stored=w["stored"], errors=w["errors"], rejected=w["rejected"],
                       store_down_s=round(w["store_down_s"], 1), last_error=w["last_error"] or s.last_error,
                       store_writer={"process": True, "pid": self.store_writer.pid,
                                     "restarts": self.store_writer.restarts})
        return out

    def store_writer_alive(self) -> bool:
        """Whether what delivers the outbox (the drainer thread or the store writer process) is running."""
        if self.store_writer is not None:
            return self.store_writer.alive()
        return self._drainer is not None and self._drainer.is_alive()

    def _store_down(self) -> bool:
        if self.store_writer is not None:
            return bool(self.store_writer.stats()["store_down_s"] > 0)
        return self._store_down_since is not None

    def _watch_store_writer(self) -> None:
        """Relay the writer process's counters to our Prometheus ones; start a new writer if it ended (5 s apart)."""
        w = self.store_writer
        if w is None:
            return
        st = w.stats()
        for key, metric in (("stored", READINGS_STORED), ("errors", STORE_ERRORS)):
            if st[key] > self._relayed[key]:
                metric.inc(st[key] - self._relayed[key])
                self._relayed[key] = st[key]
        if not w.alive() and not self._stop.is_set() and time.monotonic() - self._writer_down_said > 5.0:
            self._writer_down_said = float("inf")  # until this restart has ended
            log.error("the store writer process ended by itself; starting a new one (readings wait in the outbox)")
            # In a thread of its own: this one keeps moving readings from memory to the outbox meanwhile.
            threading.Thread(target=self._restart_store_writer, name="store-writer-restart", daemon=True).start()

    def _restart_store_writer(self) -> None:
        assert self.store_writer is not None
        try:
            self.store_writer.restart()
        except Exception:
            log.exception("the store writer process could not be started again; retrying in 5 s")
        self._writer_down_said = time.monotonic()

    # -- threads -----------------------------------------------------------------------------------
    def _persist_pending(self) -> None:
        with self._cond:
            batches, self._pending = self._pending, []
            self._in_flight, self._pending_n = self._pending_n, 0
        try:
            if batches:
                self.outbox.put(ReadingBatch.concat(batches))  # refusals under drop_newest are counted by the outbox
                self._drain_now.set()
                OUTBOX_DEPTH.set(self.outbox.depth)
        except BaseException:
            with self._cond:  # keep them in memory for the next attempt
                self._pending[:0] = batches
                self._pending_n += sum(len(b) for b in batches)
            raise
        finally:
            with self._cond:
                self._in_flight = 0
            self._update_pressure()

    def _update_pressure(self) -> None:
        """Recompute the slow-down factor from the backlog (memory and outbox) and the store's state."""
        depth = self.outbox.depth  # not under _cond: a shared outbox reads it from disk, and ingest waits on _cond
        with self._cond:
            backlog = self._pending_n + self._in_flight + depth
        down = self._store_down()
        with self._stats_lock:  # the writer and the drainer both call this
            if down or self._floor is None:
                self._floor = backlog  # an outage (or the start) is the outbox's job: measure growth from here
            else:
                self._floor = min(self._floor, backlog)
            excess = backlog - self._floor
            # Past the mark, the backlog's excess sets the factor (proportional) and, while it still grows, a push
            # that multiplies each PUSH_EVERY_S until it stops growing: the proportional part alone holds a store
            # at a third of the collection rate only with the backlog at three marks, and lets it grow on the way.
            # Down to half the mark, both let go (the episode ends).
            now = time.monotonic()
            if excess <= self.high_water / 2:
                self._push = 1.0
            elif now - self._push_at >= PUSH_EVERY_S:
                if excess > self.high_water and backlog > self._push_backlog:
                    self._push = min(self.max_slowdown, self._push * PUSH_STEP)
                self._push_at, self._push_backlog = now, backlog
            proportional = 1.0 if excess <= self.high_water else excess / self.high_water
            factor = min(self.max_slowdown, max(proportional, self._push))
            self._factor = factor
            BACKPRESSURE.set(factor)
            # Logged once per episode: it begins past the mark and ends only when the excess is down to half of it.
            begins = factor > 1.0 and not self._slowed_said
            ends = self._slowed_said and excess <= self.high_water / 2
            if begins or ends:
                self._slowed_said = begins
        if begins:
            log.warning("the store falls behind collection (%d readings more than at the backlog's low): "
                        "polling slower, %.2f times the configured intervals", excess, factor)
        elif ends:
            log.warning("the store keeps up again: polling at the configured intervals")

    def _write_loop(self) -> None:
        last_expire = time.monotonic()
        while not self._stop.is_set():
            with self._cond:
                if self._pending_n < self.batch_size:
                    self._cond.wait(self.commit_interval_s)
            try:
                self._persist_pending()
                self._watch_store_writer()
                if time.monotonic() - last_expire > self.expire_every_s:
                    self.outbox.expire()
                    last_expire = time.monotonic()
            except Exception:  # a full disk must not kill the thread: keep readings in memory and retry
                log.exception("outbox write failed; retrying")
                time.sleep(0.5)

    def _drain_loop(self) -> None:
        """Deliver the outbox oldest first, one batch in flight while the next is read and unpacked.

        The store's answer is awaited in the sender thread (the GIL is free while it waits), so reading the next
        batch overlaps the network round trip. Batches are acknowledged strictly in order, and only once the
        store confirmed them; after a failure the prefetched batch is simply read again.
        """
        delay = self.retry_initial_s
        sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        inflight: tuple[int, Future[None]] | None = None
        try:
            while not self._stop.is_set():
                batch = self.outbox.peek(self.batch_size, after_id=inflight[0] if inflight else 0)
                if inflight is not None:
                    last_id, future = inflight
                    inflight = None
                    try:
                        future.result()
                    except Exception as exc:  # noqa: BLE001 - classified in _failed
                        self._failed(exc, delay)
                        delay = min(delay * 2, self.retry_max_s)
                        continue  # the prefetched batch is read again after the backoff
                    self._recovered()
                    delay = self.retry_initial_s
                    self.outbox.ack(last_id)
                    OUTBOX_DEPTH.set(self.outbox.depth)
                    self._update_pressure()
                if batch is None:
                    self._drain_now.wait(0.05)
                    self._drain_now.clear()
                    continue
                inflight = (batch.last_id, sender.submit(self._deliver, batch.batch))
            if inflight is not None:  # stopping: let the write in flight finish (within the budget), ack it if done
                try:
                    inflight[1].result(timeout=max(0.1, self._stop_by - time.monotonic()))
                    self.outbox.ack(inflight[0])
                except Exception:  # noqa: BLE001,S110 - it stays in the outbox for the next start
                    pass
        finally:
            sender.shutdown(wait=True)  # the store must not be closed under a running write

    def _failed(self, exc: BaseException, delay: float) -> None:
        from gateway.store.base import StoreUnavailable

        self._note_error(exc)
        if isinstance(exc, StoreUnavailable):
            if self._store_down_since is None:
                self._store_down_since = time.monotonic()
                log.error("time-series store unavailable, buffering in the outbox: %s", exc)
        else:  # an unexpected store bug must not lose data or kill the drainer
            log.error("store write failed (%s: %s); retrying", type(exc).__name__, exc)
        self._stop.wait(delay)

    def _recovered(self) -> None:
        if self._store_down_since is not None:
            log.warning("time-series store is back after %.1f s; draining %d readings",
                        time.monotonic() - self._store_down_since, self.outbox.depth)
            self._store_down_since = None

    def _deliver(self, batch: ReadingBatch) -> None:
        """Write a batch; if the store refuses it, bisect so that only the offending readings are set aside."""
        from gateway.store.base import StoreRejected

        assert self.store is not None  # the drainer thread runs only with a store
        try:
            self.store.write(batch)
        except StoreRejected as exc:
            if len(batch) == 1:
                self.outbox.dead_letter(batch, str(exc))
                with self._stats_lock:
                    self._stats.rejected += 1
                log.error("store rejected a reading of %s/%s; kept in dead_letter: %s",
                          batch.device[0], batch.point[0], exc)
                return
            mid = len(batch) // 2
            self._deliver(batch[:mid])
            self._deliver(batch[mid:])
            return
        with self._stats_lock:
            self._stats.stored += len(batch)
        READINGS_STORED.inc(len(batch))

    def _note_error(self, exc: BaseException) -> None:
        with self._stats_lock:
            self._stats.errors += 1
            self._stats.last_error = f"{type(exc).__name__}: {exc}"
        STORE_ERRORS.inc()

    def _drop(self, reason: str, n: int) -> None:
        if n <= 0:
            return
        with self._stats_lock:
            self._stats.dropped[reason] = self._stats.dropped.get(reason, 0) + n
        READINGS_DROPPED.labels(reason=reason).inc(n)
        log.warning("pipeline dropped %d readings (%s)", n, reason)


__all__ = ["Pipeline", "PipelineStats"]
