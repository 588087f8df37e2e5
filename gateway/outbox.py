"""The durable on-disk outbox: every accepted reading waits here until the time-series store confirms it.

SQLite in WAL mode. Readings are kept in packed batches, one row per up to `chunk` readings of a hand-over, which
makes the outbox cost a few SQLite row operations per thousand readings instead of three per reading. A row's body
is columnar (msgpack of a format marker and the ten columns of a `ReadingBatch`): packing and unpacking it is a
handful of C calls, and the drainer hands the columns to the store without making a Python object per reading.
Rows written by earlier versions (one msgpack tuple per reading) are still read. Rows leave only through `ack()`
after a confirmed write. The outbox is bounded by reading count and by age; what a bound forces out is counted per
reason, never dropped silently.

Values keep their type: msgpack carries an int (int64 or uint64, a 64-bit register read exactly) and a float64 as
they are, so an integer never passes through a float and a float 3.0 comes back a float. A wider int (which no
register holds, but which must not jam the queue) goes as a msgpack extension holding its decimal digits; the store
refuses it, and the dead letter keeps it exactly.
"""

from __future__ import annotations

import logging
import numbers
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import msgpack

from collectors.base import ReadingBatch
from collectors.reading import Quality, Reading

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox_batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    n INTEGER NOT NULL,
    first_source_ts INTEGER NOT NULL,
    newest_gateway_ts INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    body BLOB NOT NULL,
    reason TEXT NOT NULL,
    at_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

_QUALITIES = {q.value: q for q in Quality}
_WIDE_INT = 1  # msgpack extension type: an integer beyond 64 bits, as its decimal digits
_COLUMNAR = 2  # first element of a columnar body; a body of earlier versions starts with a reading's tuple


def _pack_other(obj: object) -> object:
    """What msgpack cannot pack itself: a numpy integer (as an int) and an int beyond 64 bits (an extension)."""
    if isinstance(obj, numbers.Integral) and not isinstance(obj, bool):
        n = int(obj)
        if -(2**63) <= n < 2**64:
            return n
        return msgpack.ExtType(_WIDE_INT, str(n).encode())
    raise TypeError(f"an outbox reading cannot hold a {type(obj).__name__}: {obj!r}")


def _unpack_ext(code: int, data: bytes) -> object:
    if code == _WIDE_INT:
        return int(data.decode())
    return msgpack.ExtType(code, data)


class DropPolicy(StrEnum):
    DROP_OLDEST = "drop_oldest"  # keep the newest data when full (a live dashboard wants now)
    DROP_NEWEST = "drop_newest"  # refuse new data when full (keep the history intact)


@dataclass(frozen=True, slots=True)
class OutboxBatch:
    last_id: int
    batch: ReadingBatch

    @property
    def readings(self) -> list[Reading]:
        return self.batch.readings()


def _same(col: list[Any]) -> list[Any] | tuple[Any]:
    """A column whose entries are all one value as a 1-tuple of it (packed once, not once per reading)."""
    return (col[0],) if col and col.count(col[0]) == len(col) else col


def _pack(readings: Sequence[Reading]) -> bytes:
    b = ReadingBatch.of(readings)
    # Text columns (device, point, unit, quality and the tags) repeat within a poll: a column of one value is
    # packed as [value]; unpacking it is then one list repetition instead of one string object per reading.
    cols = [_same(c) if i not in (2, 5, 6) else c for i, c in enumerate(b.columns())]
    body: bytes = msgpack.packb((_COLUMNAR, len(b), *cols), use_bin_type=True, default=_pack_other)
    return body


def _unpack(body: bytes) -> ReadingBatch:
    top = msgpack.unpackb(body, raw=False, ext_hook=_unpack_ext)
    if top and top[0].__class__ is int:
        n = top[1]
        cols = [c * n if len(c) == 1 and n != 1 else c for c in top[2:]]
        cols[4] = [_QUALITIES[q] for q in cols[4]]
        return ReadingBatch(*cols)
    # A row of an earlier version: one (device, point, value, unit, quality, source_ts, ...) tuple per reading.
    b = ReadingBatch(*(list(col) for col in zip(*top, strict=True))) if top else ReadingBatch.empty()
    b.quality = [_QUALITIES[q] for q in b.quality]
    return b


