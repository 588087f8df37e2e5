"""gateway.toml: one file, validated by pydantic with unknown keys rejected; secrets come from the environment."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from collectors.modbus.config import ModbusDeviceConfig
from collectors.opcua.config import OpcUaDeviceConfig
from gateway.outbox import DropPolicy
from gateway.store.influx import InfluxStoreConfig


class ConfigError(Exception):
    """The configuration cannot be used. `problems` lists (key path, reason); str() names the file too."""

    def __init__(self, path: Path | str, problems: list[tuple[str, str]]) -> None:
        self.path = str(path)
        self.problems = problems
        lines = [f"{self.path}: {len(problems)} error{'s' if len(problems) != 1 else ''}"]
        lines += [f"  {self.path}: {where}: {why}" if where else f"  {self.path}: {why}" for where, why in problems]
        super().__init__("\n".join(lines))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_tz(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as 'Asia/Shanghai')") from None
    return value


class GatewaySection(_Strict):
    name: str = "energy-gateway"
    data_dir: Path = Path("var")
    timezone: str = "Asia/Shanghai"
    # Exactly one process of a deployment runs the scheduler (forecasts, alerts, tiering); the rest set false.
    run_scheduler: bool = True
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    environment: Literal["development", "production"] = "production"

    _tz = field_validator("timezone")(_check_tz)


class EmbeddedStoreConfig(_Strict):
    type: Literal["embedded"] = "embedded"
    path: Path = Path("timeseries.db")


StoreConfig = Annotated[EmbeddedStoreConfig | InfluxStoreConfig, Field(discriminator="type")]


class OutboxConfig(_Strict):
    path: Path = Path("outbox.db")
    max_rows: int = Field(5_000_000, gt=0)
    max_age_s: float = Field(7 * 24 * 3600, gt=0)
    policy: DropPolicy = DropPolicy.DROP_OLDEST
    batch_size: int = Field(5000, gt=0, le=100_000)
    commit_interval_s: float = Field(0.05, gt=0, le=5)


class ApiConfig(_Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    secret_key_env: str = "GATEWAY_SECRET_KEY"  # noqa: S105 - the name of the variable, not a secret
    public_url: str = ""
    warm_days: int = Field(31, ge=0, le=366)  # day curves computed ahead at start, so first users wait for none


class DatabaseConfig(_Strict):
    """The relational database (CRM registry, users, tickets, alerts). SQLite by default."""

    url: str = "sqlite:///{data_dir}/gateway.db"
    url_env: str = ""  # name of an env var holding the URL (e.g. with a PostgreSQL password); wins when set

    def resolve(self, data_dir: Path, environ: Mapping[str, str]) -> str:
        if self.url_env and environ.get(self.url_env):
            return environ[self.url_env]
        return self.url.replace("{data_dir}", str(data_dir))


class ForecastConfig(_Strict):
    """Day-ahead forecasting job: history window, holiday calendar, and where batches run."""

    history_days: int = Field(56, ge=14, le=730)
    holidays_country: str = "CN"
    dask_scheduler: str = ""  # e.g. "tcp://10.0.0.5:8786"; empty: a local process pool
    plans_dir: Path = Path("plans")  # <customer>.csv production plans (start[,end],operating,...)


class CustomerConfig(_Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    name: str = ""
    timezone: str = "Asia/Shanghai"
    language: Literal["zh", "en"] = "zh"

    _tz = field_validator("timezone")(_check_tz)


class SiteConfig(_Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    customer: str
    name: str = ""


class MeterConfig(_Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    site: str
    device: str
    name: str = ""


# One entry per device; `type` selects the collector.
DeviceConfig = Annotated[ModbusDeviceConfig | OpcUaDeviceConfig, Field(discriminator="type")]


class GatewayConfig(_Strict):
    gateway: GatewaySection = GatewaySection()
    store: StoreConfig = EmbeddedStoreConfig()
    outbox: OutboxConfig = OutboxConfig()
    api: ApiConfig = ApiConfig()
    database: DatabaseConfig = DatabaseConfig()
    forecast: ForecastConfig = ForecastConfig()
    customers: list[CustomerConfig] = []
    sites: list[SiteConfig] = []
    meters: list[MeterConfig] = []
    devices: list[DeviceConfig] = []

    @model_validator(mode="after")
    def _cross_checks(self) -> GatewayConfig:
        problems: list[str] = []
        for section, items in (("customers", self.customers), ("sites", self.sites), ("meters", self.meters),
                               ("devices", self.devices)):
            first: dict[str, int] = {}
            for idx, item in enumerate(items):
                key = str(getattr(item, "id", None) or getattr(item, "name", ""))
                if key in first:
                    what = "name" if section == "devices" else "id"
                    problems.append(f"{section}[{idx}]: duplicate {what} {key!r} (first at {section}[{first[key]}])")
                else:
                    first[key] = idx
        customers = {c.id for c in self.customers}
        sites = {s.id for s in self.sites}
        devices = {d.name for d in self.devices}
        for idx, s in enumerate(self.sites):
            if s.customer not in customers:
                problems.append(f"sites[{idx}].customer: unknown customer {s.customer!r}")
        used: dict[str, int] = {}
        for idx, m in enumerate(self.meters):
            if m.site not in sites:
                problems.append(f"meters[{idx}].site: unknown site {m.site!r}")
            if m.device not in devices:
                problems.append(f"meters[{idx}].device: unknown device {m.device!r}")
            elif m.device in used:
                problems.append(f"meters[{idx}].device: device {m.device!r} is already meters[{used[m.device]}]")
            else:
                used[m.device] = idx
        addresses: dict[str, int] = {}
        for idx, d in enumerate(self.devices):
            if isinstance(d, OpcUaDeviceConfig):
                continue
            addr = _device_address(d)
            if addr in addresses:
                problems.append(f"devices[{idx}]: same address {addr} as devices[{addresses[addr]}]")
            else:
                addresses[addr] = idx
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # -- conveniences ------------------------------------------------------------------------------
    def data_path(self, p: Path) -> Path:
        return p if p.is_absolute() else self.gateway.data_dir / p

    def tags_by_device(self) -> dict[str, tuple[str, str, str]]:
        """Device -> (customer, site, meter), for tagging readings."""
        site_customer = {s.id: s.customer for s in self.sites}
        return {m.device: (site_customer.get(m.site, ""), m.site, m.id) for m in self.meters}


def _device_address(d: ModbusDeviceConfig | OpcUaDeviceConfig) -> str:
    if isinstance(d, OpcUaDeviceConfig):
        return f"opcua {d.url}"  # one endpoint may serve many meters; the check is for Modbus units
    dumped = d.model_dump()
    transport = dumped.get("transport", "tcp")
    where = dumped.get("serial_port") if transport == "rtu" else f"{dumped.get('host')}:{dumped.get('port')}"
    return f"modbus {transport} {where} unit {dumped.get('unit')}"


def _loc(loc: tuple[int | str, ...], raw: Mapping[str, Any]) -> str:
    """('devices', 0, 'modbus', 'port') -> 'devices[0].port' (union tags dropped), with the device name."""
    parts: list[str] = []
    node: Any = raw
    for item in loc:
        if isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]" if parts else f"[{item}]"
            node = node[item] if isinstance(node, list) and item < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("name") or node.get("id"), str):
                parts[-1] += f" ({node.get('name') or node.get('id')!r})"
            continue
        if isinstance(node, dict) and item not in node and item in ("modbus", "opcua", "embedded", "influxdb"):
            continue  # discriminated-union tag, not a key the user wrote
        parts.append(str(item))
        node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts)


def parse_config(raw: Mapping[str, Any], path: Path | str = "<config>") -> GatewayConfig:
    try:
        cfg = GatewayConfig.model_validate(raw)
    except ValidationError as exc:
        problems: list[tuple[str, str]] = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            where = _loc(tuple(err["loc"]), raw)
            if not where and "; " in msg:  # cross-entry checks: one problem per line
                for part in msg.split("; "):
                    w, _, why = part.partition(": ")
                    problems.append((w, why))
                continue
            problems.append((where, msg))
        raise ConfigError(path, problems) from None
    return cfg


def load_config(path: Path | str, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """Read and validate gateway.toml. Relative paths in it are relative to the file's folder."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(p, [("", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(p, [("", f"cannot read: {exc}")]) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(p, [("", f"TOML syntax error: {exc}")]) from None
    cfg = parse_config(raw, p)
    data_dir = cfg.gateway.data_dir
    if not data_dir.is_absolute():
        data_dir = (p.parent / data_dir).resolve()
    gw = cfg.gateway.model_copy(update={"data_dir": data_dir})
    cfg = cfg.model_copy(update={"gateway": gw})
    check_secrets(cfg, p, os.environ if environ is None else environ)
    return cfg


def check_secrets(cfg: GatewayConfig, path: Path | str, environ: Mapping[str, str]) -> None:
    """Outside development, refuse to start without real secrets (never a placeholder)."""
    problems: list[tuple[str, str]] = []
    if cfg.api.enabled and cfg.gateway.environment == "production":
        key = environ.get(cfg.api.secret_key_env, "")
        if not key:
            problems.append(("api.secret_key_env", f"environment variable {cfg.api.secret_key_env} is not set"))
        elif key.lower() in {"changeme", "change-me", "secret", "password"} or len(key) < 16:
            problems.append(("api.secret_key_env", f"{cfg.api.secret_key_env} is a placeholder or shorter than 16"))
    if problems:
        raise ConfigError(path, problems)
