"""The Modbus collector against a real pymodbus TCP server on loopback."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from collectors.modbus import ModbusCollector, ModbusDeviceConfig, ModbusPointConfig
from collectors.modbus.datatypes import DataType, RegisterKind, WordOrder, encode
from collectors.reading import Quality
from collectors.sim.load import LoadModel
from collectors.sim.modbus_server import Faults, ModbusPlantSimulator, SimModbusMeter

KNOWN = {
    DataType.INT16: -12345, DataType.UINT16: 54321, DataType.INT32: -123456789, DataType.UINT32: 3_000_000_000,
    DataType.INT64: -1234567890123, DataType.UINT64: 12345678901234567, DataType.FLOAT32: 1234.5,
    DataType.FLOAT64: -98765.4321,
}


def _device(port, unit=1, **kw):
    base = {"type": "modbus", "name": f"dev{unit}", "host": "127.0.0.1", "port": port, "unit": unit,
            "timeout_s": 0.3, "retries": 0}
    base.update(kw)
    if "points" not in base and "profile" not in base:
        base["profile"] = "generic"
    return ModbusDeviceConfig.model_validate(base)


async def test_every_type_in_every_order_with_known_values():
    fixed: dict[int, int] = {}
    points = []
    address = 100
    for dtype, value in KNOWN.items():
        orders = list(WordOrder) if dtype not in (DataType.INT16, DataType.UINT16) else [WordOrder.ABCD,
                                                                                          WordOrder.BADC]
        for order in orders:
            regs = encode(value, dtype, order)
            for i, r in enumerate(regs):
                fixed[address + i] = r
            points.append(ModbusPointConfig(name=f"{dtype.value}_{order.value}", address=address, type=dtype,
                                            order=order, kind=RegisterKind.INPUT if address % 2 else
                                            RegisterKind.HOLDING))
            address += len(regs) + 1  # a one-register gap between points exercises gap filling
    for i, r in enumerate(encode("PM5300-A1", DataType.STRING, length=5)):
        fixed[400 + i] = r
    fixed[410] = 0b0000_0100_0000_0000
    points.append(ModbusPointConfig(name="status_bit10", address=410, type=DataType.BIT, bit=10))
    points.append(ModbusPointConfig(name="scaled", address=100, type=DataType.INT16, scale=0.1, offset=-5))
    sim = ModbusPlantSimulator([SimModbusMeter(1, "generic", LoadModel(), Faults(fixed=fixed))])
    async with sim:
        col = ModbusCollector([_device(sim.port, points=points)])
        readings = {r.point: r for r in await col.poll_once()}
    assert len(readings) == len(points)
    for p in points:
        r = readings[p.name]
        assert r.quality is Quality.GOOD, p.name
        if p.name == "status_bit10":
            assert r.value == 1.0
        elif p.name == "scaled":
            assert r.value == pytest.approx(-12345 * 0.1 - 5)
        else:
            expected = KNOWN[p.type]
            if p.type in (DataType.INT64, DataType.UINT64):  # every digit, as an int: a float would round them
                assert (type(r.value), r.value) == (int, expected), p.name
            else:
                assert r.value == (pytest.approx(expected) if isinstance(expected, float) else float(expected)), p.name
    # 41 points, a few requests: reads were coalesced.
    assert sim.context.requests <= 6


async def test_exception_splits_request_and_remembers_the_split():
    meter = SimModbusMeter(1, "generic", LoadModel(), Faults(illegal_ranges=[(5, 6)]))  # voltage register missing
    async with ModbusPlantSimulator([meter]) as sim:
        col = ModbusCollector([_device(sim.port)])
        first = {r.point: r for r in await col.poll_once()}
        assert first["voltage_ll_v"].quality is Quality.BAD
        assert first["voltage_ll_v"].value is None
        good = [r for r in first.values() if r.point != "voltage_ll_v"]
        assert all(r.quality is Quality.GOOD and r.value is not None for r in good)
        requests_first = sim.context.requests
        worker = col.workers[0]
        assert len(worker.blocks) > 1  # the split is remembered...
        await col.poll_once()
        second = sim.context.requests - requests_first
    assert second == len(worker.blocks) < requests_first  # ...so the next poll goes straight to the good requests


async def test_silent_device_signals_offline_once_and_never_resends_stale_values():
    meters = [SimModbusMeter(1, "generic", LoadModel(seed=1)),
              SimModbusMeter(2, "generic", LoadModel(seed=2), Faults(silent=True))]
    async with ModbusPlantSimulator(meters) as sim:
        col = ModbusCollector([_device(sim.port, 2, timeout_s=0.2)])
        worker = col.workers[0]
        readings, ok = await worker.poll()
        assert not ok
        assert {r.quality for r in readings} == {Quality.COMM_LOST}
        assert all(r.value is None for r in readings)
        assert len(readings) == len(worker.points)
        again, ok = await worker.poll()
        assert not ok
        assert again == []  # no repeated offline flood, and certainly no old numbers
        h = col.health()[0]
        assert not h.online
        assert h.consecutive_failures == 2
        assert "no answer" in h.last_error


async def test_meter_behind_gateway_not_answering_is_an_outage_not_a_bad_value():
    # The simulator answers exception 11 (gateway target failed to respond) for a unit it does not have.
    async with ModbusPlantSimulator([SimModbusMeter(1, "generic", LoadModel())]) as sim:
        col = ModbusCollector([_device(sim.port, 9)])
        worker = col.workers[0]
        readings, ok = await worker.poll()
        assert not ok
        assert {r.quality for r in readings} == {Quality.COMM_LOST}
        h = col.health()[0]
        assert not h.online
        assert h.last_success_ns is None
        assert "exception 11" in h.last_error


async def test_server_restart_resumes_polling():
    """The collector says offline once, and polls again after the server is back (no fixed waits: readiness).

    How soon it resumes is a latency, measured by bench/collect.py rather than asserted on a shared machine.
    """
    sim = ModbusPlantSimulator([SimModbusMeter(1, "generic", LoadModel())])
    await sim.start()
    port = sim.port
    got: list[tuple[float, object]] = []
    col = ModbusCollector([_device(port, interval_s=0.25)])
    stop = asyncio.Event()
    task = asyncio.create_task(col.run(lambda rs: got.extend((time.monotonic(), r) for r in rs), stop))
    try:
        await _wait(lambda: any(r.quality is Quality.GOOD for _, r in got))
        await sim.stop()
        await _wait(lambda: any(r.quality is Quality.COMM_LOST for _, r in got))
        assert not col.health()[0].online
        restarted = ModbusPlantSimulator([SimModbusMeter(1, "generic", LoadModel())], port=port)
        await restarted.start()
        back_at = time.monotonic()
        await _wait(lambda: any(t >= back_at and r.quality is Quality.GOOD for t, r in got))
        await _wait(lambda: col.health()[0].online)
        lost: dict[str, int] = {}
        for _, r in got:
            if r.quality is Quality.COMM_LOST:
                lost[r.point] = lost.get(r.point, 0) + 1
        assert lost, "the outage was reported"
        assert set(lost.values()) == {1}, f"offline is said once per point and outage: {lost}"
        await restarted.stop()
    finally:
        stop.set()
        await task


async def test_energy_register_wrap_is_unwrapped_and_reset_flagged():
    uint32 = [ModbusPointConfig(name="active_energy_import_kwh", address=10, type=DataType.UINT32, scale=0.1,
                                counter=True)]
    faults = Faults(fixed=dict(zip([10, 11], encode(4_294_967_000, DataType.UINT32), strict=True)))
    async with ModbusPlantSimulator([SimModbusMeter(1, "generic", LoadModel(), faults)]) as sim:
        col = ModbusCollector([_device(sim.port, points=uint32)])
        (before,) = await col.poll_once()
        faults.fixed.update(zip([10, 11], encode(500, DataType.UINT32), strict=True))  # wrapped past 2^32
        (after,) = await col.poll_once()
        assert after.quality is Quality.GOOD
        assert after.value - before.value == pytest.approx((2**32 - 4_294_967_000 + 500) * 0.1)
        faults.fixed.update(zip([10, 11], encode(20, DataType.UINT32), strict=True))  # a meter reset
        (reset,) = await col.poll_once()
        assert reset.quality is Quality.UNCERTAIN
        assert reset.value == pytest.approx(2.0)


async def test_nan_register_is_bad_not_a_number():
    pts = [ModbusPointConfig(name="p", address=0, type=DataType.FLOAT32)]
    faults = Faults(fixed=dict(zip([0, 1], encode(math.nan, DataType.FLOAT32), strict=True)))
    async with ModbusPlantSimulator([SimModbusMeter(1, "generic", LoadModel(), faults)]) as sim:
        (r,) = await ModbusCollector([_device(sim.port, points=pts)]).poll_once()
    assert r.quality is Quality.BAD
    assert r.value is None


async def test_unreachable_port_is_a_clear_offline_signal():
    from collectors.sim.modbus_server import free_port

    col = ModbusCollector([_device(free_port())])
    readings = await col.poll_once()
    assert {r.quality for r in readings} == {Quality.COMM_LOST}
    assert "cannot connect" in col.health()[0].last_error


def test_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="needs 'host'"):
        ModbusDeviceConfig.model_validate({"type": "modbus", "name": "x", "profile": "generic"})
    with pytest.raises(ValueError, match="unknown profile 'sdm999'"):
        ModbusDeviceConfig.model_validate({"type": "modbus", "name": "x", "host": "h", "profile": "sdm999"})
    with pytest.raises(ValueError, match="either 'profile' or 'points'"):
        ModbusDeviceConfig.model_validate({"type": "modbus", "name": "x", "host": "h", "profile": "generic",
                                           "points": [{"name": "a", "address": 1}]})
    with pytest.raises(ValueError, match="duplicate point names"):
        ModbusDeviceConfig.model_validate({"type": "modbus", "name": "x", "host": "h",
                                           "points": [{"name": "a", "address": 1}, {"name": "a", "address": 2}]})
    with pytest.raises(ValueError, match="needs 'length'"):
        ModbusPointConfig.model_validate({"name": "s", "address": 1, "type": "string"})


async def _wait(cond, within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


async def test_back_pressure_from_emit_stretches_the_poll_interval():
    """A device whose emit answers "4 times slower" polls about a quarter as often as one told to keep pace.

    Counted against its neighbour in the same run, not against the clock, so a busy machine cannot fail it.
    """
    meters = [SimModbusMeter(1, "generic", LoadModel(seed=1)), SimModbusMeter(2, "generic", LoadModel(seed=2))]
    async with ModbusPlantSimulator(meters) as sim:
        col = ModbusCollector([_device(sim.port, 1, interval_s=0.05), _device(sim.port, 2, interval_s=0.05)])
        polls = {"dev1": 0, "dev2": 0}

        def emit(readings):
            device = readings[0].device
            polls[device] += 1
            return 4.0 if device == "dev2" else 1.0

        stop = asyncio.Event()
        task = asyncio.create_task(col.run(emit, stop))
        try:
            await _wait(lambda: polls["dev1"] >= 24)
        finally:
            stop.set()
            await task
    assert 1 <= polls["dev2"] <= polls["dev1"] / 2, polls
