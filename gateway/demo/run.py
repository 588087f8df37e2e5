"""`energy-gateway demo`: the whole product on embedded defaults, with simulated meters on loopback.

First start: writes DIR/gateway.toml (two customers, Modbus and OPC UA meters), backfills 60 days of simulated
history straight into the embedded store (with a progress bar in a terminal), seeds the CRM registry and demo
logins, whose passwords are kept in DIR/demo-logins.json so a restart keeps them. Every start: runs the plant
simulators, then the real gateway (collectors, outbox, store, scheduler, API/portal) against them, and once the
portal answers prints its URL and the logins as plain lines on stderr for a person, and the same as one JSON line
on stdout for scripts. With `--smtp HOST:PORT` every notification of the demo's users goes to that SMTP server (no
TLS, no login), each login having an address in the reserved .example domain.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from collectors.sim.load import LoadModel
from gateway.config import load_config
from gateway.demo.backfill import backfill, history_size
from gateway.directory import Directory
from gateway.runtime import Gateway

log = logging.getLogger(__name__)

HISTORY_DAYS = 60


@dataclass(frozen=True)
class DemoMeter:
    meter: str
    site: str
    customer: str
    protocol: str  # "modbus" or "opcua"
    model: LoadModel
    profile: str = "generic"  # Modbus register map


DEMO_CUSTOMERS = [
    {"id": "huaxin-steel", "name": "华新钢铁 Huaxin Steel", "timezone": "Asia/Shanghai", "language": "zh"},
    # A German-owned chemicals plant in Huizhou, Guangdong, whose managers read English: both demo plants are
    # Guangdong industrial accounts, billed in CNY on the Guangdong 10 kV tariff with China's basic-charge and PF rules.
    {"id": "rhein-chem", "name": "莱茵化工（惠州）Rhein Chemie Huizhou", "timezone": "Asia/Shanghai", "language": "en"},
]
DEMO_SITES = [
    {"id": "huaxin-rolling", "customer": "huaxin-steel", "name": "轧钢车间 Rolling mill"},
    {"id": "huaxin-melt", "customer": "huaxin-steel", "name": "电炉车间 Melt shop"},
    {"id": "rhein-main", "customer": "rhein-chem", "name": "大亚湾工厂 Daya Bay works"},
]
DEMO_METERS = [
    DemoMeter("huaxin-rolling-in", "huaxin-rolling", "huaxin-steel", "modbus",
              LoadModel(peak_kw=2400, seed=11, timezone="Asia/Shanghai"), "sdm630"),
    DemoMeter("huaxin-melt-in", "huaxin-melt", "huaxin-steel", "modbus",
              LoadModel(peak_kw=3100, base_frac=0.12, seed=12, timezone="Asia/Shanghai"), "generic"),
    DemoMeter("huaxin-aux", "huaxin-melt", "huaxin-steel", "opcua",
              LoadModel(peak_kw=650, base_frac=0.35, seed=13, timezone="Asia/Shanghai")),
    DemoMeter("rhein-main-in", "rhein-main", "rhein-chem", "opcua",
              LoadModel(peak_kw=1800, base_frac=0.45, seed=21, timezone="Asia/Shanghai", saturday_shift=False)),
    DemoMeter("rhein-utility", "rhein-main", "rhein-chem", "modbus",
              LoadModel(peak_kw=700, base_frac=0.5, seed=22, timezone="Asia/Shanghai"), "generic"),
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    return json.dumps(str(v), ensure_ascii=False)


def _table(name: str, items: dict[str, Any], array: bool = False) -> str:
    head = f"[[{name}]]" if array else f"[{name}]"
    lines = [head]
    for k, v in items.items():
        if isinstance(v, list) and v and isinstance(v[0], dict):
            continue
        lines.append(f"{k} = {_toml_value(v)}")
    out = "\n".join(lines) + "\n"
    for k, v in items.items():
        if isinstance(v, list) and v and isinstance(v[0], dict):
            for sub in v:
                out += _table(f"{name}.{k}", sub, array=True)
    return out + "\n"


def _meters_by_protocol() -> dict[str, list[DemoMeter]]:
    out: dict[str, list[DemoMeter]] = {"modbus": [], "opcua": []}
    for m in DEMO_METERS:
        out[_served_over(m)].append(m)
    return out


def _served_over(m: DemoMeter) -> str:
    return m.protocol


def _device_name(m: DemoMeter) -> str:
    return f"{m.meter}-dev"


def parse_smtp(value: str) -> tuple[str, int]:
    """`HOST:PORT` (an IPv6 host in brackets) -> (host, port); ValueError naming what is wrong."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"--smtp {value!r}: give HOST:PORT of an SMTP server, such as 127.0.0.1:2525")
    return host, int(port)


