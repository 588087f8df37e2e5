"""`energy-gateway opcua browse` and `opcua gui`: find the nodes to configure, in a terminal or a desktop window."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.markup import escape

from gateway.device_input import OPCUA_URL_FORM, InvalidInput, OneLineUsage, OpcUaUrl, first_problem, parse_opcua_url

if TYPE_CHECKING:
    from collectors.opcua.config import OpcUaEndpointConfig

app = typer.Typer(no_args_is_help=True, add_completion=False)


class _BrowseCommand(OneLineUsage):
    tool = "opcua browse"


class _GuiCommand(OneLineUsage):
    tool = "opcua gui"


# Option name per endpoint field, so a refusal names what the user typed.
_OPTIONS = {"security_policy": "--security-policy", "security_mode": "--security-mode", "username": "--username",
            "password_env": "--password-env", "user_certificate": "--user-cert", "user_private_key": "--user-key",
            "client_cert": "--client-cert", "client_key": "--client-key", "server_cert": "--server-cert",
            "timeout_s": "--timeout", "input": "options"}

# The security and login options of both commands: the keys of an OPC UA device entry (None: not given).
PolicyOpt = Annotated[str | None, typer.Option("--security-policy", help="None (the default) or Basic256Sha256")]
ModeOpt = Annotated[str | None, typer.Option("--security-mode", help="Sign or SignAndEncrypt with Basic256Sha256")]
UserOpt = Annotated[str | None, typer.Option("--username", help="log in as this user")]
PasswordEnvOpt = Annotated[str | None, typer.Option("--password-env",
                                                    help="environment variable holding the user's password")]
UserCertOpt = Annotated[Path | None, typer.Option("--user-cert", help="log in with this X.509 certificate")]
UserKeyOpt = Annotated[Path | None, typer.Option("--user-key", help="the key of --user-cert")]
ClientCertOpt = Annotated[Path | None, typer.Option(
    "--client-cert", help="application certificate (else one is made in DATA_DIR/opcua/pki/own)")]
ClientKeyOpt = Annotated[Path | None, typer.Option("--client-key", help="the key of --client-cert")]
ServerCertOpt = Annotated[Path | None, typer.Option(
    "--server-cert", help="trust exactly this server certificate (else pinned on first use in DATA_DIR)")]
DataDirOpt = Annotated[Path | None, typer.Option(
    "--data-dir", help="where certificates are made and pinned, as the gateway's data_dir (default: var)")]
TimeoutOpt = Annotated[float | None, typer.Option(
    "--timeout", help="seconds per request (default 5); connecting may take twice")]


def endpoint_name(target: OpcUaUrl) -> str:
    """The name a browse goes by: it names the generated client certificate and the server's pin file."""
    return "browse-" + re.sub(r"[^A-Za-z0-9_.-]", "_", f"{target.host}-{target.port}")


def _refuse(tool: str, message: str, code: int) -> typer.Exit:
    typer.echo(f"{tool}: {message}", err=True)
    return typer.Exit(code)


def _url_endpoint(tool: str, url: str, timeout: float | None, security: dict[str, Any]) -> OpcUaEndpointConfig:
    """The endpoint a URL and the security options name; bad input is one line and exit 2."""
    from collectors.opcua.config import OpcUaEndpointConfig

    given = {k: v for k, v in security.items() if v is not None}
    try:
        target = parse_opcua_url(url)
        return OpcUaEndpointConfig.model_validate({"name": endpoint_name(target), "url": target.url,
                                                   "timeout_s": 5.0 if timeout is None else timeout, **given})
    except InvalidInput as exc:
        raise _refuse(tool, str(exc), 2) from None
    except ValidationError as exc:
        raise _refuse(tool, first_problem(exc, _OPTIONS), 2) from None


def _security(policy: str | None, mode: str | None, username: str | None, password_env: str | None,
              user_cert: Path | None, user_key: Path | None, client_cert: Path | None, client_key: Path | None,
              server_cert: Path | None) -> dict[str, Any]:
    return {"security_policy": policy, "security_mode": mode, "username": username, "password_env": password_env,
            "user_certificate": user_cert, "user_private_key": user_key, "client_cert": client_cert,
            "client_key": client_key, "server_cert": server_cert}


