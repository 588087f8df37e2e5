"""int64 and uint64 registers keep every digit: decoded as int and emitted as int by the collector, never a float."""

from __future__ import annotations

import pytest

from collectors.counters import CounterTracker, Step
from collectors.modbus import ModbusCollector, ModbusDeviceConfig
from collectors.modbus.config import ModbusPointConfig
from collectors.modbus.datatypes import DataType, WordOrder, decode, encode, make_decoder
from collectors.reading import Quality
from collectors.sim.load import LoadModel
from collectors.sim.modbus_server import Faults, ModbusPlantSimulator, SimModbusMeter

ABOVE_FLOAT = 2**53 + 1  # the first integer a float64 cannot hold: float(2**53 + 1) == 2**53
WIDE = [(DataType.INT64, ABOVE_FLOAT), (DataType.INT64, -ABOVE_FLOAT), (DataType.INT64, -(2**63)),
        (DataType.INT64, 2**63 - 1), (DataType.UINT64, ABOVE_FLOAT), (DataType.UINT64, 2**64 - 1)]


@pytest.mark.parametrize("order", list(WordOrder))
@pytest.mark.parametrize(("dtype", "value"), WIDE)
def test_decode_round_trips_every_digit(dtype, value, order):
    regs = encode(value, dtype, order)
    for decoded in (decode(regs, dtype, order), make_decoder(dtype, order)(regs)):
        assert type(decoded) is int
        assert decoded == value


async def test_collector_emits_unscaled_64_bit_integers_as_exact_ints():
    points = [
        ModbusPointConfig(name="i64", address=0, type=DataType.INT64),
        ModbusPointConfig(name="u64_cdab", address=4, type=DataType.UINT64, order=WordOrder.CDAB),
        ModbusPointConfig(name="u64_counter", address=8, type=DataType.UINT64, counter=True),
        ModbusPointConfig(name="u64_scaled", address=12, type=DataType.UINT64, scale=0.001),
        ModbusPointConfig(name="u64_max", address=16, type=DataType.UINT64),
    ]
    values = {"i64": -ABOVE_FLOAT, "u64_cdab": ABOVE_FLOAT, "u64_counter": ABOVE_FLOAT + 2, "u64_scaled": ABOVE_FLOAT,
              "u64_max": 2**64 - 1}
    fixed = {}
    for p in points:
        fixed.update({p.address + i: r for i, r in enumerate(encode(values[p.name], p.type, p.order))})
    sim = ModbusPlantSimulator([SimModbusMeter(1, "generic", LoadModel(), Faults(fixed=fixed))])
    async with sim:
        cfg = ModbusDeviceConfig.model_validate({"type": "modbus", "name": "wide", "host": "127.0.0.1",
                                                 "port": sim.port, "timeout_s": 0.5, "retries": 0, "points": points})
        readings = {r.point: r for r in await ModbusCollector([cfg]).poll_once()}
    assert {r.quality for r in readings.values()} == {Quality.GOOD}
    for name in ("i64", "u64_cdab", "u64_counter", "u64_max"):  # up to 2**64 - 1: every store keeps uint64 exactly
        assert type(readings[name].value) is int, name
        assert readings[name].value == values[name], name
    # Scaled: a float by nature.
    assert readings["u64_scaled"].value == pytest.approx(ABOVE_FLOAT * 0.001)


def test_counter_tracker_keeps_an_int_register_exact_across_a_wrap():
    tracker = CounterTracker(wrap_at=2**32)
    assert tracker.update(ABOVE_FLOAT) == (ABOVE_FLOAT, Step.NORMAL)
    assert tracker.update(ABOVE_FLOAT + 1) == (ABOVE_FLOAT + 1, Step.NORMAL)
    tracker = CounterTracker(wrap_at=2**32)
    tracker.update(2**32 - 1)
    total, step = tracker.update(5)
    assert (total, step, type(total)) == (2**32 + 5, Step.WRAP, int)


def test_a_uint64_counter_stays_exact_up_to_2_64_and_goes_as_float_once_unwrapped_past_it():
    from collectors.modbus.bus import Bus
    from collectors.modbus.collector import DeviceWorker

    cfg = ModbusDeviceConfig.model_validate({
        "type": "modbus", "name": "wrap", "host": "127.0.0.1", "port": 502,
        "points": [ModbusPointConfig(name="kwh", address=0, type=DataType.UINT64, counter=True)]})
    worker = DeviceWorker(cfg, Bus(cfg))  # no request is sent: the registers are given below
    point, block = worker.points[0], worker.blocks[0]
    top, _ = worker._value(point, block, encode(2**64 - 2, DataType.UINT64, WordOrder.ABCD))
    assert (type(top), top) == (int, 2**64 - 2)  # the largest uint64 values are kept exactly
    wrapped, quality = worker._value(point, block, encode(3, DataType.UINT64, WordOrder.ABCD))
    assert quality is Quality.GOOD
    assert (type(wrapped), wrapped) == (float, float(2**64 + 3))  # past what any store keeps as an integer
