"""One dead device among 20 healthy ones must not make the healthy ones late (servers in another process)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import numpy as np
import pytest

from collectors.modbus import ModbusCollector, ModbusDeviceConfig
from collectors.reading import Quality


@pytest.fixture
def ports():
    """21 simulator servers in another process; the last one's meter never answers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "collectors.sim.modbus_server", "--servers", "21", "--meters", "1",
         "--silent-server", "20"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        yield json.loads(proc.stdout.readline())["ports"]
    finally:
        proc.terminate()
        proc.wait(10)


async def test_dead_device_does_not_delay_twenty_healthy_ones(ports):
    devices = [
        ModbusDeviceConfig(type="modbus", name=f"meter{i:02d}", host="127.0.0.1", port=port, unit=1,
                           profile="generic", interval_s=1.0, timeout_s=0.5, retries=0)
        for i, port in enumerate(ports)
    ]
    col = ModbusCollector(devices)
    got = []
    stop = asyncio.Event()
    task = asyncio.create_task(col.run(got.extend, stop))
    await asyncio.sleep(6.5)
    stop.set()
    await task
    lateness = col.lateness_samples()
    healthy = np.array([x for name, xs in lateness.items() if name != "meter20" for x in xs[1:]])
    assert len(healthy) >= 20 * 4
    p99 = float(np.percentile(healthy, 99))
    # The requirement is 50 ms; asserted with a generous margin because this machine is shared and noisy.
    # bench/collect.py reports the exact figure.
    assert p99 < 0.25, f"healthy p99 lateness {p99 * 1000:.0f} ms"
    health = {h.device: h for h in col.health()}
    assert not health["meter20"].online
    assert all(health[f"meter{i:02d}"].online for i in range(20))
    assert {r.quality for r in got if r.device == "meter20"} == {Quality.COMM_LOST}
    good = [r for r in got if r.device != "meter20" and r.quality is Quality.GOOD]
    assert len(good) >= 20 * 5 * 8  # every healthy meter, every second, all eight points
