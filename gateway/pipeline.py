"""The pipeline: collectors -> in-memory hand-off -> durable outbox -> time-series store.

Two threads do the work. The writer group-commits what collectors hand in (every `commit_interval_s` or
`batch_size` readings) so that a burst of small polls costs one fsync-free WAL commit, not hundreds. The drainer
takes the oldest batch from the outbox, writes it to the store and removes it only after the store confirmed.
While the store is down the drainer backs off and the outbox grows; when it returns, the backlog drains in time
order while the writer keeps accepting new readings.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge

from collectors.reading import Reading
from gateway.outbox import Outbox
from gateway.store.base import StoreError, StoreRejected, StoreUnavailable, TimeSeriesStore

log = logging.getLogger(__name__)

READINGS_IN = Counter("gateway_readings_collected_total", "Readings handed to the pipeline")
READINGS_STORED = Counter("gateway_readings_stored_total", "Readings confirmed by the time-series store")
READINGS_DROPPED = Counter("gateway_readings_dropped_total", "Readings dropped by a bound", ["reason"])
STORE_ERRORS = Counter("gateway_store_write_errors_total", "Failed store writes (retried)")
OUTBOX_DEPTH = Gauge("gateway_outbox_depth", "Readings waiting in the outbox")


@dataclass
class PipelineStats:
    collected: int = 0
    stored: int = 0
    errors: int = 0
    rejected: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    last_error: str = ""


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
    ) -> None:
        self.outbox = outbox
        self.store = store
        self.batch_size = batch_size
        self.commit_interval_s = commit_interval_s
        self.memory_limit = memory_limit
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.expire_every_s = expire_every_s
        self._pending: list[Reading] = []
        self._in_flight = 0  # taken from memory by the writer, not yet committed to the outbox
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._drain_now = threading.Event()
        self._writer: threading.Thread | None = None
        self._drainer: threading.Thread | None = None
        self._stats = PipelineStats()
        self._stats_lock = threading.Lock()
        self._store_down_since: float | None = None

    # -- public API --------------------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._writer = threading.Thread(target=self._write_loop, name="outbox-writer", daemon=True)
        self._drainer = threading.Thread(target=self._drain_loop, name="outbox-drainer", daemon=True)
        self._writer.start()
        self._drainer.start()

    def ingest(self, readings: Sequence[Reading]) -> None:
        """Hand readings over; never blocks on disk or network (safe to call from the event loop)."""
        if not readings:
            return
        with self._cond:
            room = self.memory_limit - len(self._pending)
            if room < len(readings):
                # The disk cannot keep up: refuse the excess now rather than grow without bound.
                self._drop("memory_full", len(readings) - max(room, 0))
                readings = readings[: max(room, 0)]
            self._pending.extend(readings)
            with self._stats_lock:
                self._stats.collected += len(readings)
            READINGS_IN.inc(len(readings))
            if len(self._pending) >= self.batch_size:
                self._cond.notify()

    def flush(self, timeout: float = 30.0) -> bool:
        """Persist everything handed in so far and try to deliver the outbox; True when it is empty."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._cond.notify()
        while time.monotonic() < deadline:
            with self._cond:
                pending = len(self._pending) + self._in_flight
            if pending == 0 and self.outbox.depth == 0:
                return True
            self._drain_now.set()
            time.sleep(0.02)
        return False

    def stop(self, flush: bool = True, timeout: float = 30.0) -> None:
        """Persist what is in memory, deliver what the store takes within `timeout`, then stop.

        Whatever is not delivered stays in the outbox for the next start.
        """
        if flush:
            self.flush(timeout)
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._drain_now.set()
        for t in (self._writer, self._drainer):
            if t is not None:
                t.join(timeout=timeout)
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
                "last_error": s.last_error,
            }

    # -- threads -----------------------------------------------------------------------------------
    def _persist_pending(self) -> None:
        with self._cond:
            batch, self._pending = self._pending, []
            self._in_flight = len(batch)
        try:
            if batch:
                self.outbox.put(batch)  # refusals under drop_newest are counted by the outbox
                self._drain_now.set()
                OUTBOX_DEPTH.set(self.outbox.depth)
        except BaseException:
            with self._cond:  # keep them in memory for the next attempt
                self._pending[:0] = batch
            raise
        finally:
            with self._cond:
                self._in_flight = 0

    def _write_loop(self) -> None:
        last_expire = time.monotonic()
        while not self._stop.is_set():
            with self._cond:
                if len(self._pending) < self.batch_size:
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
                if batch is None:
                    self._drain_now.wait(0.05)
                    self._drain_now.clear()
                    continue
                inflight = (batch.last_id, sender.submit(self._deliver, batch.readings))
            if inflight is not None:  # stopping: let the write in flight finish, ack it if it succeeded
                try:
                    inflight[1].result(timeout=30)
                    self.outbox.ack(inflight[0])
                except Exception:  # noqa: BLE001,S110 - it stays in the outbox for the next start
                    pass
        finally:
            sender.shutdown(wait=True)

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

    def _deliver(self, readings: list[Reading]) -> None:
        """Write a batch; if the store refuses it, bisect so that only the offending readings are set aside."""
        try:
            self.store.write(readings)
        except StoreRejected as exc:
            if len(readings) == 1:
                self.outbox.dead_letter(readings, str(exc))
                with self._stats_lock:
                    self._stats.rejected += 1
                log.error("store rejected a reading of %s/%s; kept in dead_letter: %s",
                          readings[0].device, readings[0].point, exc)
                return
            mid = len(readings) // 2
            self._deliver(readings[:mid])
            self._deliver(readings[mid:])
            return
        with self._stats_lock:
            self._stats.stored += len(readings)
        READINGS_STORED.inc(len(readings))

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
