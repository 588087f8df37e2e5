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
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge

from collectors.base import ReadingBatch
from collectors.reading import Reading
from gateway.outbox import Outbox
from gateway.store.base import StoreError, StoreRejected, StoreUnavailable, TimeSeriesStore

log = logging.getLogger(__name__)

READINGS_IN = Counter("gateway_readings_collected_total", "Readings handed to the pipeline")
READINGS_STORED = Counter("gateway_readings_stored_total", "Readings confirmed by the time-series store")
READINGS_DROPPED = Counter("gateway_readings_dropped_total", "Readings dropped by a bound", ["reason"])
STORE_ERRORS = Counter("gateway_store_write_errors_total", "Failed store writes (retried)")
OUTBOX_DEPTH = Gauge("gateway_outbox_depth", "Readings waiting in the outbox")
BACKPRESSURE = Gauge("gateway_backpressure_factor",
                     "How many times slower the collectors poll because the store falls behind (1: not slowed)")
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
        store: TimeSeriesStore,
        batch_size: int = 5000,
        commit_interval_s: float = 0.05,
        memory_limit: int = 500_000,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 10.0,
        expire_every_s: float = 60.0,
        high_water: int = 200_000,
        max_slowdown: float = 10.0,
    ) -> None:
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

    # -- public API --------------------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        with self._cond:
            self._floor = self._pending_n + self.outbox.depth  # a backlog left by the last run is no growth
        self._writer = threading.Thread(target=self._write_loop, name="outbox-writer", daemon=True)
        self._drainer = threading.Thread(target=self._drain_loop, name="outbox-drainer", daemon=True)
        self._writer.start()
        self._drainer.start()

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
        for t in (self._writer, self._drainer):
            if t is not None:
                t.join(timeout=max(0.1, deadline - time.monotonic()))
        self._persist_pending()

    def stats(self) -> dict[str, object]:
        with self._stats_lock:
            s = self._stats
            dropped = dict(self.outbox.drops)
            for k, v in s.dropped.items():
                dropped[k] = dropped.get(k, 0) + v
            return {
                "collected": s.collected,
                "stored": s.stored,
                "errors": s.errors,
                "rejected": s.rejected,
                "dropped": sum(v for k, v in dropped.items() if k != "rejected"),
                "dropped_by_reason": dropped,
                "outbox_depth": self.outbox.depth,
                "store_down_s": round(time.monotonic() - self._store_down_since, 1)
                if self._store_down_since is not None else 0.0,
                "backpressure": {"factor": round(self._factor, 2), "slowed": s.slowed,
                                 "high_water": self.high_water},
                "last_error": s.last_error,
            }

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
        with self._cond:
            backlog = self._pending_n + self._in_flight + self.outbox.depth
        with self._stats_lock:  # the writer and the drainer both call this
            if self._store_down_since is not None or self._floor is None:
                self._floor = backlog  # an outage (or the start) is the outbox's job: measure growth from here
            else:
                self._floor = min(self._floor, backlog)
            excess = backlog - self._floor
            factor = 1.0 if excess <= self.high_water else min(self.max_slowdown, excess / self.high_water)
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


__all__ = ["Pipeline", "PipelineStats", "StoreError"]
