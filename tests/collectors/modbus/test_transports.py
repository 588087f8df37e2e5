"""RTU over TCP and serial RTU against real pymodbus servers (serial: a pseudo-terminal pair, no hardware)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from pymodbus import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

from collectors.modbus import ModbusCollector, ModbusDeviceConfig
from collectors.reading import Quality
from collectors.sim.load import LoadModel
from collectors.sim.modbus_server import ModbusPlantSimulator, SimModbusMeter, free_port

MODELS = {1: LoadModel(peak_kw=900, seed=21, shutdown_prob=0.0), 2: LoadModel(peak_kw=1700, seed=22,
                                                                                shutdown_prob=0.0)}


def _plant() -> ModbusPlantSimulator:
    # Only its register context is served here, behind RTU framing.
    return ModbusPlantSimulator([SimModbusMeter(u, "generic", m) for u, m in MODELS.items()])


def _device(**kw: object) -> ModbusDeviceConfig:
    base: dict[str, object] = {"type": "modbus", "profile": "generic", "timeout_s": 0.5, "retries": 0}
    base.update(kw)
    return ModbusDeviceConfig.model_validate(base)


def _plausible_power(readings, unit):
    peak = MODELS[unit].peak_kw
    power = [r.value for r in readings if r.point == "active_power_kw"]
    return len(power) == 1 and power[0] is not None and 0 < power[0] <= 1.2 * peak


@pytest.fixture
async def rtu_over_tcp_port() -> AsyncIterator[int]:
    port = free_port()
    server = ModbusTcpServer(_plant().context, address=("127.0.0.1", port), framer=FramerType.RTU)
    task = asyncio.create_task(server.serve_forever())
    for _ in range(200):
        if server.is_active():
            break
        await asyncio.sleep(0.01)
    yield port
    await server.shutdown()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_rtu_over_tcp_reads_every_unit_behind_the_gateway(rtu_over_tcp_port):
    devices = [_device(name=f"gw-u{u}", transport="rtu_over_tcp", host="127.0.0.1", port=rtu_over_tcp_port,
                       unit=u) for u in MODELS]
    col = ModbusCollector(devices)
    readings = await col.poll_once()
    assert {r.quality for r in readings} == {Quality.GOOD}
    assert len(readings) == 2 * 8
    for u in MODELS:
        assert _plausible_power([r for r in readings if r.device == f"gw-u{u}"], u)
    # Both units share one connection (one bus): requests are serialised on it.
    assert len({id(w.bus) for w in col.workers}) == 1


async def test_plain_tcp_framing_against_an_rtu_gateway_is_offline_not_garbage(rtu_over_tcp_port):
    col = ModbusCollector([_device(name="wrong-framing", transport="tcp", host="127.0.0.1",
                                   port=rtu_over_tcp_port, unit=1)])
    readings = await col.poll_once()
    assert readings
    assert all(r.value is None for r in readings)
    assert {r.quality for r in readings} <= {Quality.COMM_LOST, Quality.BAD}
    assert not col.health()[0].online


async def test_serial_rtu_bus_with_two_meters(pty_pair):
    server = ModbusSerialServer(_plant().context, framer=FramerType.RTU, port=pty_pair.server_port,
                                baudrate=19200)
    task = asyncio.create_task(server.serve_forever())
    try:
        await asyncio.sleep(0.2)
        devices = [_device(name=f"rs485-u{u}", transport="rtu", serial_port=pty_pair.client_port, baudrate=19200,
                           unit=u, timeout_s=1.0) for u in MODELS]
        col = ModbusCollector(devices)
        # Both polled concurrently: without the bus lock their frames would interleave on the line.
        readings = await col.poll_once()
        readings += await col.poll_once()
    finally:
        await server.shutdown()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert {r.quality for r in readings} == {Quality.GOOD}
    assert len(readings) == 2 * 2 * 8
    for u in MODELS:
        assert _plausible_power([r for r in readings if r.device == f"rs485-u{u}"][:8], u)
    assert len({id(w.bus) for w in col.workers}) == 1


async def test_missing_serial_port_is_an_offline_signal_naming_the_port(tmp_path):
    missing = str(tmp_path / "ttyUSB9")
    col = ModbusCollector([_device(name="no-port", transport="rtu", serial_port=missing)])
    readings = await col.poll_once()
    assert readings
    assert {r.quality for r in readings} == {Quality.COMM_LOST}
    assert all(r.value is None for r in readings)
    health = col.health()[0]
    assert not health.online
    assert missing in health.last_error
