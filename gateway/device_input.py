"""What the device tools (Modbus probe, OPC UA browse) accept, checked in one place for the CLI and the API."""

from __future__ import annotations

import importlib
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import typer
import typer.core
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

if TYPE_CHECKING:
    from collectors.modbus.probe import ProbeRequest

MAX_HOST = 253  # characters of the ASCII (IDNA) form, RFC 1035
MAX_LABEL = 63
MAX_URL = 300
MODBUS_PORT = 502
OPCUA_PORT = 4840
OPCUA_SCHEME = "opc.tcp://"
OPCUA_URL_FORM = "opc.tcp://host[:port][/path]"

# Letters, digits, '-' (not at either end) and '_' (found in plant host names, harmless to resolvers).
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?")
_ZONE = re.compile(r"[A-Za-z0-9_.-]{1,32}")  # IPv6 zone: an interface name or number


class InvalidInput(ValueError):
    """An address or parameter a device tool refuses before any connection; `where` names the field."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where


def shown(text: str, limit: int = 64) -> str:
    """`text` quoted for a one-line message: control characters escaped, long text cut."""
    return repr(text if len(text) <= limit else f"{text[:limit - 3]}...")


def check_host(text: str, where: str = "host") -> str:
    """A host name (non-ASCII names through IDNA), an IPv4 or an IPv6 address -> the ASCII form to connect to."""
    if not text:
        raise InvalidInput(where, "no host given")
    if text.startswith("[") and text.endswith("]"):
        if ":" not in text:
            raise InvalidInput(where, f"host {shown(text)}: brackets are for IPv6 addresses only")
        return _check_ipv6(text[1:-1], text, where)
    if ":" in text:
        return _check_ipv6(text, text, where)
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        pass
    name = text.removesuffix(".")  # a fully qualified name may end with the root's dot
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError as exc:
            reason = exc.__cause__ or exc  # the codec wraps the reason: "label too long", "Invalid character"
            raise InvalidInput(where, f"host {shown(text)} is not a valid internationalised domain name "
                                      f"({reason})") from None
    if len(name) > MAX_HOST:
        form = "" if name == text.removesuffix(".") else " in its IDNA form"
        raise InvalidInput(where, f"host {shown(text)} is {len(name)} characters long{form}, at most {MAX_HOST}")
    labels = name.split(".")
    for label in labels:
        if not label:
            raise InvalidInput(where, f"host {shown(text)} has an empty label (a leading dot or two dots in a row)")
        if len(label) > MAX_LABEL:
            raise InvalidInput(where, f"host {shown(text)}: label {shown(label, 24)} is {len(label)} characters "
                                      f"long, at most {MAX_LABEL}")
        if not _LABEL.fullmatch(label):
            raise InvalidInput(where, f"host {shown(text)}: label {shown(label, 24)} may hold only letters, "
                                      "digits, '-' and '_', and may not start or end with '-'")
    if labels[-1].isdigit():
        raise InvalidInput(where, f"host {shown(text)} is neither an IPv4 address nor a host name "
                                  "(a name does not end in a number)")
    return name + ("." if text.endswith(".") else "")


def _check_ipv6(bare: str, text: str, where: str) -> str:
    address, sep, zone = bare.partition("%")
    if sep and not _ZONE.fullmatch(zone):
        raise InvalidInput(where, f"host {shown(text)}: IPv6 zone {shown(zone, 24)} may hold only letters, digits, "
                                  "'.', '-' and '_'")
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        hint = " (the port goes in its own field)" if bare.count(":") == 1 else ""
        raise InvalidInput(where, f"host {shown(text)} is not a valid IPv6 address{hint}") from None
    return bare


def check_port(value: int | str, where: str = "port") -> int:
    """A TCP port, 1..65535 (given as a number or as the text after ':')."""
    if isinstance(value, str):
        if not value:
            raise InvalidInput(where, "no port after ':'")
        if not (value.isascii() and value.isdigit()):
            raise InvalidInput(where, f"port {shown(value, 24)} is not a number")
        if len(value) > 5:
            raise InvalidInput(where, f"port {shown(value, 24)} is not in 1..65535")
        value = int(value)
    if not 1 <= value <= 65535:
        raise InvalidInput(where, f"port {value} is not in 1..65535")
    return value


def parse_target(text: str, default_port: int) -> tuple[str, int]:
    """HOST, HOST:PORT, IPv6, [IPv6] or [IPv6]:PORT -> (ASCII host, port)."""
    port_text: str | None = None
    if text.startswith("["):
        inner, close, rest = text[1:].partition("]")
        if not close:
            raise InvalidInput("host", f"{shown(text)}: '[' without its ']'")
        if rest and not rest.startswith(":"):
            raise InvalidInput("host", f"{shown(text)}: only ':PORT' may follow ']'")
        host = check_host(f"[{inner}]")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host_text, port_text = text.split(":")
        host = check_host(host_text)
    else:
        host = check_host(text)  # a bare IPv6 address has no port
    return host, default_port if port_text is None else check_port(port_text)


@dataclass(frozen=True, slots=True)
class OpcUaUrl:
    """A checked opc.tcp URL: ASCII host (IPv6 without brackets), port, path ('' or starting with '/')."""

    host: str
    port: int
    path: str

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{OPCUA_SCHEME}{host}:{self.port}{self.path}"


def parse_opcua_url(text: str, where: str = "url") -> OpcUaUrl:
    """`opc.tcp://host[:port][/path]` with a real host (port 4840 by default) -> OpcUaUrl."""
    if len(text) > MAX_URL:
        raise InvalidInput(where, f"URL is {len(text)} characters long, at most {MAX_URL}")
    if not text.startswith(OPCUA_SCHEME):
        raise InvalidInput(where, f"{shown(text)} is not an {OPCUA_URL_FORM} URL")
    authority, slash, path = text[len(OPCUA_SCHEME):].partition("/")
    if not authority:
        raise InvalidInput(where, f"{shown(text)} names no host ({OPCUA_URL_FORM})")
    if "@" in authority:
        raise InvalidInput(where, f"{shown(text)}: no user name or password in the URL (browsing is anonymous)")
    bad = next((c for c in path if c in "?#" or c.isspace() or not c.isprintable()), None)
    if bad is not None:
        raise InvalidInput(where, f"{shown(text)}: the path may not hold {bad!r}")
    try:
        host, port = parse_target(authority, OPCUA_PORT)
    except InvalidInput as exc:
        raise InvalidInput(where, f"{shown(text)}: {exc}") from None
    return OpcUaUrl(host, port, slash + path)


def _for_pydantic(check: Callable[[str], str]) -> Callable[[str], str]:
    def run(value: str) -> str:
        try:
            return check(value)
        except InvalidInput as exc:
            # The reason goes in the context, not the template: user text may hold braces.
            raise PydanticCustomError("invalid_address", "{reason}", {"reason": str(exc)}) from None

    return run


Host = Annotated[str, Field(min_length=1, max_length=MAX_HOST, description="host name (IDNA), IPv4 or IPv6 address"),
                 AfterValidator(_for_pydantic(check_host))]


class ProbeParams(BaseModel):
    """One Modbus probe: which device (by the transport keys of a Modbus device entry), which registers, how long."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    transport: Literal["tcp", "rtu_over_tcp", "rtu"] = Field(
        "tcp", description="tcp, rtu_over_tcp (serial gateway) or rtu (local serial port)")
    host: Host | None = Field(None, validate_default=True, description="device or gateway (tcp, rtu_over_tcp)")
    port: int = Field(MODBUS_PORT, ge=1, le=65535)
    serial_port: str | None = Field(None, min_length=1, max_length=255, validate_default=True,
                                    description="e.g. /dev/ttyUSB0 (rtu)")
    baudrate: int = Field(9600, ge=300, le=4_000_000, description="serial line speed (rtu)")
    parity: Literal["N", "E", "O"] = Field("N", description="serial parity (rtu)")
    unit: int = Field(1, ge=0, le=255, description="Modbus unit (slave) id")
    address: int = Field(0, ge=0, le=65535, description="0-based register address (40001/30001 is 0)")
    count: int = Field(4, ge=1, le=125, description="registers (or bits, functions 1 and 2) to read")
    function: int = Field(3, ge=1, le=4, description="1: coils, 2: discrete inputs, 3: holding registers, "
                                                     "4: input registers")
    timeout_s: float = Field(2.0, ge=0.05, le=10, description="seconds to wait for the connection and the answer")

    @field_validator("host")
    @classmethod
    def _host_for_a_network_link(cls, host: str | None, info: ValidationInfo) -> str | None:
        transport = info.data.get("transport", "tcp")
        if host is None and transport != "rtu":
            raise PydanticCustomError("missing", "Field required (transport {transport} needs a host)",
                                      {"transport": transport})
        return host

    @field_validator("serial_port")
    @classmethod
    def _serial_port_for_rtu(cls, serial_port: str | None, info: ValidationInfo) -> str | None:
        if serial_port is None and info.data.get("transport") == "rtu":
            raise PydanticCustomError("missing", "Field required (transport rtu needs a serial port)")
        return serial_port

    def request(self) -> ProbeRequest:
        """The collectors' probe request for this checked input (pymodbus is imported only now)."""
        from collectors.modbus.config import Transport
        from collectors.modbus.probe import ProbeRequest

        return ProbeRequest(transport=Transport(self.transport), host=self.host, port=self.port,
                            serial_port=self.serial_port, baudrate=self.baudrate, parity=self.parity,
                            unit=self.unit, function=self.function, address=self.address, count=self.count,
                            timeout_s=self.timeout_s)

    @field_validator("count")
    @classmethod
    def _inside_the_register_space(cls, count: int, info: ValidationInfo) -> int:
        address = info.data.get("address")
        if isinstance(address, int) and address + count > 65536:
            raise PydanticCustomError("register_range", "{reason}", {
                "reason": f"registers {address}..{address + count - 1} run past the last register, 65535"})
        return count


def first_problem(exc: ValidationError, names: dict[str, str] | None = None) -> str:
    """The first error of a validation as one line `where: why`, fields renamed (to CLI options) by `names`."""
    err = exc.errors()[0]
    field = str(err["loc"][0]) if err["loc"] else "input"
    return f"{(names or {}).get(field, field)}: {err['msg']}"


# Newer typer carries its own copy of click (typer._click); older ones use click itself.
_USAGE_ERROR: type[Exception] = (getattr(typer.core, "_click", None)
                                 or importlib.import_module("click")).exceptions.UsageError


class OneLineUsage(typer.core.TyperCommand):
    """A command whose usage errors are one line on stderr and exit 2, like its other refusals, not a panel."""

    tool: ClassVar[str] = ""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except _USAGE_ERROR as exc:
            message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
            typer.echo(f"{self.tool or self.name}: {message}", err=True)
            raise typer.Exit(2) from None
