"""Both collectors follow DeviceHealth: a dead device is one ERROR line and one offline signal per outage."""

from __future__ import annotations

import asyncio
import logging

import pytest

from collectors.modbus import ModbusCollector, ModbusDeviceConfig
from collectors.opcua import OpcUaCollector, OpcUaDeviceConfig
from collectors.reading import Quality, Reading
from collectors.sim.modbus_server import free_port

pytestmark = pytest.mark.timeout(60)


async def _run_until(collector: ModbusCollector | OpcUaCollector, attempts: int) -> list[Reading]:
    got: list[Reading] = []
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(got.extend, stop))
    try:
        for _ in range(400):
            if collector.health()[0].consecutive_failures >= attempts or task.done():
                break
            await asyncio.sleep(0.025)
    finally:
        stop.set()
        await task
    return got


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("collectors")]


@pytest.mark.parametrize("protocol", ["modbus", "opcua"])
async def test_dead_device_logs_one_error_and_one_offline_signal(protocol, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="collectors")
    port = free_port()
    if protocol == "modbus":
        col: ModbusCollector | OpcUaCollector = ModbusCollector([ModbusDeviceConfig(
            type="modbus", name="dead", host="127.0.0.1", port=port, profile="generic", interval_s=0.1,
            timeout_s=0.2, retries=0)])
    else:
        col = OpcUaCollector([OpcUaDeviceConfig(
            type="opcua", name="dead", url=f"opc.tcp://127.0.0.1:{port}", mode="poll", timeout_s=0.3,
            backoff_max_s=0.2, nodes=[{"point": "active_power_kw", "node_id": "ns=2;i=5"},
                                      {"point": "power_factor", "node_id": "ns=2;i=6"}])], tmp_path)
    got = await _run_until(col, attempts=3)
    h = col.health()[0]
    assert h.consecutive_failures >= 3
    assert not h.online
    assert h.protocol == protocol
    assert h.last_error
    errors = _errors(caplog)
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{protocol} device dead")
    lost: dict[str, int] = {}
    for r in got:
        assert r.quality is Quality.COMM_LOST
        assert r.value is None
        lost[r.point] = lost.get(r.point, 0) + 1
    assert lost, "the outage was reported"
    assert set(lost.values()) == {1}, f"offline is said once per point and outage: {lost}"
