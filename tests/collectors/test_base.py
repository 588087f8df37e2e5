"""DeviceHealth: an error is logged once loud per outage, recovery once, and the backoff doubles up to its cap."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from collectors.base import DeviceHealth, run_tasks, sleep_or_stop


def _levels(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "collectors.base"]


def test_error_logged_once_then_debug_then_back_online_once(caplog):
    caplog.set_level(logging.DEBUG, logger="collectors.base")
    h = DeviceHealth("m1", "modbus", address="tcp:10.0.0.5:502 unit 1")
    for _ in range(3):
        h.failed(TimeoutError("no answer"))
    h.succeeded(0.01)
    h.succeeded(0.01)
    h.failed("cannot connect")
    levels = [lvl for lvl, _ in _levels(caplog)]
    assert levels == [logging.ERROR, logging.DEBUG, logging.DEBUG, logging.WARNING, logging.ERROR]
    first, *_, back, again = [m for _, m in _levels(caplog)]
    assert first == "modbus device m1 (tcp:10.0.0.5:502 unit 1): no answer"
    assert "back online after 3 failed attempts" in back
    assert again.endswith("cannot connect")


def test_health_fields_follow_the_attempts():
    h = DeviceHealth("m1", "opcua")
    assert not h.online
    assert h.last_success_ns is None
    h.failed(ConnectionRefusedError())
    assert h.last_error == "ConnectionRefusedError"  # an exception without a message still says what it was
    assert h.outage_began
    assert h.consecutive_failures == 1
    assert not h.online
    h.failed("again")
    assert not h.outage_began
    assert h.consecutive_failures == 2
    before = time.time_ns()
    h.succeeded(0.25)
    assert h.online
    assert h.consecutive_failures == 0
    assert h.last_error == ""
    assert h.last_success_ns is not None
    assert h.last_success_ns >= before
    assert h.last_latency_s == 0.25
    assert h.polls == 3


def test_backoff_doubles_up_to_the_cap():
    h = DeviceHealth("m1", "modbus", backoff_base_s=0.5, backoff_max_s=3.0)
    assert h.backoff_s() == 0.0
    assert [h.failed("x") for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    h.succeeded()
    assert h.failed("x") == 0.5


def test_backoff_jitter_stays_within_its_fraction():
    h = DeviceHealth("m1", "opcua", backoff_base_s=1.0, backoff_max_s=60.0, jitter=0.2)
    for _ in range(3):
        h.failed("x")
    delays = [h.backoff_s() for _ in range(200)]
    assert all(3.2 <= d <= 4.8 for d in delays)
    assert len(set(delays)) > 1


async def test_sleep_or_stop_waits_or_returns_when_stopped():
    stop = asyncio.Event()
    started = time.monotonic()
    assert await sleep_or_stop(stop, 0.05) is False
    assert time.monotonic() - started >= 0.04
    assert await sleep_or_stop(stop, 0) is False
    asyncio.get_running_loop().call_later(0.05, stop.set)
    started = time.monotonic()
    assert await sleep_or_stop(stop, 30) is True
    assert time.monotonic() - started < 5
    assert await sleep_or_stop(stop, 30) is True


async def test_run_tasks_names_them_and_cancels_the_rest_when_one_fails():
    seen: list[str] = []
    cancelled = asyncio.Event()

    async def fine() -> None:
        seen.append(asyncio.current_task().get_name())  # type: ignore[union-attr]

    async def forever() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            cancelled.set()

    async def broken() -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("bug")

    await run_tasks([("a", fine()), ("b", fine())])
    assert seen == ["a", "b"]
    with pytest.raises(RuntimeError, match="bug"):
        await run_tasks([("x", forever()), ("y", broken())])
    await asyncio.wait_for(cancelled.wait(), 5)
