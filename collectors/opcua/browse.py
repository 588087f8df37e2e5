"""One-off walk of an OPC UA server's address space, with the collector's security and login, to find nodes."""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from asyncua import Client, Node, ua

from collectors.base import CollectorError
from collectors.opcua.config import OpcUaEndpointConfig
from collectors.opcua.security import open_session


class BrowseError(CollectorError):
    """The server could not be reached or browsed; the message says which and why, `code` which kind of failure.

    `device_unreachable`: no session was made; `device_error`: the server refused the session, the login or the
    trust, or the session broke off.
    """

    def __init__(self, message: str, code: str = "device_error") -> None:
        super().__init__(message)
        self.code = code


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


async def _session(endpoint: OpcUaEndpointConfig, state_dir: Path, environ: Mapping[str, str]) -> Client:
    try:
        return await asyncio.wait_for(open_session(endpoint, state_dir, environ), endpoint.timeout_s * 2)
    except CollectorError as exc:  # refused trust or login, a setting that cannot be used, no such endpoint
        raise BrowseError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - whatever the peer did (refused, garbage, not OPC UA), no session
        raise BrowseError(f"cannot connect to {endpoint.url}: {exc or type(exc).__name__}",
                          "device_unreachable") from None


async def browse_nodes(endpoint: OpcUaEndpointConfig, depth: int = 3, limit: int = 5000,
                       state_dir: Path | None = None, environ: Mapping[str, str] | None = None
                       ) -> list[dict[str, Any]]:
    """Nodes below the Objects folder to `depth` levels, variables with their value and status name.

    Security, login and trust are the endpoint's, as the collector uses them: client certificates are made and
    server certificates pinned under `state_dir` (a secure endpoint needs it); the password comes from `environ`
    (default: the process environment).
    """
    if endpoint.security_policy != "None" and state_dir is None:
        raise BrowseError(f"browsing {endpoint.url} with {endpoint.security_policy} needs a state directory for "
                          "the client certificate and the pinned server certificate")
    client = await _session(endpoint, state_dir or Path(), os.environ if environ is None else environ)
    out: list[dict[str, Any]] = []
    try:
        await _walk(client.nodes.objects, depth, "0:Objects", out, limit)
        return out
    except (ua.UaError, OSError, EOFError, TimeoutError) as exc:
        raise BrowseError(f"browsing {endpoint.url} broke off after {len(out)} nodes: "
                          f"{exc or type(exc).__name__}") from None
    finally:
        try:
            await client.disconnect()
        except Exception:  # noqa: BLE001, S110 - closing a connection that is going away anyway
            pass
