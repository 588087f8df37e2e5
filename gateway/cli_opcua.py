"""`energy-gateway opcua browse`: walk an OPC UA server's address space to find the nodes to configure."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from asyncua import Client, Node, ua

app = typer.Typer(no_args_is_help=True, add_completion=False)


class BrowseError(Exception):
    """The server could not be reached or browsed; the message says which and why."""


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
                dv = await child.read_data_value()
                value = dv.Value.Value if dv.Value is not None else None
                item["value"] = value if isinstance(value, (int, float, str, bool)) or value is None else str(value)
                item["status"] = dv.StatusCode.name if dv.StatusCode is not None else "Good"
            except ua.UaError as exc:
                item["value"], item["status"] = None, type(exc).__name__
        out.append(item)
        if depth > 1 and node_class == ua.NodeClass.Object:
            await _walk(child, depth - 1, f"{path}/{step}", out, limit)


async def browse_nodes(url: str, depth: int = 3, timeout_s: float = 5.0, limit: int = 5000) -> list[dict[str, Any]]:
    """Objects below the Objects folder to `depth` levels (anonymous, no security), variables with their value."""
    client = Client(url, timeout=timeout_s)
    try:
        await asyncio.wait_for(client.connect(), timeout_s * 2)
    except (OSError, TimeoutError, ua.UaError) as exc:
        raise BrowseError(f"cannot connect to {url}: {exc or type(exc).__name__}") from None
    try:
        out: list[dict[str, Any]] = []
        await _walk(client.nodes.objects, depth, "0:Objects", out, limit)
        return out
    finally:
        try:
            await client.disconnect()
        except Exception:  # noqa: BLE001, S110 - closing a connection that is going away anyway
            pass


@app.command()
def browse(
    url: Annotated[str, typer.Argument(help="opc.tcp://host:port[/path]")],
    depth: Annotated[int, typer.Option(min=1, max=10, help="levels below Objects")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per node")] = False,
) -> None:
    """Print the address space: node id, browse path (usable as `browse_path`), class and value."""
    if not url.startswith("opc.tcp://"):
        typer.echo(f"{url!r} is not an opc.tcp:// URL", err=True)
        raise typer.Exit(2)
    try:
        nodes = asyncio.run(browse_nodes(url, depth))
    except BrowseError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    for n in nodes:
        if as_json:
            typer.echo(json.dumps(n, ensure_ascii=False, default=str))
        else:
            value = f" = {n['value']!r}" if "value" in n else ""
            typer.echo(f"{'  ' * (depth - n['depth'])}{n['browse_name']:<30} {n['class']:<9} {n['node_id']}{value}")
