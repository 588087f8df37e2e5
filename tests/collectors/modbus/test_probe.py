"""collectors.modbus.probe against the real simulator: TCP, RTU over TCP and serial RTU, function codes 1 to 4."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest
from pymodbus import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

from collectors.base import CollectorError
from collectors.modbus.config import Transport
from collectors.modbus.datatypes import DataType, WordOrder, encode
from collectors.modbus.probe import ProbeError, ProbeRequest, probe
from collectors.sim.load import LoadModel
from collectors.sim.modbus_server import Faults, ModbusPlantSimulator, SimModbusMeter, free_port

INPUT_FLOAT = encode(42.5, DataType.FLOAT32, WordOrder.ABCD)
HOLDING_INT32 = encode(-123456, DataType.INT32, WordOrder.CDAB)
# Each kind holds something the other kinds do not, so a probe that used the wrong function code would fail.
FIXED = {("coil", 0): 1, ("coil", 2): 1, ("discrete", 1): 1,
         ("input", 0): INPUT_FLOAT[0], ("input", 1): INPUT_FLOAT[1],
         ("holding", 50): HOLDING_INT32[0], ("holding", 51): HOLDING_INT32[1]}


def _plant() -> ModbusPlantSimulator:
    return ModbusPlantSimulator([SimModbusMeter(1, "generic", LoadModel(seed=3), Faults(fixed_by_kind=FIXED,
                                                                                        illegal_ranges=[(900, 910)]))])


async def _serve(server: ModbusTcpServer | ModbusSerialServer) -> asyncio.Task[None]:
    task = asyncio.create_task(server.serve_forever())
    for _ in range(200):
        if server.is_active():
            break
        await asyncio.sleep(0.01)
    return task


@pytest.fixture
async def rtu_over_tcp_port() -> AsyncIterator[int]:
    port = free_port()
    server = ModbusTcpServer(_plant().context, address=("127.0.0.1", port), framer=FramerType.RTU)
    task = await _serve(server)
    yield port
    await server.shutdown()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _check_every_function(base: ProbeRequest) -> None:
    def at(function: int, address: int, count: int) -> ProbeRequest:
        return dataclasses.replace(base, function=function, address=address, count=count)

    coils, decodings = await probe(at(1, 0, 4))
    assert coils == [1, 0, 1, 0]
    assert [d.type for d in decodings] == ["bit"] * 4
    assert [d.value for d in decodings] == [1, 0, 1, 0]
    discrete, _ = await probe(at(2, 0, 3))
    assert discrete == [0, 1, 0]
    regs, decodings = await probe(at(4, 0, 2))
    assert regs == INPUT_FLOAT
    assert ("float32", "ABCD", 42.5) in {(d.type, d.order, d.value) for d in decodings}
    regs, decodings = await probe(at(3, 50, 2))
    assert regs == HOLDING_INT32
    assert ("int32", "CDAB", -123456) in {(d.type, d.order, d.value) for d in decodings}


async def test_tcp_every_function_code():
    async with _plant() as sim:
        await _check_every_function(ProbeRequest(host="127.0.0.1", port=sim.port, unit=1, timeout_s=1.0))


async def test_rtu_over_tcp_every_function_code(rtu_over_tcp_port):
    await _check_every_function(ProbeRequest(transport=Transport.RTU_OVER_TCP, host="127.0.0.1",
                                             port=rtu_over_tcp_port, unit=1, timeout_s=1.0))


async def test_serial_rtu_every_function_code(pty_pair):
    server = ModbusSerialServer(_plant().context, framer=FramerType.RTU, port=pty_pair.server_port, baudrate=19200)
    task = asyncio.create_task(server.serve_forever())
    try:
        await asyncio.sleep(0.2)
        await _check_every_function(ProbeRequest(transport=Transport.RTU, serial_port=pty_pair.client_port,
                                                 baudrate=19200, unit=1, timeout_s=1.0))
    finally:
        await server.shutdown()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_exception_is_a_device_error_naming_the_code():
    async with _plant() as sim:
        with pytest.raises(ProbeError, match=r"exception 2 \(illegal data address\)") as err:
            await probe(ProbeRequest(host="127.0.0.1", port=sim.port, unit=1, address=905, count=2))
    assert err.value.code == "device_error"
    assert isinstance(err.value, CollectorError)


async def test_plain_tcp_framing_against_an_rtu_gateway_is_a_device_error(rtu_over_tcp_port):
    with pytest.raises(ProbeError) as err:
        await probe(ProbeRequest(host="127.0.0.1", port=rtu_over_tcp_port, unit=1, timeout_s=0.3))
    assert err.value.code == "device_error"


async def test_missing_serial_port_is_unreachable_naming_the_port(tmp_path):
    missing = str(tmp_path / "ttyUSB9")
    with pytest.raises(ProbeError, match="cannot connect to " + missing) as err:
        await probe(ProbeRequest(transport=Transport.RTU, serial_port=missing, timeout_s=0.3))
    assert err.value.code == "device_unreachable"
