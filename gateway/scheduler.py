"""In-process job scheduler (APScheduler). Packages' jobs are registered here by the composition root.

Only one process of a deployment may run jobs: `gateway.run_scheduler` in gateway.toml is that switch. A process
with the switch off still knows the jobs (so `energy-gateway jobs` can list them) but never starts them. With a
`lease` (gateway.scheduler_lease: a shared PostgreSQL registry), a second process with the switch on is a standby: its
job times pass without running anything until the first process stops holding the lease.

With a `state_path` (`data_dir/jobs.json`), each job's last run and, while the scheduler runs, its next run are kept
in that file, so `energy-gateway jobs list` in another process shows them; a run from `jobs run` is recorded there too.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import Counter

log = logging.getLogger(__name__)

JOB_RUNS = Counter("gateway_job_runs_total", "Scheduled job runs", ["job", "outcome"])


@dataclass(frozen=True)
class JobSpec:
    """A periodic job. `trigger` is APScheduler's name ("interval" or "cron"); `trigger_args` its arguments."""

    name: str
    func: Callable[[], Any]
    trigger: Literal["interval", "cron"]
    trigger_args: dict[str, Any] = field(default_factory=dict)
    description: str = ""


class Lease(Protocol):
    def held(self) -> bool: ...
    def release(self) -> None: ...


STANDBY = object()  # what a job "returns" in a process without the lease


class Scheduler:
    def __init__(self, enabled: bool, timezone: str = "UTC", state_path: Path | None = None,
                 lease: Lease | None = None) -> None:
        self.enabled = enabled
        self.state_path = state_path
        self.lease = lease
        self._specs: dict[str, JobSpec] = {}
        self._sched = BackgroundScheduler(timezone=timezone, job_defaults={"coalesce": True, "max_instances": 1,
                                                                           "misfire_grace_time": 300})
        self._sched.add_listener(self._on_event, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        self.last_run: dict[str, tuple[float, str]] = {}

    def register(self, spec: JobSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"job {spec.name!r} is registered twice")
        self._specs[spec.name] = spec

    @property
    def specs(self) -> list[JobSpec]:
        return list(self._specs.values())

    def start(self) -> None:
        if not self.enabled:
            log.info("scheduler role is off in this process (gateway.run_scheduler = false)")
            return
        ran = read_state(self.state_path).get("jobs", {}) if self.state_path is not None else {}
        for spec in self._specs.values():
            args = dict(spec.trigger_args)
            last_run = ran.get(spec.name, {}).get("last_run")
            if spec.trigger == "interval" and "start_date" not in args and last_run:
                # One interval after its last run (kept in jobs.json), or at once when that is past: anchored at the
                # process start, a scheduler restarted more often than a job's interval would never run it.
                args["start_date"] = datetime.fromtimestamp(last_run, UTC) + _interval(args)
                args["next_run_time"] = max(args["start_date"], datetime.now(UTC))
            self._sched.add_job(self._leased(spec.func), spec.trigger, id=spec.name, name=spec.name, **args)
        self._sched.start()
        self._save_state()
        log.info("scheduler started with %d jobs", len(self._specs))

    def _leased(self, func: Callable[[], Any]) -> Callable[[], Any]:
        lease = self.lease
        if lease is None:
            return func

        def run() -> Any:
            return func() if lease.held() else STANDBY

        return run

    def run_now(self, name: str) -> Any:
        """Run one job in the caller's thread (CLI and tests)."""
        spec = self._specs[name]
        try:
            result = spec.func()
        except Exception:
            JOB_RUNS.labels(job=name, outcome="error").inc()
            self._ran(name, "error")
            raise
        JOB_RUNS.labels(job=name, outcome="ok").inc()
        self._ran(name, "ok")
        return result

    @property
    def running(self) -> bool:
        return bool(self._sched.running)

    def shutdown(self) -> None:
        if self._sched.running:
            self._sched.shutdown(wait=True)
            self._save_state()
        if self.lease is not None:
            self.lease.release()

    def next_run(self, name: str) -> float | None:
        """When the running scheduler will next start job `name` (Unix time); None when it is not scheduled here."""
        job = self._sched.get_job(name) if self._sched.running else None
        when = getattr(job, "next_run_time", None)
        return when.timestamp() if when is not None else None

    def _on_event(self, event: JobExecutionEvent) -> None:
        if event.retval is STANDBY:  # another process holds the lease and ran (or will run) this one
            JOB_RUNS.labels(job=event.job_id, outcome="standby").inc()
            return
        outcome = "error" if event.exception else "ok"
        JOB_RUNS.labels(job=event.job_id, outcome=outcome).inc()
        self._ran(event.job_id, outcome)
        if event.exception:
            log.error("job %s failed: %s", event.job_id, event.exception)

    def _ran(self, name: str, outcome: str) -> None:
        self.last_run[name] = (time.time(), outcome)
        self._save_state(ran=name)

    def _save_state(self, ran: str | None = None) -> None:
        """Write the jobs' last and next runs to `state_path`, never failing the job or the scheduler for it.

        A process that only ran one job (`jobs run`) updates that job's last run and leaves the rest as the
        scheduler process wrote it.
        """
        if self.state_path is None:
            return
        whole = ran is None or self.running  # the scheduler process speaks for every job
        # Asked before the file lock: the scheduler's own lock is held while it reports a job that ended at once
        nexts = {name: self.next_run(name) for name in self._specs} if whole else {}
        try:
            with _locked(self.state_path):
                state = read_state(self.state_path)
                jobs: dict[str, Any] = state.setdefault("jobs", {})
                for name in list(self._specs) if whole or ran is None else [ran]:
                    entry = jobs.setdefault(name, {})
                    if name in self.last_run and self.last_run[name][0] >= entry.get("last_run", 0):
                        entry["last_run"], entry["outcome"] = self.last_run[name]
                    if whole:
                        entry["next_run"] = nexts[name]
                if whole:
                    state["scheduler"] = {"pid": os.getpid(), "host": socket.gethostname(), "running": self.running}
                tmp = self.state_path.with_name(self.state_path.name + ".tmp")
                tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
                os.replace(tmp, self.state_path)
        except OSError as exc:
            log.warning("cannot record the jobs' runs in %s: %s", self.state_path, exc)


_UNITS = ("weeks", "days", "hours", "minutes", "seconds")


def _interval(trigger_args: dict[str, Any]) -> timedelta:
    return timedelta(**{u: trigger_args[u] for u in _UNITS if u in trigger_args})


def read_state(path: Path) -> dict[str, Any]:
    """The jobs' state file as written by `Scheduler` ({} when there is none or it cannot be read)."""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def scheduler_alive(state: dict[str, Any]) -> bool:
    """Whether the process that wrote `state` runs the scheduler now (on this machine, by its pid)."""
    info = state.get("scheduler") or {}
    if not info.get("running") or info.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return False
    return True


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside `path`, so the scheduler and `jobs run` do not undo each other's update."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