def _notify_table(smtp: tuple[str, int]) -> str:
    """`[notify]` with one e-mail channel to the demo's SMTP server: plain SMTP, no login (a test or dev server)."""
    from gateway.demo.seed import MAIL_DOMAIN

    host, port = smtp
    return (_table("notify", {"language": "zh", "send_interval_s": 2.0})
            + _table("notify.channels.demo-mail", {"type": "email", "host": host, "port": port, "security": "none",
                                                   "sender": f"energy-gateway@{MAIL_DOMAIN}"}))


def write_config(path: Path, modbus_port: int, api_port: int, opcua_port: int = 4840,
                 smtp: tuple[str, int] | None = None) -> None:
    text = [
        "# Generated by `energy-gateway demo`. Other commands take --config with this file while the demo runs.\n",
        _table("gateway", {"name": "demo-gateway", "data_dir": ".", "timezone": "Asia/Shanghai",
                           "run_scheduler": True, "environment": "development", "log_level": "WARNING"}),
        _table("store", {"type": "embedded", "path": "timeseries.db"}),
        _table("outbox", {"path": "outbox.db"}),
        _table("api", {"enabled": True, "host": "127.0.0.1", "port": api_port}),
    ]
    text += [_table("customers", c, array=True) for c in DEMO_CUSTOMERS]
    text += [_table("sites", s, array=True) for s in DEMO_SITES]
    for m in DEMO_METERS:
        text.append(_table("meters", {"id": m.meter, "site": m.site, "device": _device_name(m)}, array=True))
    for unit, m in enumerate(_meters_by_protocol()["modbus"], start=1):
        text.append(_table("devices", {
            "type": "modbus", "name": _device_name(m), "host": "127.0.0.1", "port": modbus_port, "unit": unit,
            "profile": m.profile, "interval_s": 1.0, "timeout_s": 1.0,
        }, array=True))
    from collectors.sim.opcua_server import NAMESPACE, POINT_UNITS

    for m in _meters_by_protocol()["opcua"]:
        nodes = [{"point": p, "node_id": f"nsu={NAMESPACE};s={m.meter}.{p}", "unit": unit}
                 for p, unit in POINT_UNITS.items()]
        text.append(_table("devices", {
            "type": "opcua", "name": _device_name(m), "url": f"opc.tcp://127.0.0.1:{opcua_port}/plant/",
            "mode": "subscribe", "interval_s": 1.0, "timeout_s": 4.0, "nodes": nodes,
        }, array=True))
    if smtp is not None:
        text.append(_notify_table(smtp))
    path.write_text("".join(text), encoding="utf-8")


