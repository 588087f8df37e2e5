"""The durable on-disk outbox: every accepted reading waits here until the time-series store confirms it.

SQLite in WAL mode. Rows leave only through `ack()` after a confirmed write. The outbox is bounded by row count
and by age; what the bound forces out is counted per reason, never dropped silently.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from collectors.reading import Quality, Reading

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL, point TEXT NOT NULL, value REAL, unit TEXT NOT NULL, quality TEXT NOT NULL,
    source_ts INTEGER NOT NULL, gateway_ts INTEGER NOT NULL,
    customer TEXT NOT NULL, site TEXT NOT NULL, meter TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL, point TEXT NOT NULL, value REAL, unit TEXT NOT NULL, quality TEXT NOT NULL,
    source_ts INTEGER NOT NULL, gateway_ts INTEGER NOT NULL,
    customer TEXT NOT NULL, site TEXT NOT NULL, meter TEXT NOT NULL,
    reason TEXT NOT NULL, at_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
_COLS = "device, point, value, unit, quality, source_ts, gateway_ts, customer, site, meter"


class DropPolicy(StrEnum):
    DROP_OLDEST = "drop_oldest"  # keep the newest data when full (a live dashboard wants now)
    DROP_NEWEST = "drop_newest"  # refuse new data when full (keep the history intact)


@dataclass(frozen=True, slots=True)
class OutboxBatch:
    last_id: int
    readings: list[Reading]


def _row(r: Reading) -> tuple[object, ...]:
    return (r.device, r.point, r.value, r.unit, str(r.quality), r.source_ts, r.gateway_ts, r.customer, r.site,
            r.meter)


class Outbox:
    """Thread-safe FIFO on disk. `put` is called by one writer thread, `peek`/`ack` by one drainer."""

    def __init__(
        self,
        path: Path | str,
        max_rows: int = 5_000_000,
        max_age_s: float = 7 * 24 * 3600,
        policy: DropPolicy = DropPolicy.DROP_OLDEST,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        self.policy = DropPolicy(policy)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL survives a process crash (kill -9); only an OS crash can lose the last commits.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT count(*), coalesce(min(id), 0), coalesce(max(id), 0) FROM outbox").fetchone()
        self._depth = int(row[0])
        self.drops: dict[str, int] = {
            name: int(v) for name, v in self._db.execute("SELECT name, value FROM counters").fetchall()
        }

    # -- writer side -------------------------------------------------------------------------------
    def put(self, readings: Sequence[Reading]) -> int:
        """Persist readings; returns how many were accepted (fewer only under DROP_NEWEST when full)."""
        if not readings:
            return 0
        with self._lock:
            rows = [_row(r) for r in readings]
            room = self.max_rows - self._depth
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if len(rows) > room:
                    if self.policy is DropPolicy.DROP_NEWEST:
                        refused = len(rows) - max(room, 0)
                        rows = rows[: max(room, 0)]
                        self._count("full_drop_newest", refused)
                    else:
                        excess = len(rows) - room
                        evict = min(excess, self._depth)
                        if evict:
                            self._db.execute(
                                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)", (evict,)
                            )
                            self._depth -= evict
                            self._count("full_drop_oldest", evict)
                        if len(rows) > self.max_rows:  # a single batch larger than the whole outbox
                            self._count("full_drop_oldest", len(rows) - self.max_rows)
                            rows = rows[-self.max_rows :]
                if rows:
                    self._db.executemany(f"INSERT INTO outbox ({_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._depth += len(rows)
            return len(rows)

    def expire(self, now_ns: int | None = None) -> int:
        """Drop rows older than max_age_s (by gateway time); counted as `expired`."""
        cutoff = (now_ns or time.time_ns()) - int(self.max_age_s * 1e9)
        with self._lock:
            cur = self._db.execute("DELETE FROM outbox WHERE gateway_ts < ?", (cutoff,))
            n = cur.rowcount or 0
            if n:
                self._depth -= n
                self._count("expired", n)
                log.warning("outbox %s: %d readings older than %.0f s expired", self.path, n, self.max_age_s)
            return n

    # -- drainer side ------------------------------------------------------------------------------
    def peek(self, limit: int) -> OutboxBatch | None:
        """The oldest `limit` readings, in arrival (time) order, without removing them."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, {_COLS} FROM outbox ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        if not rows:
            return None
        readings = [
            Reading(d, p, v, u, Quality(q), sts, gts, c, s, m) for _, d, p, v, u, q, sts, gts, c, s, m in rows
        ]
        return OutboxBatch(last_id=int(rows[-1][0]), readings=readings)

    def ack(self, last_id: int) -> None:
        """The store confirmed everything up to `last_id`: remove it."""
        with self._lock:
            cur = self._db.execute("DELETE FROM outbox WHERE id <= ?", (last_id,))
            self._depth -= cur.rowcount or 0

    def dead_letter(self, readings: Sequence[Reading], reason: str) -> None:
        """Keep readings the store refused outright, with the reason, instead of losing them."""
        now = time.time_ns()
        with self._lock:
            self._db.executemany(
                f"INSERT INTO dead_letter ({_COLS}, reason, at_ns) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [(*_row(r), reason[:2000], now) for r in readings],
            )
            self._count("rejected", len(readings))

    def dead_letters(self) -> list[tuple[Reading, str]]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLS}, reason FROM dead_letter ORDER BY id").fetchall()
        return [(Reading(d, p, v, u, Quality(q), sts, gts, c, s, m), why) for d, p, v, u, q, sts, gts, c, s, m, why
                in rows]

    @property
    def depth(self) -> int:
        return self._depth

    def oldest_age_s(self, now_ns: int | None = None) -> float:
        with self._lock:
            row = self._db.execute("SELECT gateway_ts FROM outbox ORDER BY id LIMIT 1").fetchone()
        if row is None:
            return 0.0
        return max(0.0, ((now_ns or time.time_ns()) - int(row[0])) / 1e9)

    def _count(self, name: str, n: int) -> None:
        self.drops[name] = self.drops.get(name, 0) + n
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
            (name, n, n),
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()
