"""The scheduler: registered jobs run only in the process that has the scheduler role."""

from __future__ import annotations

import json
import threading
import time

import pytest

from gateway.scheduler import JobSpec, Scheduler


def _counting_job(name: str, counter: list[int], done: threading.Event) -> JobSpec:
    def run() -> None:
        counter.append(1)
        done.set()

    return JobSpec(name=name, func=run, trigger="interval", trigger_args={"seconds": 0.1})


def test_scheduler_role_runs_registered_jobs():
    runs: list[int] = []
    done = threading.Event()
    s = Scheduler(enabled=True)
    s.register(_counting_job("tick", runs, done))
    s.start()
    try:
        assert done.wait(10)
        assert s.running
    finally:
        s.shutdown()
    assert runs
    assert s.last_run["tick"][1] == "ok"


def test_process_without_the_role_never_runs_jobs():
    runs: list[int] = []
    done = threading.Event()
    s = Scheduler(enabled=False)
    s.register(_counting_job("tick", runs, done))
    s.start()
    time.sleep(0.5)
    assert not s.running
    assert runs == []
    assert [j.name for j in s.specs] == ["tick"]  # it still knows the job


def test_duplicate_job_names_are_refused_and_failures_recorded():
    s = Scheduler(enabled=False)
    s.register(JobSpec(name="a", func=lambda: None, trigger="interval", trigger_args={"seconds": 1}))
    with pytest.raises(ValueError, match="registered twice"):
        s.register(JobSpec(name="a", func=lambda: None, trigger="interval", trigger_args={"seconds": 1}))

    def boom() -> None:
        raise RuntimeError("no data")

    s.register(JobSpec(name="b", func=boom, trigger="cron", trigger_args={"hour": 3}))
    with pytest.raises(RuntimeError):
        s.run_now("b")
    assert s.last_run["b"][1] == "error"


def test_a_restart_resumes_interval_jobs_from_their_last_run(tmp_path):
    """A restarted scheduler runs an interval job one interval after its last run (from jobs.json), not one interval
    after the start: restarted often, it would otherwise never run a long-interval job (found by bench/fleet.py)."""
    state = tmp_path / "jobs.json"
    overdue = time.time() - 7200  # last ran two hours ago: due at once
    recent = time.time() - 600  # ten minutes ago: due in fifty minutes
    state.write_text(json.dumps({"jobs": {"overdue": {"last_run": overdue, "outcome": "ok"},
                                          "recent": {"last_run": recent, "outcome": "ok"}}}), encoding="utf-8")
    s = Scheduler(enabled=True, state_path=state)
    ran = threading.Event()
    s.register(JobSpec(name="overdue", func=ran.set, trigger="interval", trigger_args={"hours": 1}))
    for name in ("recent", "new"):
        s.register(JobSpec(name=name, func=lambda: None, trigger="interval", trigger_args={"hours": 1}))
    started = time.time()
    s.start()
    try:
        assert ran.wait(30)  # at once (a readiness wait: the bound only ends a broken run)
        assert s.next_run("overdue") == pytest.approx(overdue + 3 * 3600, abs=1)  # back on its grid
        assert s.next_run("recent") == pytest.approx(recent + 3600, abs=1)
        assert s.next_run("new") >= started + 3600 - 1  # never ran: one interval from now, as before
    finally:
        s.shutdown()
