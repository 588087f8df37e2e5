"""One scheduler per deployment: the lease a scheduler holds in the shared PostgreSQL registry while it runs jobs.

`gateway.run_scheduler = true` on two processes of a fleet (by mistake, or on purpose as a standby) would run every
job twice: two tiering runs, two report e-mails. The lease is a PostgreSQL session advisory lock taken on a connection
the scheduler keeps open; the process holding it runs the jobs, any other skips them ("standby") and tries again at
each of its job times. When the holder dies, PostgreSQL ends its session, the lock is free, and a standby takes over at
its next job time (demand_projection ticks every 2 s, so within seconds). A lost connection (database restart) loses
the lease too: the holder stops running jobs until it takes the lease again.

An SQLite registry lives on one machine, where the data folder's lock already keeps one gateway per folder; it needs
no lease (`lease_for` answers None).
"""

from __future__ import annotations

import logging
import threading

from prometheus_client import Gauge
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

LEASE_KEY = 7406320  # beside the migrations' 7406319 (crm_bridge.registry)
LEASE_HELD = Gauge("gateway_scheduler_lease_held", "1 while this process holds the scheduler lease (runs the jobs)")


class RegistryLease:
    """The scheduler lease on a PostgreSQL registry. `held()` takes it when it is free and says whether we hold it."""

    def __init__(self, engine: Engine, key: int = LEASE_KEY) -> None:
        self.engine = engine
        self.key = key
        self._conn: Connection | None = None
        self._lock = threading.Lock()  # APScheduler runs jobs on a thread pool

    def held(self) -> bool:
        with self._lock:
            if self._conn is not None and self._alive(self._conn):
                return True
            self._conn = self._take()
            LEASE_HELD.set(1 if self._conn is not None else 0)
            return self._conn is not None

    def release(self) -> None:
        """Give the lease up (the scheduler's shutdown): a standby takes it at its next job time."""
        with self._lock:
            if self._conn is not None:
                _close(self._conn)
                self._conn = None
                LEASE_HELD.set(0)
                log.info("scheduler lease released")

    def _alive(self, conn: Connection) -> bool:
        """Whether this session still holds the lock (a connection that reconnected silently holds nothing)."""
        try:
            mine = bool(conn.execute(_HOLDS, {"k": self.key}).scalar())
            conn.commit()
        except DBAPIError as exc:
            log.warning("scheduler lease lost with the registry connection: %s", exc)
            mine = False
        if not mine:
            _close(conn)
            self._conn = None
            LEASE_HELD.set(0)
        return mine

    def _take(self) -> Connection | None:
        try:
            conn = self.engine.connect()
        except DBAPIError as exc:
            log.warning("scheduler lease: cannot reach the registry: %s", exc)
            return None
        try:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
            conn.commit()
        except DBAPIError as exc:
            log.warning("scheduler lease: cannot ask the registry: %s", exc)
            conn.invalidate()
            got = False
        if not got:
            conn.close()
            return None
        log.info("scheduler lease taken: this process runs the jobs")
        return conn


# A bigint advisory key shows in pg_locks as classid (high 32 bits), objid (low 32 bits), objsubid 1.
_HOLDS = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 0 AND objid = :k "
              "AND objsubid = 1 AND granted AND pid = pg_backend_pid()")


def _close(conn: Connection) -> None:
    """End the session itself (a pooled connection closed normally would stay open, lock and all)."""
    try:
        conn.invalidate()
    finally:
        conn.close()


def lease_for(engine: Engine) -> RegistryLease | None:
    """The lease for a registry on `engine`: PostgreSQL only (see the module docstring)."""
    return RegistryLease(engine) if engine.dialect.name == "postgresql" else None