def write_plans(folder: Path, now_ns: int) -> None:
    """Each demo customer's production plan (the simulators follow it): history days plus a week ahead."""
    folder.mkdir(parents=True, exist_ok=True)
    for c in DEMO_CUSTOMERS:
        models = [m.model for m in DEMO_METERS if m.customer == c["id"]]
        tz = ZoneInfo(c["timezone"])
        today = datetime.fromtimestamp(now_ns / 1e9, tz).date()
        lines = ["start,operating,planned_output_t,shift"]
        for offset in range(-HISTORY_DAYS - 1, 8):
            day = today + timedelta(days=offset)
            plans = [m.plan_for(day) for m in models]
            start = datetime.combine(day, datetime.min.time(), tz).isoformat()
            lines.append(f"{start},{max(p['operating'] for p in plans):.0f},"
                         f"{sum(p['planned_output_t'] for p in plans):.1f},{max(p['shift'] for p in plans):.0f}")
        (folder / f"{c['id']}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _load_state(path: Path) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads(path.read_text())
        return state
    except (FileNotFoundError, ValueError):
        return {}


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class PreparedDemo:
    data_dir: Path
    config_path: Path
    gateway: Gateway
    modbus_port: int
    api_port: int
    backfilled: int
    opcua_port: int = 4840
    state: dict[str, Any] = field(default_factory=dict)  # demo-state.json: ports, history, what seeding made


STATE_FILE = "demo-state.json"


def _choose_api_port(port: int, state: dict[str, Any]) -> int:
    if port:
        if not _port_free(port):
            raise SystemExit(f"port {port} on 127.0.0.1 is in use: pass --port with a free port (or 0 for any)")
        return port
    previous = state.get("api_port")
    return int(previous) if isinstance(previous, int) and _port_free(previous) else free_port()


def prepare_demo(data_dir: Path, port: int = 8080, smtp: str | None = None) -> PreparedDemo:
    """Config, secret, ports and (on first start) 60 days of history; blocking work done before the loop runs.

    `smtp` is `HOST:PORT` of a server that gets every notification (--smtp); a bad value is exit 1 naming it.
    """
    try:
        mail = parse_smtp(smtp) if smtp else None
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    state_path = data_dir / STATE_FILE
    state = _load_state(state_path)
    secret_file = data_dir / ".secret_key"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(32))
        secret_file.chmod(0o600)
    os.environ.setdefault("GATEWAY_SECRET_KEY", secret_file.read_text().strip())

    previous = state.get("modbus_port")
    modbus_port = int(previous) if isinstance(previous, int) and _port_free(previous) else free_port()
    previous = state.get("opcua_port")
    opcua_port = int(previous) if isinstance(previous, int) and _port_free(previous) else free_port()
    api_port = _choose_api_port(port, state)
    cfg_path = data_dir / "gateway.toml"
    write_config(cfg_path, modbus_port, api_port, opcua_port, mail)
    state.update(modbus_port=modbus_port, api_port=api_port, opcua_port=opcua_port)
    cfg = load_config(cfg_path)

    gw = Gateway.from_config(cfg)
    backfilled = 0
    now_ns = time.time_ns()
    if not state.get("backfilled_until_ns"):
        from gateway.progress import progress

        tags = Directory.from_config(cfg).tags
        meters = [(m.model, _device_name(m), tags[_device_name(m)]) for m in DEMO_METERS]
        start_ns = now_ns - HISTORY_DAYS * 86400 * 10**9
        # Up to the last 15-min boundary; the live collectors take over from there.
        with progress(f"历史 history: {HISTORY_DAYS} days", history_size(len(meters), start_ns, now_ns)) as bar:
            backfilled = backfill(gw.store.write, meters, start_ns, now_ns, now_ns, written=bar.advance)
        state["backfilled_until_ns"] = now_ns
    write_plans(cfg.data_path(cfg.forecast.plans_dir), now_ns)
    state_path.write_text(json.dumps(state))
    return PreparedDemo(data_dir, cfg_path, gw, modbus_port, api_port, backfilled, opcua_port, state)


async def run_demo(demo: PreparedDemo, duration: float | None = None) -> dict[str, Any]:
    """Run simulators and gateway until SIGTERM/SIGINT or `duration`; return the summary (the last line)."""
    from gateway.lifecycle import stop_signals

    stop = asyncio.Event()
    stop_signals.attach(stop)  # first: from here a signal stops the simulators and the gateway cleanly
    try:
        return await _run_demo(demo, duration, stop)
    finally:
        stop_signals.detach()


