"""`energy-gateway modbus`: probe a device's registers and show every plausible decoding of them."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from collectors.modbus.probe import ProbeError
from collectors.modbus.probe import probe as probe_device
from gateway.device_input import MODBUS_PORT, InvalidInput, OneLineUsage, ProbeParams, first_problem, parse_target

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Modbus tools: probe a device's registers.")


@app.callback()
def _group() -> None:
    """Modbus tools (a group, so `probe` stays a sub-command even while it is the only one)."""


class _ProbeCommand(OneLineUsage):
    tool = "modbus probe"


def _value_text(value: float | int | str) -> str:
    if isinstance(value, float):
        return f"{value:.7g}"
    if isinstance(value, str):
        return repr(value)
    return str(value)


# Option name per ProbeParams field, so a refusal names what the user typed.
_OPTIONS = {"host": "HOST[:PORT]", "port": "HOST[:PORT]", "unit": "--unit", "address": "--address",
            "count": "--count", "function": "--function", "timeout_s": "--timeout", "transport": "--transport",
            "serial_port": "--serial-port", "baudrate": "--baudrate", "parity": "--parity"}


def _refuse(message: str, code: int) -> typer.Exit:
    typer.echo(f"modbus probe: {message}", err=True)
    return typer.Exit(code)


@app.command("probe", cls=_ProbeCommand)
def probe(
    target: Annotated[str | None, typer.Argument(metavar="HOST[:PORT]", show_default=False, help=escape(
        f"Device or gateway: host name, IPv4, IPv6 or [IPv6]:PORT; port {MODBUS_PORT} by default "
        "(not with --transport rtu)"))] = None,
    unit: Annotated[int, typer.Option("--unit", "-u", help="Modbus unit (slave) id, 0..255")] = 1,
    address: Annotated[int, typer.Option("--address", "-a",
                                         help="0-based register address (40001/30001 is 0), 0..65535")] = 0,
    count: Annotated[int, typer.Option("--count", "-n", help="Registers (bits for -f 1, 2) to read, 1..125")] = 4,
    function: Annotated[int, typer.Option("--function", "-f", help=(
        "1: coils, 2: discrete inputs, 3: holding registers, 4: input registers"))] = 3,
    transport: Annotated[str, typer.Option("--transport", help=(
        "tcp, rtu_over_tcp (serial gateway) or rtu (local serial port)"))] = "tcp",
    serial_port: Annotated[str | None, typer.Option("--serial-port", help="e.g. /dev/ttyUSB0 (rtu)")] = None,
    baudrate: Annotated[int, typer.Option("--baudrate", help="serial line speed (rtu)")] = 9600,
    parity: Annotated[str, typer.Option("--parity", help="N, E or O (rtu)")] = "N",
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait, 0.05..10")] = 2.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of {type, order, value}")] = False,
) -> None:
    """Read registers and show them decoded as every data type in every byte/word order.

    Bad input is one line on stderr and exit 2; a device that cannot be reached or does not answer, exit 1.
    """
    try:
        host: str | None = None
        port = MODBUS_PORT
        if target is not None:
            if transport == "rtu":
                raise InvalidInput("host", "HOST[:PORT] is not used with --transport rtu (give --serial-port)")
            host, port = parse_target(target, MODBUS_PORT)
        params = ProbeParams.model_validate({
            "transport": transport, "host": host, "port": port, "serial_port": serial_port, "baudrate": baudrate,
            "parity": parity, "unit": unit, "address": address, "count": count, "function": function,
            "timeout_s": timeout})
    except InvalidInput as exc:
        raise _refuse(str(exc), 2) from None
    except ValidationError as exc:
        raise _refuse(first_problem(exc, _OPTIONS), 2) from None
    # pymodbus logs a failed connect as a warning; with no logging set up Python would print it as a second line.
    logging.getLogger("pymodbus").addHandler(logging.NullHandler())
    request = params.request()
    try:
        values, found = asyncio.run(probe_device(request))
    except ProbeError as exc:
        raise _refuse(str(exc), 1) from None
    if as_json:
        typer.echo(json.dumps([{"type": d.type, "order": d.order, "value": d.value, "registers": d.registers}
                               for d in found]))
        return
    console = Console()
    bits = function in (1, 2)
    raw = "".join(str(v) for v in values) if bits else " ".join(f"{r:04X}" for r in values)
    table = Table(title=escape(f"{request.where} function {function} address {address}+{count}: {raw}"))
    table.add_column("type")
    table.add_column("order")
    table.add_column("registers", justify="right")
    table.add_column("value", justify="right")
    for d in found:
        table.add_row(d.type, d.order, str(d.registers), escape(_value_text(d.value)))
    console.print(table)
