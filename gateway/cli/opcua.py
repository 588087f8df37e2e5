"""`energy-gateway opcua browse`: walk an OPC UA server's address space to find the nodes to configure."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.markup import escape

from gateway.device_input import OPCUA_URL_FORM, InvalidInput, OneLineUsage, OpcUaUrl, first_problem, parse_opcua_url

app = typer.Typer(no_args_is_help=True, add_completion=False)


class _BrowseCommand(OneLineUsage):
    tool = "opcua browse"


# Option name per endpoint field, so a refusal names what the user typed.
_OPTIONS = {"security_policy": "--security-policy", "security_mode": "--security-mode", "username": "--username",
            "password_env": "--password-env", "user_certificate": "--user-cert", "user_private_key": "--user-key",
            "client_cert": "--client-cert", "client_key": "--client-key", "server_cert": "--server-cert",
            "timeout_s": "--timeout", "input": "options"}


def endpoint_name(target: OpcUaUrl) -> str:
    """The name a browse goes by: it names the generated client certificate and the server's pin file."""
    return "browse-" + re.sub(r"[^A-Za-z0-9_.-]", "_", f"{target.host}-{target.port}")


def _refuse(message: str, code: int) -> typer.Exit:
    typer.echo(f"opcua browse: {message}", err=True)
    return typer.Exit(code)


@app.command(cls=_BrowseCommand)
def browse(
    url: Annotated[str, typer.Argument(metavar="URL", help=escape(f"{OPCUA_URL_FORM}; port 4840 by default"))],
    depth: Annotated[int, typer.Option(min=1, max=10, help="levels below Objects")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per node")] = False,
    security_policy: Annotated[str, typer.Option("--security-policy", help="None or Basic256Sha256")] = "None",
    security_mode: Annotated[str, typer.Option("--security-mode",
                                               help="Sign or SignAndEncrypt with Basic256Sha256")] = "None",
    username: Annotated[str | None, typer.Option("--username", help="log in as this user")] = None,
    password_env: Annotated[str | None, typer.Option(
        "--password-env", help="environment variable holding the user's password")] = None,
    user_cert: Annotated[Path | None, typer.Option("--user-cert", help="log in with this X.509 certificate")] = None,
    user_key: Annotated[Path | None, typer.Option("--user-key", help="the key of --user-cert")] = None,
    client_cert: Annotated[Path | None, typer.Option(
        "--client-cert", help="application certificate (else one is made in DATA_DIR/opcua/pki/own)")] = None,
    client_key: Annotated[Path | None, typer.Option("--client-key", help="the key of --client-cert")] = None,
    server_cert: Annotated[Path | None, typer.Option(
        "--server-cert", help="trust exactly this server certificate (else pinned on first use in DATA_DIR)")] = None,
    data_dir: Annotated[Path, typer.Option(
        "--data-dir", help="where certificates are made and pinned, as the gateway's data_dir")] = Path("var"),
    timeout: Annotated[float, typer.Option("--timeout", help="seconds per request; connecting may take twice")] = 5.0,
) -> None:
    """Print the address space: node id, browse path (usable as `browse_path`), class, value and its status.

    Security and login take the keys of an OPC UA device entry, so a secure-only server can be browsed.
    Bad input is one line on stderr and exit 2; a server that cannot be reached or browsed, exit 1.
    """
    from collectors.opcua.browse import BrowseError, browse_nodes  # asyncua only when a browse is asked
    from collectors.opcua.config import OpcUaEndpointConfig

    try:
        target = parse_opcua_url(url)
        endpoint = OpcUaEndpointConfig.model_validate({
            "name": endpoint_name(target), "url": target.url, "timeout_s": timeout,
            "security_policy": security_policy, "security_mode": security_mode, "username": username,
            "password_env": password_env, "user_certificate": user_cert, "user_private_key": user_key,
            "client_cert": client_cert, "client_key": client_key, "server_cert": server_cert})
    except InvalidInput as exc:
        raise _refuse(str(exc), 2) from None
    except ValidationError as exc:
        raise _refuse(first_problem(exc, _OPTIONS), 2) from None
    try:
        nodes = asyncio.run(browse_nodes(endpoint, depth, state_dir=data_dir))
    except BrowseError as exc:
        raise _refuse(str(exc), 1) from None
    for n in nodes:
        if as_json:
            typer.echo(json.dumps(n, ensure_ascii=False, allow_nan=False))
        else:
            typer.echo(_line(n, depth))


def _line(n: dict[str, Any], depth: int) -> str:
    value = f" = {n.get('value_text', repr(n['value']))}" if "value" in n else ""
    status = f" ({n['status']})" if n.get("status", "Good") != "Good" else ""
    return f"{'  ' * (depth - n['depth'])}{n['browse_name']:<30} {n['class']:<9} {n['node_id']}{value}{status}"