async def _run_demo(demo: PreparedDemo, duration: float | None, stop: asyncio.Event) -> dict[str, Any]:
    from collectors.sim.modbus_server import ModbusPlantSimulator, SimModbusMeter
    from gateway.jobs import register_jobs

    gw = demo.gateway
    modbus_meters = [SimModbusMeter(unit, m.profile, m.model)
                     for unit, m in enumerate(_meters_by_protocol()["modbus"], start=1)]
    sim = ModbusPlantSimulator(modbus_meters, port=demo.modbus_port)
    await sim.start()
    from collectors.sim.opcua_server import OpcUaPlantSimulator, SimOpcUaMeter

    opcua_sim = OpcUaPlantSimulator([SimOpcUaMeter(m.meter, m.model) for m in _meters_by_protocol()["opcua"]],
                                    port=demo.opcua_port)
    if opcua_sim.meters:
        await opcua_sim.start()
    register_jobs(gw)
    extra = await asyncio.to_thread(_seed_demo, demo)
    portal_url = f"http://127.0.0.1:{demo.api_port}/"

    def ready() -> None:
        print(welcome(portal_url, demo, extra["logins"]), file=sys.stderr, flush=True)
        print(json.dumps({"portal_url": portal_url, "config": str(demo.config_path), "data_dir": str(demo.data_dir),
                          "customers": [c["id"] for c in DEMO_CUSTOMERS], "meters": len(DEMO_METERS),
                          "backfilled_readings": demo.backfilled, **extra}, ensure_ascii=False), flush=True)

    async def timer() -> None:
        if duration is not None:
            await asyncio.sleep(duration)
            stop.set()

    timer_task = asyncio.create_task(timer())
    started = time.monotonic()
    try:
        await gw.run(stop, on_ready=ready)
    finally:
        timer_task.cancel()
        await sim.stop()
        await opcua_sim.stop()
    stats = gw.pipeline.stats()
    return {
        "collected": stats["collected"],
        "stored": stats["stored"],
        "errors": stats["errors"],
        "dropped": stats["dropped"],
        "outbox_depth": stats["outbox_depth"],
        "backfilled": demo.backfilled,
        "devices_online": sum(1 for h in gw.health() if h.online),
        "devices": len(gw.health()),
        "ran_s": round(time.monotonic() - started, 1),
    }


# The CLI has no language of its own: what a person reads here is in both.
ROLE_NAMES = {"admin": "管理员 admin", "engineer": "工程师 engineer", "account_manager": "客户经理 account manager",
              "customer": "客户 customer"}


def welcome(portal_url: str, demo: PreparedDemo, logins: list[dict[str, Any]]) -> str:
    """The plain lines for a person: the portal, the config, and every login with its role and password."""
    from gateway.demo.seed import LOGINS_FILE

    width = max(len(x["username"]) for x in logins)
    lines = [f"门户 Portal: {portal_url}",
             f"配置 Config: {demo.config_path}  (other commands: --config {demo.config_path})",
             f"登录 Logins (kept in {demo.data_dir / LOGINS_FILE}):"]
    for x in logins:
        whose = x.get("customer") or ", ".join(x.get("customers", []))
        lines.append(f"  {x['username']:<{width}}  {x['password']}  {ROLE_NAMES.get(x['role'], x['role'])}"
                     + (f" ({whose})" if whose else ""))
    return "\n".join(lines)


def _seed_demo(demo: PreparedDemo) -> dict[str, Any]:
    """Registry rows and logins for the demo (gateway.demo.seed); what it made is kept in demo-state.json."""
    from gateway.demo.seed import seed

    seeded = demo.state.setdefault("seeded", {})
    extra = seed(demo.gateway, DEMO_CUSTOMERS, seeded)
    (demo.data_dir / STATE_FILE).write_text(json.dumps(demo.state))
    return extra
