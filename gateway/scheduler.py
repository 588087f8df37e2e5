"""In-process job scheduler (APScheduler). Packages' jobs are registered here by the composition root.

Only one process of a deployment may run jobs: `gateway.run_scheduler` in gateway.toml is that switch. A process
with the switch off still knows the jobs (so `energy-gateway jobs` can list them) but never starts them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

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


class Scheduler:
    def __init__(self, enabled: bool, timezone: str = "UTC") -> None:
        self.enabled = enabled
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
        for spec in self._specs.values():
            self._sched.add_job(spec.func, spec.trigger, id=spec.name, name=spec.name, **spec.trigger_args)
        self._sched.start()
        log.info("scheduler started with %d jobs", len(self._specs))

    def run_now(self, name: str) -> Any:
        """Run one job in the caller's thread (CLI and tests)."""
        spec = self._specs[name]
        try:
            result = spec.func()
        except Exception:
            JOB_RUNS.labels(job=name, outcome="error").inc()
            self.last_run[name] = (time.time(), "error")
            raise
        JOB_RUNS.labels(job=name, outcome="ok").inc()
        self.last_run[name] = (time.time(), "ok")
        return result

    @property
    def running(self) -> bool:
        return bool(self._sched.running)

    def shutdown(self) -> None:
        if self._sched.running:
            self._sched.shutdown(wait=True)

    def _on_event(self, event: JobExecutionEvent) -> None:
        outcome = "error" if event.exception else "ok"
        JOB_RUNS.labels(job=event.job_id, outcome=outcome).inc()
        self.last_run[event.job_id] = (time.time(), outcome)
        if event.exception:
            log.error("job %s failed: %s", event.job_id, event.exception)
