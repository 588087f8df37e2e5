"""One-off Modbus read of a device's registers or bits, shown as every plausible decoding, to find a meter's map."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Literal

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from collectors.base import CollectorError
from collectors.modbus.config import Transport
from collectors.modbus.datatypes import DataType, RegisterKind, WordOrder, decode

EXCEPTIONS = {1: "illegal function", 2: "illegal data address", 3: "illegal data value", 4: "device failure",
              6: "device busy", 10: "gateway path unavailable", 11: "gateway target did not respond"}
_ORDERS_16 = (WordOrder.ABCD, WordOrder.BADC)  # one register: only the byte swap means anything
_WIDE = (DataType.INT32, DataType.UINT32, DataType.FLOAT32, DataType.INT64, DataType.UINT64, DataType.FLOAT64)
_KINDS = {k.function: k for k in RegisterKind}


class ProbeError(CollectorError):
    """The probe could not read; the message says where and why, `code` which kind of failure.

    `device_unreachable`: no connection was made; `device_error`: connected, but no usable answer.
    """

    def __init__(self, message: str, code: str = "device_error") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    """Where to read (the transport keys of a Modbus device entry) and what: function, address, count."""

    transport: Transport = Transport.TCP
    host: str | None = None
    port: int = 502
    serial_port: str | None = None
    baudrate: int = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    unit: int = 1
    function: int = 3
    address: int = 0
    count: int = 4
    timeout_s: float = 2.0

    @property
    def where(self) -> str:
        link = self.serial_port if self.transport is Transport.RTU else f"{self.host}:{self.port}"
        via = "" if self.transport is Transport.TCP else f" ({self.transport.value})"
        return f"{link}{via} unit {self.unit}"


@dataclass(frozen=True, slots=True)
class Decoding:
    """One reading of the registers: a type in a byte/word order, and how many registers it takes."""

    type: str
    order: str
    value: float | int | str
    registers: int


def _plausible(value: float | int | str) -> bool:
    if isinstance(value, float):
        # NaN/inf and denormals are what garbage bytes look like as IEEE 754, never a meter reading.
        return math.isfinite(value) and (value == 0.0 or abs(value) >= 1e-30)
    if isinstance(value, str):
        return bool(value) and value.isascii() and value.isprintable()
    return True


def decodings(registers: list[int], function: int = 3) -> list[Decoding]:
    """Every type in every order that fits the registers, read from the first register, minus implausible ones.

    Coils and discrete inputs (functions 1 and 2) are bits: one `bit` decoding per bit.
    """
    if _KINDS[function].is_bit:
        return [Decoding(DataType.BIT.value, "", int(b), 1) for b in registers]
    out: list[Decoding] = []
    n = len(registers)
    for dtype in (DataType.INT16, DataType.UINT16):
        for order in _ORDERS_16:
            out.append(Decoding(dtype.value, order.value, _number(decode(registers[:1], dtype, order)), 1))
    for dtype in _WIDE:
        width = 2 if dtype in (DataType.INT32, DataType.UINT32, DataType.FLOAT32) else 4
        if n < width:
            continue
        for order in WordOrder:
            out.append(Decoding(dtype.value, order.value, _number(decode(registers[:width], dtype, order)), width))
    for order in _ORDERS_16:
        out.append(Decoding(DataType.STRING.value, order.value, _number(decode(registers, DataType.STRING, order)),
                            n))
    return [d for d in out if _plausible(d.value)]


def _number(value: float | int | str | bool) -> float | int | str:
    return int(value) if isinstance(value, bool) else value


def _client(req: ProbeRequest) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
    # One attempt: a probe reports what happened, it does not hide a flaky link behind retries.
    if req.transport is Transport.RTU:
        return AsyncModbusSerialClient(port=req.serial_port or "", baudrate=req.baudrate, parity=req.parity,
                                       stopbits=req.stopbits, bytesize=req.bytesize, timeout=req.timeout_s,
                                       retries=0, reconnect_delay=0)
    framer = FramerType.RTU if req.transport is Transport.RTU_OVER_TCP else FramerType.SOCKET
    return AsyncModbusTcpClient(req.host or "", port=req.port, framer=framer, timeout=req.timeout_s, retries=0,
                                reconnect_delay=0)


async def read_registers(req: ProbeRequest) -> list[int]:
    """Read `count` registers (functions 3, 4) or bits as 0/1 (functions 1, 2) once; ProbeError says why not."""
    if req.function not in _KINDS:
        raise ProbeError(f"function {req.function} is not 1, 2, 3 or 4", "device_error")
    kind = _KINDS[req.function]
    client = _client(req)
    asked = f"function {req.function} at address {req.address} count {req.count}"
    try:
        try:
            ok = await asyncio.wait_for(client.connect(), timeout=req.timeout_s + 1)
        except (TimeoutError, OSError, ModbusException):
            ok = False
        if not ok:
            raise ProbeError(f"cannot connect to {req.where} (unknown host, refused, unreachable or timed out after "
                             f"{req.timeout_s} s)", "device_unreachable")
        call = {RegisterKind.COIL: client.read_coils, RegisterKind.DISCRETE: client.read_discrete_inputs,
                RegisterKind.HOLDING: client.read_holding_registers,
                RegisterKind.INPUT: client.read_input_registers}[kind]
        try:
            resp = await asyncio.wait_for(call(req.address, count=req.count, device_id=req.unit),
                                          timeout=req.timeout_s + 1)
        except (TimeoutError, ModbusException, OSError) as exc:
            raise ProbeError(f"no answer from {req.where} to {asked} within {req.timeout_s} s "
                             f"({type(exc).__name__})") from None
        if resp.isError():
            code = int(getattr(resp, "exception_code", 0) or 0)
            raise ProbeError(f"{req.where} answered exception {code} ({EXCEPTIONS.get(code, 'unknown')}) to {asked}")
        values = [int(b) for b in resp.bits[:req.count]] if kind.is_bit else [int(r) for r in resp.registers]
        if len(values) != req.count:
            what = "bits" if kind.is_bit else "registers"
            raise ProbeError(f"{req.where} returned {len(values)} {what}, asked for {req.count} at address "
                             f"{req.address}")
        return values
    finally:
        client.close()


async def probe(req: ProbeRequest) -> tuple[list[int], list[Decoding]]:
    """Read once and decode: (raw registers or bits, every plausible decoding)."""
    values = await read_registers(req)
    return values, decodings(values, req.function)
