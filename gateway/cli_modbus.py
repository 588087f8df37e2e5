"""`energy-gateway modbus`: probe a device's registers and show every plausible decoding of them."""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass
from typing import Annotated

import typer
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from rich.console import Console
from rich.table import Table

from collectors.modbus.datatypes import DataType, WordOrder, decode

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
    """The probe could not read the registers; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Decoding:
    type: str
    order: str
    value: float | int | str
    registers: int


def parse_target(target: str) -> tuple[str, int]:
    """HOST, HOST:PORT or [IPv6]:PORT -> (host, port); port 502 by default."""
    host, port_text = target, ""
    if target.startswith("["):
        host, _, rest = target[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif target.count(":") == 1:
        host, port_text = target.split(":")
    if not host:
        raise typer.BadParameter(f"no host in {target!r}", param_hint="HOST[:PORT]")
    if not port_text:
        return host, 502
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise typer.BadParameter(f"port {port_text!r} in {target!r} is not 1..65535", param_hint="HOST[:PORT]")
    return host, int(port_text)


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


async def read_registers(host: str, port: int, unit: int, address: int, count: int, function: int,
                         timeout_s: float) -> list[int]:
    client = AsyncModbusTcpClient(host, port=port, timeout=timeout_s, retries=0, reconnect_delay=0)
    where = f"{host}:{port} unit {unit}"
    try:
        if not await client.connect():
            raise ProbeError(f"cannot connect to {where} (refused, unreachable or timed out after {timeout_s} s)")
        call = client.read_holding_registers if function == 3 else client.read_input_registers
        try:
            resp = await asyncio.wait_for(call(address, count=count, device_id=unit), timeout=timeout_s + 1)
        except (TimeoutError, ModbusException, OSError) as exc:
            raise ProbeError(f"no answer from {where} to function {function} at address {address} count {count} "
                             f"within {timeout_s} s ({type(exc).__name__})") from None
        if resp.isError():
            code = int(getattr(resp, "exception_code", 0) or 0)
            raise ProbeError(f"{where} answered exception {code} ({_EXCEPTIONS.get(code, 'unknown')}) to function "
                             f"{function} at address {address} count {count}")
        regs = [int(r) for r in resp.registers]
        if len(regs) != count:
            raise ProbeError(f"{where} returned {len(regs)} registers, asked for {count} at address {address}")
        return regs
    finally:
        client.close()


def _value_text(value: float | int | str) -> str:
    if isinstance(value, float):
        return f"{value:.7g}"
    if isinstance(value, str):
        return repr(value)
    return str(value)


@app.command("probe")
def probe(
    target: Annotated[str, typer.Argument(metavar="HOST[:PORT]",
                                          help="Device or gateway address; port 502 by default")],
    unit: Annotated[int, typer.Option("--unit", "-u", min=0, max=255, help="Modbus unit (slave) id")] = 1,
    address: Annotated[int, typer.Option("--address", "-a", min=0, max=65535,
                                         help="0-based register address (40001/30001 is 0)")] = 0,
    count: Annotated[int, typer.Option("--count", "-n", min=1, max=125, help="Registers to read")] = 4,
    function: Annotated[int, typer.Option("--function", "-f", min=3, max=4,
                                          help="3: holding registers, 4: input registers")] = 3,
    timeout: Annotated[float, typer.Option("--timeout", min=0.05, max=60.0, help="Seconds to wait")] = 2.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of {type, order, value}")] = False,
) -> None:
    """Read registers and show them decoded as every data type in every byte/word order."""
    host, port = parse_target(target)
    try:
        regs = asyncio.run(read_registers(host, port, unit, address, count, function, timeout))
    except ProbeError as exc:
        typer.echo(f"modbus probe: {exc}", err=True)
        raise typer.Exit(1) from None
    found = decodings(regs)
    if as_json:
        typer.echo(json.dumps([{"type": d.type, "order": d.order, "value": d.value, "registers": d.registers}
                               for d in found]))
        return
    console = Console()
    raw = " ".join(f"{r:04X}" for r in regs)
    table = Table(title=f"{host}:{port} unit {unit} function {function} address {address}+{count}: {raw}")
    table.add_column("type")
    table.add_column("order")
    table.add_column("registers", justify="right")
    table.add_column("value", justify="right")
    for d in found:
        table.add_row(d.type, d.order, str(d.registers), _value_text(d.value))
    console.print(table)
