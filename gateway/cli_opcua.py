"""`energy-gateway opcua browse`: walk an OPC UA server's address space to find the nodes to configure."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Annotated, Any

import typer
from asyncua import Client, Node, ua
from rich.markup import escape

from gateway.device_input import OPCUA_URL_FORM, InvalidInput, OneLineUsage, OpcUaUrl, parse_opcua_url

app = typer.Typer(no_args_is_help=True, add_completion=False)


class BrowseError(Exception):
    """The server could not be reached or browsed; the message says which and why, `code` which kind of failure."""

    def __init__(self, message: str, code: str = "device_error") -> None:
        super().__init__(message)
        self.code = code  # device_unreachable: no session; device_error: the session broke off or was refused


class _BrowseCommand(OneLineUsage):
    tool = "opcua browse"


def _value(item: dict[str, Any], value: object) -> None:
    """Put a node's value in `item` as JSON can hold it: NaN and infinities as null with their text beside."""
    if isinstance(value, float) and not math.isfinite(value):
        item["value"], item["value_text"] = None, str(value)
    elif isinstance(value, (int, float, str, bool)) or value is None:
        item["value"] = value
    else:
        item["value"] = str(value)


async def _walk(node: Node, depth: int, path: str, out: list[dict[str, Any]], limit: int) -> None:
    for child in await node.get_children():
        if len(out) >= limit:
            return
        name = await child.read_browse_name()
        node_class = await child.read_node_class()
        step = f"{name.NamespaceIndex}:{name.Name}"
        item: dict[str, Any] = {"node_id": child.nodeid.to_string(), "browse_path": f"{path}/{step}",
                                "browse_name": name.Name, "class": node_class.name, "depth": depth}
        if node_class == ua.NodeClass.Variable:
            try:
                # Not raising on status: an Uncertain value is still shown, with its status name.
                dv = await child.read_data_value(raise_on_bad_status=False)
            except ua.UaError as exc:
                item["value"], item["status"] = None, type(exc).__name__
            else:
                status = dv.StatusCode if dv.StatusCode is not None else ua.StatusCode(ua.StatusCodes.Good)
                item["status"] = status.name
                _value(item, None if status.is_bad() or dv.Value is None else dv.Value.Value)
        out.append(item)
        if depth > 1 and node_class == ua.NodeClass.Object:
            await _walk(child, depth - 1, f"{path}/{step}", out, limit)


async def browse_nodes(url: OpcUaUrl, depth: int = 3, timeout_s: float = 5.0,
                       limit: int = 5000) -> list[dict[str, Any]]:
    """Objects below the Objects folder to `depth` levels (anonymous, no security), variables with their value."""
    client = Client(url.url, timeout=timeout_s)
    try:
        await asyncio.wait_for(client.connect(), timeout_s * 2)
    except Exception as exc:  # noqa: BLE001 - whatever the peer did (refused, garbage, not OPC UA), no session
        raise BrowseError(f"cannot connect to {url.url}: {exc or type(exc).__name__}", "device_unreachable") from None
    out: list[dict[str, Any]] = []
    try:
        await _walk(client.nodes.objects, depth, "0:Objects", out, limit)
        return out
    except (ua.UaError, OSError, EOFError, TimeoutError) as exc:
        raise BrowseError(f"browsing {url.url} broke off after {len(out)} nodes: "
                          f"{exc or type(exc).__name__}") from None
    finally:
        try:
            await client.disconnect()
        except Exception:  # noqa: BLE001, S110 - closing a connection that is going away anyway
            pass


@app.command(cls=_BrowseCommand)
def browse(
    url: Annotated[str, typer.Argument(metavar="URL", help=escape(f"{OPCUA_URL_FORM}; port 4840 by default"))],
    depth: Annotated[int, typer.Option(min=1, max=10, help="levels below Objects")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per node")] = False,
) -> None:
    """Print the address space: node id, browse path (usable as `browse_path`), class, value and its status.

    Bad input is one line on stderr and exit 2; a server that cannot be reached or browsed, exit 1.
    """
    try:
        target = parse_opcua_url(url)
    except InvalidInput as exc:
        typer.echo(f"opcua browse: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        nodes = asyncio.run(browse_nodes(target, depth))
    except BrowseError as exc:
        typer.echo(f"opcua browse: {exc}", err=True)
        raise typer.Exit(1) from None
    for n in nodes:
        if as_json:
            typer.echo(json.dumps(n, ensure_ascii=False, allow_nan=False))
        else:
            value = f" = {n.get('value_text', repr(n['value']))}" if "value" in n else ""
            status = f" ({n['status']})" if n.get("status", "Good") != "Good" else ""
            typer.echo(f"{'  ' * (depth - n['depth'])}{n['browse_name']:<30} {n['class']:<9} {n['node_id']}"
                       f"{value}{status}")