class Outbox:
    """Thread-safe FIFO on disk. `put` is called by one writer thread, `peek`/`ack` by one drainer."""

    def __init__(
        self,
        path: Path | str,
        max_rows: int = 5_000_000,
        max_age_s: float = 7 * 24 * 3600,
        policy: DropPolicy = DropPolicy.DROP_OLDEST,
        shared: bool = False,
    ) -> None:
        self.path = Path(path)
        # Shared: another process (the store writer, gateway.store_writer) acks, or writes, this same file, so the
        # depth is read from disk where it matters (bounds, back-pressure) instead of kept in this process only.
        self.shared = shared
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_rows = max_rows  # readings, not batches
        self.max_age_s = max_age_s
        self.policy = DropPolicy(policy)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL survives a process crash (kill -9); only an OS crash can lose the last commits.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._depth = self._depth_on_disk()
        self.drops: dict[str, int] = {
            name: int(v) for name, v in self._db.execute("SELECT name, value FROM counters").fetchall()
        }

    # -- writer side -------------------------------------------------------------------------------
    def put(self, readings: Sequence[Reading], chunk: int = 1000) -> int:
        """Persist readings (a list or a `ReadingBatch`); returns how many were accepted.

        Fewer only under DROP_NEWEST when full. One transaction, one row per `chunk` readings.
        """
        if not readings:
            return 0
        b = ReadingBatch.of(readings)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if self.shared:
                    self._depth = self._depth_on_disk()
                room = self.max_rows - self._depth
                if len(b) > room:
                    if self.policy is DropPolicy.DROP_NEWEST:
                        keep = max(room, 0)
                        self._count("full_drop_newest", len(b) - keep)
                        b = b[:keep]
                    else:
                        if len(b) > self.max_rows:  # one hand-over larger than the whole outbox
                            self._count("full_drop_oldest", len(b) - self.max_rows)
                            b = b[-self.max_rows :]
                        self._evict_oldest(len(b) - (self.max_rows - self._depth))
                rows = []
                for i in range(0, len(b), chunk):
                    part = b[i : i + chunk]
                    rows.append((len(part), min(part.source_ts), max(part.gateway_ts), _pack(part)))
                self._db.executemany(
                    "INSERT INTO outbox_batches (n, first_source_ts, newest_gateway_ts, body) VALUES (?,?,?,?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._depth += len(b)
            return len(b)

    def _evict_oldest(self, need: int) -> None:
        """Make room for `need` readings by removing the oldest; a partly needed batch is trimmed, not lost whole."""
        while need > 0:
            row = self._db.execute("SELECT id, n, body FROM outbox_batches ORDER BY id LIMIT 1").fetchone()
            if row is None:
                return
            bid, n, body = row
            if n <= need:
                self._db.execute("DELETE FROM outbox_batches WHERE id = ?", (bid,))
                dropped = n
            else:
                rest = _unpack(body)[need:]
                self._db.execute(
                    "UPDATE outbox_batches SET n = ?, first_source_ts = ?, body = ? WHERE id = ?",
                    (len(rest), min(rest.source_ts), _pack(rest), bid),
                )
                dropped = need
            self._depth -= dropped
            need -= dropped
            self._count("full_drop_oldest", dropped)

    def expire(self, now_ns: int | None = None) -> int:
        """Drop readings older than max_age_s (by gateway time); counted as `expired`."""
        cutoff = (now_ns or time.time_ns()) - int(self.max_age_s * 1e9)
        n = 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = self._db.execute(
                    "SELECT id, n, body FROM outbox_batches WHERE newest_gateway_ts < ? OR "
                    "id = (SELECT min(id) FROM outbox_batches)", (cutoff,)
                ).fetchall()
                for bid, count, body in rows:
                    batch = _unpack(body)
                    keep = batch.take([i for i, g in enumerate(batch.gateway_ts) if g >= cutoff])
                    if len(keep) == count:
                        continue
                    if keep:
                        self._db.execute("UPDATE outbox_batches SET n = ?, body = ? WHERE id = ?",
                                         (len(keep), _pack(keep), bid))
                    else:
                        self._db.execute("DELETE FROM outbox_batches WHERE id = ?", (bid,))
                    n += count - len(keep)
                if n:
                    self._count("expired", n)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._depth -= n
        if n:
            log.warning("outbox %s: %d readings older than %.0f s expired", self.path, n, self.max_age_s)
        return n

    # -- drainer side ------------------------------------------------------------------------------
    def peek(self, limit: int, after_id: int = 0) -> OutboxBatch | None:
        """The oldest stored batches after `after_id`, whole, up to `limit` readings, without removing them.

        At least one batch is returned whatever its size, so a batch larger than `limit` still moves.
        """
        with self._lock:
            sizes = self._db.execute("SELECT id, n FROM outbox_batches WHERE id > ? ORDER BY id LIMIT ?",
                                     (after_id, max(1, limit)))
            last_id, total = 0, 0
            for bid, n in sizes:
                if total and total + n > limit:
                    break
                last_id, total = int(bid), total + int(n)
            if not last_id:
                return None
            bodies = self._db.execute("SELECT body FROM outbox_batches WHERE id > ? AND id <= ? ORDER BY id",
                                      (after_id, last_id)).fetchall()
        return OutboxBatch(last_id=last_id, batch=ReadingBatch.concat(_unpack(body) for (body,) in bodies))

    def ack(self, last_id: int) -> None:
        """The store confirmed everything up to `last_id`: remove it."""
        with self._lock:
            n = self._db.execute("SELECT coalesce(sum(n), 0) FROM outbox_batches WHERE id <= ?",
                                 (last_id,)).fetchone()[0]
            self._db.execute("DELETE FROM outbox_batches WHERE id <= ?", (last_id,))
            self._depth -= int(n)

    def dead_letter(self, readings: Sequence[Reading], reason: str) -> None:
        """Keep readings the store refused outright, with the reason, instead of losing them."""
        with self._lock:
            self._db.execute("INSERT INTO dead_letter (body, reason, at_ns) VALUES (?,?,?)",
                             (_pack(readings), reason[:2000], time.time_ns()))
            self._count("rejected", len(readings))

    def dead_letters(self) -> list[tuple[Reading, str]]:
        with self._lock:
            rows = self._db.execute("SELECT body, reason FROM dead_letter ORDER BY id").fetchall()
        return [(r, why) for body, why in rows for r in _unpack(body)]

    def requeue_dead_letters(self) -> int:
        """Put every dead-lettered reading back at the end of the queue; returns how many."""
        with self._lock:
            rows = self._db.execute("SELECT id, body FROM dead_letter ORDER BY id").fetchall()
        readings = ReadingBatch.concat(_unpack(body) for _, body in rows)
        if not readings:
            return 0
        self.put(readings)
        with self._lock:
            self._db.execute("DELETE FROM dead_letter WHERE id <= ?", (rows[-1][0],))
        return len(readings)

    @property
    def depth(self) -> int:
        """Readings waiting; in a shared outbox read from disk (the other process's acks count at once)."""
        if self.shared:
            with self._lock:
                if not self._closed:  # closed: the depth at the close
                    self._depth = self._depth_on_disk()
        return self._depth

    def _depth_on_disk(self) -> int:
        return int(self._db.execute("SELECT coalesce(sum(n), 0) FROM outbox_batches").fetchone()[0])

    def oldest_age_s(self, now_ns: int | None = None) -> float:
        with self._lock:
            row = self._db.execute("SELECT body FROM outbox_batches ORDER BY id LIMIT 1").fetchone()
        if row is None:
            return 0.0
        oldest = min(_unpack(row[0]).gateway_ts)
        return max(0.0, ((now_ns or time.time_ns()) - oldest) / 1e9)

    def _count(self, name: str, n: int) -> None:
        self.drops[name] = self.drops.get(name, 0) + n
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
            (name, n, n),
        )

    def close(self) -> None:
        with self._lock:
            if self.shared and not self._closed:
                self._depth = self._depth_on_disk()
            self._closed = True
            self._db.close()
