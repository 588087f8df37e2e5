"""Two schedulers on one PostgreSQL registry: only the lease holder runs jobs; the standby takes over when it stops."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from crm_bridge.registry import make_engine
from gateway.scheduler import JOB_RUNS, JobSpec, Scheduler
from gateway.scheduler_lease import RegistryLease, lease_for
from tests.servers.postgres import PostgresServer


def _until(cond: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _standby(job: str) -> float:
    return JOB_RUNS.labels(job=job, outcome="standby")._value.get()


def test_only_the_lease_holder_runs_jobs_and_a_standby_takes_over(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database(f"lease_{uuid.uuid4().hex[:12]}")
    engine_a, engine_b = make_engine(url), make_engine(url)
    runs: list[str] = []
    job_b = f"tick_b_{uuid.uuid4().hex[:6]}"
    a = Scheduler(True, lease=RegistryLease(engine_a))
    b = Scheduler(True, lease=RegistryLease(engine_b))
    a.register(JobSpec("tick_a", lambda: runs.append("a"), "interval", {"seconds": 0.1}))
    b.register(JobSpec(job_b, lambda: runs.append("b"), "interval", {"seconds": 0.1}))
    try:
        a.start()
        _until(lambda: runs.count("a") >= 3, "the first scheduler to run its job")
        b.start()
        before = _standby(job_b)
        _until(lambda: _standby(job_b) >= before + 3, "the second scheduler to pass three job times as a standby")
        assert "b" not in runs  # the lease is held by the first
        a.shutdown()  # gives the lease up
        ran_a = runs.count("a")
        _until(lambda: "b" in runs, "the standby to take the lease over and run")
        assert runs.count("a") == ran_a
    finally:
        a.shutdown()
        b.shutdown()
        engine_a.dispose()
        engine_b.dispose()


def test_a_lost_connection_loses_the_lease_and_takes_it_again_when_free(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database(f"lease_{uuid.uuid4().hex[:12]}")
    engine_a, engine_b = make_engine(url), make_engine(url)
    try:
        first, second = RegistryLease(engine_a), RegistryLease(engine_b)
        assert first.held()
        assert not second.held()
        assert first._conn is not None
        first._conn.invalidate()  # the connection breaks (a database restart): its session and lock are gone
        assert second.held()  # the lock was freed with the session
        assert not first.held()  # and the first does not believe it still holds it
        second.release()
        assert first.held()
    finally:
        engine_a.dispose()
        engine_b.dispose()


def test_an_sqlite_registry_needs_no_lease(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    try:
        assert lease_for(engine) is None
    finally:
        engine.dispose()
