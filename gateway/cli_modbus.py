"""`energy-gateway modbus`: probe a device's registers and show every plausible decoding of them."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from dataclasses import dataclass
from typing import Annotated

import typer
from pydantic import ValidationError
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from collectors.modbus.datatypes import DataType, WordOrder, decode
from gateway.device_input import MODBUS_PORT, InvalidInput, OneLineUsage, ProbeParams, first_problem, parse_target

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Modbus tools: probe a device's registers.")

_EXCEPTIONS = {1: "illegal function", 2: "illegal data address", 3: "illegal data value", 4: "device failure",
               6: "device busy", 10: "gateway path unavailable", 11: "gateway target did not respond"}
_ORDERS_16 = (WordOrder.ABCD, WordOrder.BADC)  # one register: only the byte swap means anything
_WIDE = (DataType.INT32, DataType.UINT32, DataType.FLOAT32, DataType.INT64, DataType.UINT64, DataType.FLOAT64)


@app.callback()
def _group() -> None:
    """Modbus tools (a group, so `probe` stays a sub-command even while it is the only one)."""


class ProbeError(Exception):
    """The probe could not read the registers; the message says where and why, `code` which kind of failure."""

    def __init__(self, message: str, code: str = "device_error") -> None:
        super().__init__(message)
        self.code = code  # device_unreachable: no connection; device_error: connected, no usable answer


class _ProbeCommand(OneLineUsage):
    tool = "modbus probe"


@dataclass(frozen=True, slots=True)
class Decoding:
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


def decodings(registers: list[int]) -> list[Decoding]:
    """Every type in every order that fits the registers, read from the first register, minus implausible ones."""
    out: list[Decoding] = []
    n = len(registers)
    for dtype in (DataType.INT16, DataType.UINT16):
        for order in _ORDERS_16:
            out.append(Decoding(dtype.value, order.value, decode(registers[:1], dtype, order), 1))
    for dtype in _WIDE:
        width = 2 if dtype in (DataType.INT32, DataType.UINT32, DataType.FLOAT32) else 4
        if n < width:
            continue
        for order in WordOrder:
            out.append(Decoding(dtype.value, order.value, decode(registers[:width], dtype, order), width))
    for order in _ORDERS_16:
        out.append(Decoding(DataType.STRING.value, order.value, decode(registers, DataType.STRING, order), n))
    return [d for d in out if _plausible(d.value)]


async def read_registers(params: ProbeParams) -> list[int]:
    """Read `count` registers once; ProbeError (device_unreachable or device_error) says where and why not."""
    p = params
    client = AsyncModbusTcpClient(p.host, port=p.port, timeout=p.timeout_s, retries=0, reconnect_delay=0)
    where = f"{p.host}:{p.port} unit {p.unit}"
    asked = f"function {p.function} at address {p.address} count {p.count}"
    try:
        if not await client.connect():
            raise ProbeError(f"cannot connect to {where} (unknown host, refused, unreachable or timed out after "
                             f"{p.timeout_s} s)", "device_unreachable")
        call = client.read_holding_registers if p.function == 3 else client.read_input_registers
        try:
            resp = await asyncio.wait_for(call(p.address, count=p.count, device_id=p.unit), timeout=p.timeout_s + 1)
        except (TimeoutError, ModbusException, OSError) as exc:
            raise ProbeError(f"no answer from {where} to {asked} within {p.timeout_s} s "
                             f"({type(exc).__name__})") from None
        if resp.isError():
            code = int(getattr(resp, "exception_code", 0) or 0)
            raise ProbeError(f"{where} answered exception {code} ({_EXCEPTIONS.get(code, 'unknown')}) to {asked}")
        regs = [int(r) for r in resp.registers]
        if len(regs) != p.count:
            raise ProbeError(f"{where} returned {len(regs)} registers, asked for {p.count} at address {p.address}")
        return regs
    finally:
        client.close()


def _value_text(value: float | int | str) -> str:
    if isinstance(value, float):
        return f"{value:.7g}"
    if isinstance(value, str):
        return repr(value)
    return str(value)


# Option name per ProbeParams field, so a refusal names what the user typed.
_OPTIONS = {"host": "HOST[:PORT]", "port": "HOST[:PORT]", "unit": "--unit", "address": "--address",
            "count": "--count", "function": "--function", "timeout_s": "--timeout"}


def _refuse(message: str, code: int) -> typer.Exit:
    typer.echo(f"modbus probe: {message}", err=True)
    return typer.Exit(code)


@app.command("probe", cls=_ProbeCommand)
def probe(
    target: Annotated[str, typer.Argument(metavar="HOST[:PORT]", help=escape(
        f"Device or gateway: host name, IPv4, IPv6 or [IPv6]:PORT; port {MODBUS_PORT} by default"))],
    unit: Annotated[int, typer.Option("--unit", "-u", help="Modbus unit (slave) id, 0..255")] = 1,
    address: Annotated[int, typer.Option("--address", "-a",
                                         help="0-based register address (40001/30001 is 0), 0..65535")] = 0,
    count: Annotated[int, typer.Option("--count", "-n", help="Registers to read, 1..125")] = 4,
    function: Annotated[int, typer.Option("--function", "-f", help="3: holding registers, 4: input registers")] = 3,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait, 0.05..10")] = 2.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of {type, order, value}")] = False,
) -> None:
    """Read registers and show them decoded as every data type in every byte/word order.

    Bad input is one line on stderr and exit 2; a device that cannot be reached or does not answer, exit 1.
    """
    try:
        host, port = parse_target(target, MODBUS_PORT)
        params = ProbeParams(host=host, port=port, unit=unit, address=address, count=count, function=function,
                             timeout_s=timeout)
    except InvalidInput as exc:
        raise _refuse(str(exc), 2) from None
    except ValidationError as exc:
        raise _refuse(first_problem(exc, _OPTIONS), 2) from None
    # pymodbus logs a failed connect as a warning; with no logging set up Python would print it as a second line.
    logging.getLogger("pymodbus").addHandler(logging.NullHandler())
    try:
        regs = asyncio.run(read_registers(params))
    except ProbeError as exc:
        raise _refuse(str(exc), 1) from None
    found = decodings(regs)
    if as_json:
        typer.echo(json.dumps([{"type": d.type, "order": d.order, "value": d.value, "registers": d.registers}
                               for d in found]))
        return
    console = Console()
    raw = " ".join(f"{r:04X}" for r in regs)
    table = Table(title=escape(f"{host}:{port} unit {unit} function {function} address {address}+{count}: {raw}"))
    table.add_column("type")
    table.add_column("order")
    table.add_column("registers", justify="right")
    table.add_column("value", justify="right")
    for d in found:
        table.add_row(d.type, d.order, str(d.registers), escape(_value_text(d.value)))
    console.print(table)