@app.command(cls=_BrowseCommand)
def browse(
    url: Annotated[str, typer.Argument(metavar="URL", help=escape(f"{OPCUA_URL_FORM}; port 4840 by default"))],
    depth: Annotated[int, typer.Option(min=1, max=10, help="levels below Objects")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per node")] = False,
    security_policy: PolicyOpt = None,
    security_mode: ModeOpt = None,
    username: UserOpt = None,
    password_env: PasswordEnvOpt = None,
    user_cert: UserCertOpt = None,
    user_key: UserKeyOpt = None,
    client_cert: ClientCertOpt = None,
    client_key: ClientKeyOpt = None,
    server_cert: ServerCertOpt = None,
    data_dir: DataDirOpt = None,
    timeout: TimeoutOpt = None,
) -> None:
    """Print the address space: node id, browse path (usable as `browse_path`), class, value and its status.

    Security and login take the keys of an OPC UA device entry, so a secure-only server can be browsed.
    Bad input is one line on stderr and exit 2; a server that cannot be reached or browsed, exit 1.
    """
    from collectors.opcua.browse import BrowseError, browse_nodes  # asyncua only when a browse is asked

    endpoint = _url_endpoint("opcua browse", url, timeout, _security(
        security_policy, security_mode, username, password_env, user_cert, user_key, client_cert, client_key,
        server_cert))
    try:
        nodes = asyncio.run(browse_nodes(endpoint, depth, state_dir=data_dir or Path("var")))
    except BrowseError as exc:
        raise _refuse("opcua browse", str(exc), 1) from None
    for n in nodes:
        if as_json:
            typer.echo(json.dumps(n, ensure_ascii=False, allow_nan=False))
        else:
            typer.echo(_line(n, depth))


def _line(n: dict[str, Any], depth: int) -> str:
    value = f" = {n.get('value_text', repr(n['value']))}" if "value" in n else ""
    status = f" ({n['status']})" if n.get("status", "Good") != "Good" else ""
    return f"{'  ' * (depth - n['depth'])}{n['browse_name']:<30} {n['class']:<9} {n['node_id']}{value}{status}"


def _device_endpoint(config: Path, name: str | None) -> tuple[OpcUaEndpointConfig, Path]:
    """An OPC UA device of gateway.toml and the gateway's data folder, where its certificates are kept."""
    from collectors.opcua.config import OpcUaDeviceConfig
    from gateway.config import ConfigError, load_config

    try:
        cfg = load_config(config, secrets=())  # the device's password is looked up when the session opens
    except ConfigError as exc:
        (where, why), more = exc.problems[0], len(exc.problems) - 1
        also = f" (and {more} more: energy-gateway check-config --config {config})" if more else ""
        raise _refuse("opcua gui", f"{exc.path}: {where + ': ' if where else ''}{why}{also}", 1) from None
    opcua = [d for d in cfg.devices if isinstance(d, OpcUaDeviceConfig)]
    names = ", ".join(d.name for d in opcua) or "none"
    if name is None:
        if len(opcua) != 1:
            raise _refuse("opcua gui", f"--device: name one of the OPC UA devices in {config} ({names})", 2)
        return opcua[0], cfg.gateway.data_dir
    device = next((d for d in cfg.devices if d.name == name), None)
    if device is None:
        raise _refuse("opcua gui", f"--device: no device {name!r} in {config} (OPC UA devices: {names})", 2)
    if not isinstance(device, OpcUaDeviceConfig):
        raise _refuse("opcua gui", f"--device: {name!r} is a {device.type} device, not OPC UA "
                                   f"(OPC UA devices: {names})", 2)
    return device, cfg.gateway.data_dir


# Help text given as is: Rich would read "[gui]" in it as markup.
_GUI_HELP = (
    "Open the desktop OPC UA browser (FreeOpcUa's opcua-client) connected as the collector connects.\n\n"
    "With --device (and --config), the device's own security, login, client certificate and pinned server "
    "certificate under the gateway's data_dir; with a URL, the options below, as `opcua browse` takes them. "
    "Needs the extra: pip install 'energy-gateway[gui]'. Bad input is one line on stderr and exit 2; a server that "
    "cannot be reached or trusted, or no display, exit 1.")


@app.command(cls=_GuiCommand, help=escape(_GUI_HELP))
def gui(
    url: Annotated[str | None, typer.Argument(
        metavar="URL", show_default=False,
        help=escape(f"{OPCUA_URL_FORM} to open instead of a device; port 4840 by default"))] = None,
    device: Annotated[str | None, typer.Option(
        "--device", help="an OPC UA device of gateway.toml (the only one when not named)")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="gateway.toml with the device (default: ./gateway.toml)")] = None,
    security_policy: PolicyOpt = None,
    security_mode: ModeOpt = None,
    username: UserOpt = None,
    password_env: PasswordEnvOpt = None,
    user_cert: UserCertOpt = None,
    user_key: UserKeyOpt = None,
    client_cert: ClientCertOpt = None,
    client_key: ClientKeyOpt = None,
    server_cert: ServerCertOpt = None,
    data_dir: DataDirOpt = None,
    timeout: TimeoutOpt = None,
) -> None:
    from collectors.opcua import gui as desktop
    from collectors.opcua.browse import BrowseError

    try:
        desktop.require_gui()
    except desktop.GuiUnavailable as exc:
        raise _refuse("opcua gui", str(exc), 1) from None
    security = _security(security_policy, security_mode, username, password_env, user_cert, user_key, client_cert,
                         client_key, server_cert)
    if url is not None:
        if device is not None or config is not None:
            raise _refuse("opcua gui", "give a URL or --device (with --config), not both", 2)
        endpoint, state_dir = _url_endpoint("opcua gui", url, timeout, security), data_dir or Path("var")
    else:
        taken = {"timeout_s": timeout, "data_dir": data_dir, **security}
        given = next((k for k, v in taken.items() if v is not None), None)
        if given is not None:
            raise _refuse("opcua gui", f"{_OPTIONS.get(given, '--data-dir')} goes with a URL: a device takes its "
                                       "settings from gateway.toml", 2)
        endpoint, state_dir = _device_endpoint(config or Path("gateway.toml"), device)
    try:
        desktop.require_display(os.environ)
    except desktop.GuiUnavailable as exc:
        raise _refuse("opcua gui", str(exc), 1) from None
    if endpoint.password_env and endpoint.password_env not in os.environ:
        raise _refuse("opcua gui", f"device {endpoint.name!r}: environment variable {endpoint.password_env} (the "
                                   f"password of {endpoint.who}) is not set", 1)
    asyncua_log = logging.getLogger("asyncua")
    level = asyncua_log.level
    asyncua_log.setLevel(logging.CRITICAL)  # a refusal is said once, in our line, not again by asyncua
    try:
        asyncio.run(desktop.check_endpoint(endpoint, state_dir))
    except BrowseError as exc:
        raise _refuse("opcua gui", str(exc), 1) from None
    finally:
        asyncua_log.setLevel(level)
    code = desktop.open_window(endpoint, state_dir)
    if code:
        raise typer.Exit(code)
