"""gateway.toml: one file, validated by pydantic with unknown keys rejected; secrets come from the environment."""

from __future__ import annotations

import importlib.util
import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from collectors.registry import DeviceConfig as AnyDeviceConfig
from crm_bridge.notify.config import ChannelConfig, NotifyConfig
from gateway.outbox import DropPolicy
from gateway.store.influx_config import InfluxStoreConfig

# What `load_config(..., secrets=...)` checks in the environment: each command asks only for what it uses.
SecretKind = Literal["api", "store", "database", "devices", "notify"]
ALL_SECRETS: frozenset[SecretKind] = frozenset({"api", "store", "database", "devices", "notify"})

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
_LOGGER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*")


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
    # False on an API-only process: it knows the meters and devices (for the portal and queries) but polls none.
    collect: bool = True
    # What `energy-gateway run` runs (its --role wins): "all", everything the switches here and in [api] enable;
    # "collector", only meters -> outbox -> store, with /metrics, /health and /ready on [api] host:port, and without
    # the web stack, the registry database or the scheduler (gateway.collector_role).
    role: Literal["all", "collector"] = "all"
    log_level: LogLevel = "INFO"  # the gateway's own loggers (gateway, collectors, forecasting, ...)
    # Any logger by name, e.g. {asyncua = "INFO"}: the chatty libraries are at WARNING unless named here.
    log_levels: dict[str, LogLevel] = {}
    # "json": one JSON object per line (for journald/Docker log shippers); "text": one readable line per record.
    log_format: Literal["text", "json"] = "text"
    environment: Literal["development", "production"] = "production"

    _tz = field_validator("timezone")(_check_tz)

    @field_validator("log_levels")
    @classmethod
    def _logger_names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [name for name in value if not _LOGGER_NAME.fullmatch(name)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a logger name (dotted words, such as 'uvicorn.access')")
        return value


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
    # Back-pressure: when the backlog grows this far above its low point while the store takes writes, every device
    # polls more slowly, by the same factor, up to max_slowdown (never during a store outage: the outbox holds that).
    high_water: int = Field(200_000, gt=0)
    max_slowdown: float = Field(10.0, ge=1, le=100)
    # SIGTERM's flush: seconds to deliver what the store takes; the rest stays in the outbox for the next start.
    stop_flush_s: float = Field(10.0, gt=0, le=600)
    # Where the collector role's store writer (outbox -> store) runs: "thread", in the collector's process (one
    # process: 98 MB at 200 devices x 50 points; back-pressure keeps the writer its share, 46.6k stored/s under
    # 10x overload); "process", a process of its own, so that collection cannot take its CPU at all (59k/s under
    # the same overload, for about 80 MB more). The full gateway (role "all") writes from a thread. bench/collect.py
    # and bench/vs_thingsboard.py --store-writer measure both.
    store_writer: Literal["thread", "process"] = "thread"


def _network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address or network (such as 10.0.0.5 or 10.0.0.0/24)") from None


class ApiConfig(_Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    secret_key_env: str = "GATEWAY_SECRET_KEY"  # noqa: S105 - the name of the variable, not a secret
    public_url: str = ""
    warm_days: int = Field(31, ge=0, le=366)  # day curves computed ahead at start, so first users wait for none
    # Reverse proxies whose X-Forwarded-For is believed (addresses or networks); empty: the peer is the client.
    trusted_proxies: list[Annotated[str, AfterValidator(_network)]] = []
    session_idle_timeout_s: float = Field(1800.0, gt=0, allow_inf_nan=False)
    session_absolute_timeout_s: float = Field(43200.0, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _timeouts(self) -> ApiConfig:
        if self.session_absolute_timeout_s < self.session_idle_timeout_s:
            raise ValueError(f"session_absolute_timeout_s ({self.session_absolute_timeout_s:g}) is shorter than "
                             f"session_idle_timeout_s ({self.session_idle_timeout_s:g})")
        return self


# The registry's databases and their drivers (SQLAlchemy names -> the module each needs); "" is the default.
_DB_DRIVERS = {
    "sqlite": {"": "sqlite3", "pysqlite": "sqlite3"},
    "postgresql": {"": "psycopg2", "psycopg": "psycopg", "psycopg2": "psycopg2", "pg8000": "pg8000"},
}
_DB_URL = re.compile(r"(?P<db>[A-Za-z][A-Za-z0-9_]*)(?:\+(?P<driver>[A-Za-z0-9_]+))?://(?P<rest>.*)", re.DOTALL)


def database_url_problem(url: str) -> str | None:
    """Why `url` cannot open the registry (without echoing it: it may hold a password), or None."""
    m = _DB_URL.fullmatch(url.strip())
    if m is None:
        return "not a database URL (sqlite:///path/gateway.db or postgresql+psycopg://user@host/db)"
    db, driver, rest = m["db"].lower(), (m["driver"] or "").lower(), m["rest"]
    if db not in _DB_DRIVERS:
        return f"unknown database {db!r} (use sqlite or postgresql)"
    drivers = _DB_DRIVERS[db]
    installed = [f"{db}+{d}" for d, mod in drivers.items() if d and importlib.util.find_spec(mod) is not None]
    if driver not in drivers:
        return f"unknown driver {driver!r} for {db} (installed: {', '.join(installed) or 'none'})"
    if importlib.util.find_spec(drivers[driver]) is None:
        return (f"driver {drivers[driver]!r} ({db}+{driver or drivers[driver]}) is not installed"
                + (f" (installed: {', '.join(installed)})" if installed else ""))
    if db == "sqlite" and rest and not rest.startswith("/"):
        return "a SQLite URL is sqlite:///relative/path.db or sqlite:////absolute/path.db"
    if db == "postgresql":
        try:
            urlsplit(f"x://{rest}").port  # noqa: B018 - parsing is the check
        except ValueError:
            return "the port is not a number between 0 and 65535"
    return None


def _check_db_url(url: str) -> str:
    problem = database_url_problem(url)
    if problem is not None:
        raise ValueError(problem)
    return url


class DatabaseConfig(_Strict):
    """The relational database (CRM registry, users, tickets, alerts). SQLite by default."""

    url: str = "sqlite:///{data_dir}/gateway.db"
    url_env: str = ""  # name of an env var holding the URL (e.g. with a PostgreSQL password); wins when set

    _url = field_validator("url")(_check_db_url)

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
    # How far from a 15-min boundary a register reading may be to count as the register at it (else 3 polls).
    boundary_tolerance_s: float | None = Field(None, gt=0, le=60, allow_inf_nan=False)
    # billing: counts in its site's and customer's energy (the bill); sub: a meter on a line behind a billing meter,
    # summed only for a site without a billing meter (gateway.query.Topology.meters_of has the rule).
    role: Literal["billing", "sub"] = "billing"


class QueryConfig(_Strict):
    """Interval energy: how long a gap may be estimated across, and how much power a register-less meter needs."""

    max_estimate_s: float = Field(3600.0, ge=0, le=604800, allow_inf_nan=False)
    min_power_coverage: float = Field(0.9, gt=0, le=1, allow_inf_nan=False)


# One entry per device; `type` selects the collector plugin (collectors/registry.py).
DeviceConfig = Annotated[AnyDeviceConfig, Field(discriminator="type")]


class GatewayConfig(_Strict):
    gateway: GatewaySection = GatewaySection()
    store: StoreConfig = EmbeddedStoreConfig()
    outbox: OutboxConfig = OutboxConfig()
    api: ApiConfig = ApiConfig()
    database: DatabaseConfig = DatabaseConfig()
    forecast: ForecastConfig = ForecastConfig()
    query: QueryConfig = QueryConfig()
    notify: NotifyConfig = NotifyConfig()  # crm_bridge/notify/config.py: channels, role defaults, escalation
    customers: list[CustomerConfig] = []
    sites: list[SiteConfig] = []
    meters: list[MeterConfig] = []
    devices: list[DeviceConfig] = []

    @model_validator(mode="after")
    def _cross_checks(self) -> GatewayConfig:
        problems = list(_cross_entry_problems(self))
        if problems:
            # parse_config reports each (key path, reason) on its own line, from the context.
            raise PydanticCustomError("cross_entry", "{summary}",
                                      {"summary": "; ".join(f"{w}: {y}" for w, y in problems), "problems": problems})
        return self

    # -- conveniences ------------------------------------------------------------------------------
    def data_path(self, p: Path) -> Path:
        return p if p.is_absolute() else self.gateway.data_dir / p


def _cross_entry_problems(cfg: GatewayConfig) -> Iterator[tuple[str, str]]:
    """Duplicate ids, dangling references, two devices at one address, points past the last register."""
    for section, items in (("customers", cfg.customers), ("sites", cfg.sites), ("meters", cfg.meters),
                           ("devices", cfg.devices)):
        first: dict[str, int] = {}
        for idx, item in enumerate(items):
            key = str(getattr(item, "id", None) or getattr(item, "name", ""))
            if key in first:
                what = "name" if section == "devices" else "id"
                yield f"{section}[{idx}]", f"duplicate {what} {key!r} (first at {section}[{first[key]}])"
            else:
                first[key] = idx
    customers = {c.id for c in cfg.customers}
    sites = {s.id for s in cfg.sites}
    devices = {d.name for d in cfg.devices}
    for idx, s in enumerate(cfg.sites):
        if s.customer not in customers:
            yield f"sites[{idx}].customer", f"unknown customer {s.customer!r}"
    used: dict[str, int] = {}
    for idx, m in enumerate(cfg.meters):
        if m.site not in sites:
            yield f"meters[{idx}].site", f"unknown site {m.site!r}"
        if m.device not in devices:
            yield f"meters[{idx}].device", f"unknown device {m.device!r}"
        elif m.device in used:
            yield f"meters[{idx}].device", f"device {m.device!r} is already meters[{used[m.device]}]"
        else:
            used[m.device] = idx
    yield from _billing_problems(cfg)
    identities: dict[str, int] = {}
    for idx, d in enumerate(cfg.devices):
        where = f"devices[{idx}] ({d.name!r})"
        for key, why in d.entry_problems():
            yield f"{where}.{key}", why
        if (identity := d.identity()) is None:
            continue  # entries that may share an address (one OPC UA server serves many meters)
        key, spelled, host = identity
        if key in identities:
            earlier = identities[key]
            first_host = (cfg.devices[earlier].identity() or ("", "", None))[2]
            also = f" ({first_host!r} is this machine too)" if first_host not in (None, host) else ""
            yield f"devices[{idx}]", f"same address {spelled} as devices[{earlier}]{also}"
        else:
            identities[key] = idx


def _billing_problems(cfg: GatewayConfig) -> Iterator[tuple[str, str]]:
    """A customer with meters must have a billing meter: its bill sums only those."""
    site_customer = {s.id: s.customer for s in cfg.sites}
    meters: dict[str, list[str]] = {}
    billed: set[str] = set()
    for m in cfg.meters:
        customer = site_customer.get(m.site)
        if customer is not None:
            meters.setdefault(customer, []).append(m.id)
            if m.role == "billing":
                billed.add(customer)
    for idx, c in enumerate(cfg.customers):
        if c.id in meters and c.id not in billed:
            names = ", ".join(repr(m) for m in meters[c.id])
            yield (f"customers[{idx}]", f"customer {c.id!r} has meters ({names}) but none with role = \"billing\": "
                                        "its bill would be empty")


def _union_tags(*unions: Any) -> frozenset[str]:
    """The `type` tags of the members of discriminated unions (pydantic puts them in error locations)."""
    tags: set[str] = set()
    for union in unions:
        members = get_args(get_args(union)[0]) if get_origin(union) is Annotated else get_args(union)
        for member in members:
            tags.update(get_args(member.model_fields["type"].annotation))
    return frozenset(tags)


_UNION_TAGS = _union_tags(StoreConfig, DeviceConfig, ChannelConfig)


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
        if isinstance(node, dict) and item not in node and item in _UNION_TAGS:
            continue  # discriminated-union tag, not a key the user wrote
        parts.append(str(item))
        node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts)


def _non_finite(node: Any, path: tuple[int | str, ...] = ()) -> Iterator[tuple[tuple[int | str, ...], float]]:
    """Every inf or nan in the raw TOML (TOML allows them; no setting of ours means anything with them)."""
    if isinstance(node, float) and not math.isfinite(node):
        yield path, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _non_finite(value, (*path, key))
    elif isinstance(node, list):
        for idx, value in enumerate(node):
            yield from _non_finite(value, (*path, idx))


def parse_config(raw: Mapping[str, Any], path: Path | str = "<config>") -> GatewayConfig:
    non_finite = {_loc(where, raw): f"must be a finite number, not {value}" for where, value in _non_finite(raw)}
    try:
        cfg = GatewayConfig.model_validate(raw)
    except ValidationError as exc:
        problems: list[tuple[str, str]] = []
        for err in exc.errors():
            if err["type"] == "cross_entry":
                problems += err.get("ctx", {})["problems"]
                continue
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            where = _loc(tuple(err["loc"]), raw)
            if where in non_finite:
                continue  # said once below, as what it is (pydantic says "less than ..." of a nan)
            problems.append((where, msg))
        raise ConfigError(path, [*non_finite.items(), *problems]) from None
    if non_finite:
        raise ConfigError(path, list(non_finite.items()))
    return cfg


def load_config(path: Path | str, environ: Mapping[str, str] | None = None,
                secrets: Collection[SecretKind] = ALL_SECRETS) -> GatewayConfig:
    """Read and validate gateway.toml. Relative paths in it are relative to the file's folder.

    `environ` (default: os.environ) must hold every secret variable the file names among `secrets`: the API
    signing key ("api", outside development), the store's password or token ("store"), the database URL
    ("database") and the devices' passwords ("devices"). Commands ask only for what they use.
    """
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
    problems = path_problems(cfg, raw)
    problems += secret_problems(cfg, os.environ if environ is None else environ, secrets)
    if problems:
        raise ConfigError(p, problems)
    return cfg


def _blocker(p: Path) -> Path | None:
    """The nearest existing ancestor of `p` when it is not a folder (so `p` can never be made), else None."""
    for parent in p.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def path_problems(cfg: GatewayConfig, raw: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
    """Paths the gateway cannot use: a data folder that is a file, a database file that is a folder, ...

    Messages name the paths as the file wrote them; nothing is created here.
    """
    raw = raw or {}

    def written(section: str, key: str, default: Path | str) -> str:
        value = raw.get(section, {}).get(key, default) if isinstance(raw.get(section), dict) else default
        return str(value)

    data_dir = cfg.gateway.data_dir
    shown = written("gateway", "data_dir", "var")
    if data_dir.exists() and not data_dir.is_dir():
        return [("gateway.data_dir", f"{shown!r} is a file, not a folder")]
    if (blocker := _blocker(data_dir)) is not None:
        return [("gateway.data_dir", f"{shown!r} cannot be made: {blocker.name!r} on its way is a file")]
    files: list[tuple[str, Path, str]] = [("outbox.path", cfg.outbox.path, written("outbox", "path", "outbox.db"))]
    if isinstance(cfg.store, EmbeddedStoreConfig):
        files.append(("store.path", cfg.store.path, written("store", "path", "timeseries.db")))
    problems: list[tuple[str, str]] = []
    for key, value, shown in files:
        full = cfg.data_path(value)
        if full.is_dir():
            problems.append((key, f"{shown!r} is a folder; it must name a database file"))
        elif (blocker := _blocker(full)) is not None:
            problems.append((key, f"{shown!r} cannot be made: {blocker.name!r} on its way is a file"))
    plans = cfg.data_path(cfg.forecast.plans_dir)
    if plans.exists() and not plans.is_dir():
        shown = written("forecast", "plans_dir", "plans")
        problems.append(("forecast.plans_dir", f"{shown!r} is a file, not a folder"))
    return problems


def secret_problems(cfg: GatewayConfig, environ: Mapping[str, str],
                    secrets: Collection[SecretKind] = ALL_SECRETS) -> list[tuple[str, str]]:
    """Every secret variable the config names must be set (the API key may be missing in development only)."""
    problems: list[tuple[str, str]] = []

    def need(where: str, name: str) -> str | None:
        value = environ.get(name, "")
        if not value:
            problems.append((where, f"environment variable {name} is not set"))
            return None
        return value

    if "api" in secrets and cfg.api.enabled and cfg.gateway.environment == "production":
        key = need("api.secret_key_env", cfg.api.secret_key_env)
        if key is not None and (key.lower() in {"changeme", "change-me", "secret", "password"} or len(key) < 16):
            problems.append(("api.secret_key_env", f"{cfg.api.secret_key_env} is a placeholder or shorter than 16"))
    if "store" in secrets and isinstance(cfg.store, InfluxStoreConfig):
        for key in ("password_env", "token_env"):
            if name := getattr(cfg.store, key):
                need(f"store.{key}", name)
    if "database" in secrets and cfg.database.url_env:
        url = need("database.url_env", cfg.database.url_env)
        if url is not None and (why := database_url_problem(url)) is not None:
            problems.append(("database.url_env", f"{cfg.database.url_env} holds no usable database URL: {why}"))
    if "devices" in secrets:
        for idx, d in enumerate(cfg.devices):
            for key, var in d.secret_envs():
                need(f"devices[{idx}] ({d.name!r}).{key}", var)
    if "notify" in secrets and cfg.notify.enabled:
        for where, var in cfg.notify.secret_envs():
            need(where, var)
    return problems


def check_secrets(cfg: GatewayConfig, path: Path | str, environ: Mapping[str, str],
                  secrets: Collection[SecretKind] = ALL_SECRETS) -> None:
    """Refuse to go on without the secrets the config names (ConfigError listing each missing one)."""
    problems = secret_problems(cfg, environ, secrets)
    if problems:
        raise ConfigError(path, problems)
