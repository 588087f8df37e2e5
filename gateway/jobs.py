"""The periodic jobs of a gateway, registered with the scheduler by the composition root."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.scheduler import JobSpec

if TYPE_CHECKING:
    from gateway.runtime import Gateway


def register_jobs(gw: Gateway) -> None:
    """Register every job this installation has. Only the process with `run_scheduler = true` runs them."""
    gw.scheduler.register(JobSpec(
        name="outbox_expire",
        func=gw.outbox.expire,
        trigger="interval",
        trigger_args={"minutes": 5},
        description="Drop (and count) outbox readings older than outbox.max_age_s",
    ))
