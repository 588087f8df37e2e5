"""Fleet drill: three plant gateways into one influxd, two API processes on one PostgreSQL behind nginx, faults.

Topology, all on loopback (README "Scaling", deploy/README.md "Roles", deploy/examples/fleet/):
- influxd (Debian's 1.x, tests/servers/influx.py) and PostgreSQL 15 (tests/servers/postgres.py), started here;
- three plants, each a collector-role `energy-gateway run` (`collect = true`, `run_scheduler = false`, its own data
  folder and outbox, its API on its own port for /metrics and /ready only) polling its own Modbus server (two
  meters) and OPC UA server (one meter, subscribed); the simulators run in one process of their own;
- two API processes (`collect = false`), `api-1` with `run_scheduler = true`, `api-2` without, on the same
  registry database and influxd, behind nginx (the shipped deploy/nginx/energy-gateway.conf made runnable on a
  free loopback port, bench/_drill.py), with a webhook notification channel so that the notifier's jobs run every
  few seconds;
- `--history-days` of 15-min history per meter written to influxd first, so the portal's pages have data;
- `--users` portal logins made with `energy-gateway users add` (customers and account managers; the managers'
  accounts linked with `energy-gateway registry import`), each a user looping over the day page and its curve, the
  month page or the month API, alerts (page or API) and requests, with `--think` seconds (mean) between clicks
  (about one request every 6-7 s per user by default), through nginx, each from its own
  client address (X-Forwarded-For, believed from nginx by `[api] trusted_proxies`).

Faults: at 30 % of the run plant-b is killed (SIGKILL) and restarted `--down` seconds later. plant-b reaches influxd
through a relay of this process, held just before the kill until its outbox holds `--backlog` readings (a WAN
outage, influxd itself stays up for everyone else), so the kill leaves readings that only its outbox has. At 55 %
an API process (`--kill-api api-2` by default, or `api-1`, the scheduler) is killed and restarted likewise.

Counting, honestly across a SIGKILL: `collected` counts a reading when the collector hands it to the pipeline, a
few milliseconds before the outbox commits it. Right before the kill the plant's /metrics is read; right after,
what it had made durable is taken from influxd (no other writer for its customer) and from its outbox file. Every
durable reading must be in influxd at the end (`durable_lost`); readings counted but not yet committed
(`collected_not_durable`, the group-commit window) are lost by the kill itself and reported, not hidden. After the
restart, an OPC UA subscription delivers each node's current value again: a re-read of a stored point
(`rereads_after_restart`, at most one per subscribed node), not a loss. Duplicates are rows with the same (meter,
point, time) in influxd over every tag set.

Latency is reported as nginx measured it (`$request_time`, joined to the client's record by X-Request-ID) and as the
client saw it (its own event loop shares two cores with everything else); logins are apart, and the requests made
while users are still logging in (users start over the first 15 % of the run, at most 30 s) are also summed up apart
from those made after, since argon2 hashing is what the processes spend that time on. A request in flight on the
killed process when it died (started before, ended after) is counted apart from the others.

Jobs: APScheduler logs each start with its scheduled time ("Running job"); both API processes log it at INFO, so each
run is one record with its period; a job runs once per period, only on the scheduler process. `energy-gateway jobs
list` is read for both processes at the end.

Prints progress to stderr and one JSON object as its last stdout line.
Usage: .venv/bin/python bench/fleet.py [--duration 180] [--users 200] [--kill-api api-2|api-1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _drill import (  # noqa: E402
    ROOT,
    GatewayProc,
    Nginx,
    Plant,
    Sims,
    StallableProxy,
    check_job_runs,
    influx_keys,
    job_runs,
    job_skips,
    outbox_keys,
    parse_access_log,
    pct,
    plants,
)

from collectors.sim.opcua_server import NAMESPACE, POINT_UNITS  # noqa: E402
from tests.servers.influx import InfluxServer, free_port  # noqa: E402
from tests.servers.postgres import postgres_server  # noqa: E402

DB = "fleet"
MANAGERS = 4
KILLED_PLANT = "plant-b"


def log(msg: str) -> None:
    print(f"[fleet {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- configs -------------------------------------------------------------------------------------------------------

def _header(name: str, data_dir: Path, *, collect: bool, scheduler: bool, influx_url: str, port: int,
            warm_days: int) -> str:
    return (f'[gateway]\nname = "{name}"\ndata_dir = "{data_dir}"\nrun_scheduler = {str(scheduler).lower()}\n'
            f'collect = {str(collect).lower()}\nlog_format = "json"\n\n'
            '[gateway.log_levels]\n"apscheduler.executors.default" = "INFO"\n\n'
            f'[store]\ntype = "influxdb"\napi = "v1"\nurl = "{influx_url}"\ndatabase = "{DB}"\n'
            'create_database = true\ntimeout_s = 10\n\n'
            '[database]\nurl_env = "GATEWAY_DATABASE_URL"\n\n'
            f'[api]\nhost = "127.0.0.1"\nport = {port}\nwarm_days = {warm_days}\ntrusted_proxies = ["127.0.0.1"]\n\n')


def _places(p: Plant, sims: dict[str, Any]) -> str:
    out = (f'[[customers]]\nid = "{p.customer}"\nname = "Fleet {p.name}"\ntimezone = "Asia/Shanghai"\n'
           f'language = "{p.language}"\n\n[[sites]]\nid = "{p.site}"\ncustomer = "{p.customer}"\n\n')
    addr = sims[p.name]
    for m in p.meters:
        out += f'[[meters]]\nid = "{m.meter}"\nsite = "{p.site}"\ndevice = "{m.meter}-dev"\n\n'
        if m.protocol == "modbus":
            out += (f'[[devices]]\ntype = "modbus"\nname = "{m.meter}-dev"\nhost = "127.0.0.1"\n'
                    f'port = {addr["modbus_port"]}\nunit = {m.unit}\nprofile = "generic"\ninterval_s = 1.0\n'
                    'timeout_s = 1.0\nbackoff_max_s = 5\n\n')
        else:
            out += (f'[[devices]]\ntype = "opcua"\nname = "{m.meter}-dev"\nurl = "{addr["opcua_url"]}"\n'
                    'mode = "subscribe"\ninterval_s = 1.0\ntimeout_s = 4.0\nbackoff_max_s = 5\n\n')
            out += "".join(f'[[devices.nodes]]\npoint = "{pt}"\nnode_id = "nsu={NAMESPACE};s={m.meter}.{pt}"\n'
                           f'unit = "{unit}"\n\n' for pt, unit in POINT_UNITS.items())
    return out


def write_configs(tmp: Path, fleet: list[Plant], sims: dict[str, Any], influx_url: str, hook_url: str,
                  ports: dict[str, int], warm_days: int, plant_influx: dict[str, str]) -> dict[str, Path]:
    """One gateway.toml per process: the plants' collector role (`plant_influx`: a plant's own way to influxd),
    api-1 (the scheduler) and api-2."""
    paths = {}
    for p in fleet:
        path = tmp / f"{p.name}.toml"
        path.write_text(_header(p.name, tmp / p.name, collect=True, scheduler=False,
                                influx_url=plant_influx.get(p.name, influx_url),
                                port=ports[p.name], warm_days=0) + _places(p, sims))
        paths[p.name] = path
    notify = ('[notify]\nsend_interval_s = 5\n\n[notify.channels.hook]\ntype = "webhook"\n'
              f'url = "{hook_url}"\nsecret_env = "FLEET_WEBHOOK_SECRET"\n\n')
    for name in ("api-1", "api-2"):
        path = tmp / f"{name}.toml"
        path.write_text(_header(name, tmp / name, collect=False, scheduler=name == "api-1", influx_url=influx_url,
                                port=ports[name], warm_days=warm_days)
                        + notify + "".join(_places(p, sims) for p in fleet))
        paths[name] = path
    return paths


def managed(fleet: list[Plant]) -> dict[str, list[str]]:
    """Account manager code -> its customers: each plant's customer has one manager of its own and the last one."""
    return {f"am-{k}": [p.customer for i, p in enumerate(fleet) if k % len(fleet) == i or k == MANAGERS]
            for k in range(1, MANAGERS + 1)}


def write_registry(folder: Path, fleet: list[Plant]) -> Path:
    """CSV files for `registry import`: account managers, their accounts, and a contract per customer."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "managers.csv").write_text("code,name,email\n" + "".join(
        f"am-{i},Manager {i},am-{i}@utility.example\n" for i in range(1, MANAGERS + 1)))
    rows = []
    codes = managed(fleet)
    for i, p in enumerate(fleet):
        managers = ",".join(code for code, customers in codes.items() if p.customer in customers)
        rows.append(f'{p.customer},Fleet {p.name},Asia/Shanghai,steel,{10_000_000 * (i + 1)},"{managers}"\n')
    (folder / "customers.csv").write_text("code,name,timezone,industry,annual_revenue,managers\n" + "".join(rows))
    (folder / "contracts.csv").write_text(
        "customer,valid_from,transformer_kva,hv_motors_kw,contract_demand_kw,basic_charge_mode,pf_standard,"
        "bill_threshold,tariff_id\n" + "".join(
            f"{p.customer},2024-01-01,4000,0,{1800 + 500 * i},contract,0.9,0.9,guangdong-1-10kv\n"
            for i, p in enumerate(fleet)))
    return folder


def cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=ROOT, env=env, capture_output=True,
                       text=True, check=False, timeout=300)
    if check and r.returncode != 0:
        raise RuntimeError(f"energy-gateway {' '.join(args)}: exit {r.returncode}: "
                           f"{(r.stdout + r.stderr).strip()[-800:]}")
    return r


def make_logins(env: dict[str, str], config: Path, fleet: list[Plant], n: int, per_login: bool,
                folder: Path) -> list[dict[str, Any]]:
    """`n` logins, one in ten an account manager, made with `energy-gateway users add`.

    By default the CLI's own command runs for each login inside two processes, half of the logins each
    (bench/_drill.py users-add: one interpreter start-up per process); `per_login` starts `energy-gateway users
    add` once per login, as an administrator would, which on a busy two-core machine costs seconds each.
    """
    logins = []
    for i in range(n):
        password = secrets.token_urlsafe(12)
        if i % 10 == 9:
            code = f"am-{i // 10 % MANAGERS + 1}"
            logins.append({"username": f"am{i:03d}", "password": password, "role": "account_manager",
                           "manager": code, "customers": managed(fleet)[code]})
        else:
            p = fleet[i % len(fleet)]
            logins.append({"username": f"cust{i:03d}", "password": password, "role": "customer",
                           "customer": p.customer, "customers": [p.customer]})
    if not per_login:  # two processes, each running the command for half of the logins
        slices = [logins[k::2] for k in range(2)]
        running = []
        for k, part in enumerate(slices):
            path = folder / f"logins-{k}.json"
            path.write_text(json.dumps(part))
            running.append(subprocess.Popen([sys.executable, str(Path(__file__).with_name("_drill.py")), "users-add",
                                             "--config", str(config), "--logins", str(path)], cwd=ROOT, env=env,
                                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        for proc in running:
            out, _ = proc.communicate(timeout=3600)
            if proc.returncode != 0:
                raise RuntimeError(f"users add: {out.strip()[-800:]}")
        return logins

    def add(login: dict[str, Any]) -> None:
        extra = (["--customer", login["customer"]] if login["role"] == "customer" else ["--manager", login["manager"]])
        cli({**env, "FLEET_PASSWORD": login["password"]}, "users", "add", "--config", str(config), login["username"],
            "--role", login["role"], *extra, "--password-env", "FLEET_PASSWORD")

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(add, logins))
    return logins


def backfill_history(config: Path, fleet: list[Plant], days: int, end_ns: int) -> int:
    """`days` of 15-min history per meter, from the simulators' own load models (live data joins it)."""
    from gateway.config import load_config
    from gateway.demo.backfill import backfill
    from gateway.runtime import build_store

    store = build_store(load_config(config, secrets={"store"}))
    try:
        meters = [(m.model, f"{m.meter}-dev", (p.customer, p.site, m.meter)) for p in fleet for m in p.meters]
        return backfill(store.write, meters, end_ns - days * 86400 * 10**9, end_ns, time.time_ns())
    finally:
        store.close()


class _Hook(BaseHTTPRequestHandler):
    """The webhook channel's receiver: answers 200 to every notification and counts them."""

    received = 0

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received += 1
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        pass


# -- portal users --------------------------------------------------------------------------------------------------

class Load:
    """Every request's record: page, start and end (monotonic), status or error, the process that answered."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.logins: list[dict[str, Any]] = []

    async def hit(self, c: httpx.AsyncClient, page: str, url: str, **kw: Any) -> None:
        t0 = time.monotonic()
        rec: dict[str, Any] = {"page": page, "t0": t0}
        try:
            r = await c.get(url, **kw)
            rec.update(status=r.status_code, upstream=r.headers.get("x-upstream", ""),
                       request_id=r.headers.get("x-request-id", ""))
        except httpx.HTTPError as exc:
            rec.update(status=None, error=repr(exc)[:200], upstream="")
        rec["t1"] = time.monotonic()
        self.records.append(rec)


async def portal_user(base: str, login: dict[str, Any], fleet: list[Plant], stop_at: float, start_in: float,
                      think: float, load: Load, rng: random.Random, client_addr: str) -> None:
    await asyncio.sleep(start_in)
    headers = {"X-Forwarded-For": client_addr}
    async with httpx.AsyncClient(base_url=base, timeout=60, follow_redirects=False, headers=headers) as c:
        t0 = time.monotonic()
        try:
            form = await c.get("/login")
            token = form.text.split('name="csrf_token" value="')[1].split('"')[0]
            r = await c.post("/login", data={"username": login["username"], "password": login["password"],
                                             "csrf_token": token})
            ok = r.status_code == 303
            load.logins.append({"ok": ok, "status": r.status_code, "ms": (time.monotonic() - t0) * 1000,
                                "t1": time.monotonic()})
        except (httpx.HTTPError, IndexError) as exc:
            load.logins.append({"ok": False, "status": repr(exc)[:120], "ms": (time.monotonic() - t0) * 1000,
                                "t1": time.monotonic()})
            return
        if not ok:
            return
        mine = login["customers"]
        today = date.today()
        while time.monotonic() < stop_at:
            customer = rng.choice(mine)
            if login["role"] == "account_manager" and rng.random() < 0.3:
                await load.hit(c, "accounts_page", "/portal/accounts")
            day = (today - timedelta(days=rng.randint(0, 6))).isoformat()
            await load.hit(c, "day_page", f"/portal/c/{customer}/day", params={"date": day})
            await load.hit(c, "day_curve_api", f"/api/v1/customers/{customer}/day-curve", params={"date": day})
            await asyncio.sleep(rng.uniform(0.5, 1.5) * think)
            if time.monotonic() >= stop_at:
                break
            choice = rng.random()
            if choice < 0.3:
                await load.hit(c, "month_page", f"/portal/c/{customer}/month")
            elif choice < 0.45:
                await load.hit(c, "month_api", f"/api/v1/customers/{customer}/month")
            elif choice < 0.7:
                await load.hit(c, "alerts_page", f"/portal/c/{customer}/alerts")
            elif choice < 0.85:
                await load.hit(c, "alerts_api", "/api/v1/alerts", params={"customer": customer, "limit": 20})
            else:
                await load.hit(c, "requests_page", f"/portal/c/{customer}/requests")
            await asyncio.sleep(rng.uniform(0.5, 1.5) * think)


# -- the run -------------------------------------------------------------------------------------------------------

class Drill:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.fleet = plants(3)
        self.procs: dict[str, GatewayProc] = {}
        self.events: dict[str, float] = {}  # name -> monotonic time
        self.wall: dict[str, float] = {}  # name -> Unix time
        self.kill_facts: dict[str, Any] = {}
        self.plant_stats: dict[str, list[dict[str, Any]]] = {p.name: [] for p in self.fleet}
        self.sched_windows: dict[str, list[float]] = {}

    def mark(self, name: str) -> None:
        self.events[name] = time.monotonic()
        self.wall[name] = time.time()

    def kill_plant(self, influx: InfluxServer, since_ns: int, proxy: StallableProxy) -> None:
        """SIGKILL with readings in its outbox (its way to influxd held), right after reading its counters; then
        what it had made durable, from influxd and its outbox file."""
        gw, plant = self.procs[KILLED_PLANT], next(p for p in self.fleet if p.name == KILLED_PLANT)
        proxy.stall()
        deadline = time.monotonic() + 60
        while (gw.metrics() or {}).get("gateway_outbox_depth", 0) < self.args.backlog:
            if time.monotonic() > deadline:
                log(f"{KILLED_PLANT}'s outbox did not reach {self.args.backlog} readings within 60 s")
                break
            time.sleep(0.1)
        before = gw.metrics() or {}
        t_scrape = time.monotonic()
        self.mark("plant_killed")
        gw.kill()
        proxy.resume()
        stable, keys = -1, influx_keys(influx, DB, since_ns, plant.customer)
        while len(keys) != stable:  # a write influxd had already received may still land: wait until it settles
            stable = len(keys)
            time.sleep(0.5)
            keys = influx_keys(influx, DB, since_ns, plant.customer)
        waiting = outbox_keys(self.tmp / plant.name / "outbox.db")
        self.kill_facts = {
            "collected_before_kill": int(before.get("gateway_readings_collected_total", 0)),
            "dropped_before_kill": int(sum(v for k, v in before.items() if k.startswith("gateway_readings_dropped"))),
            "scrape_to_kill_ms": round((self.events["plant_killed"] - t_scrape) * 1000, 1),
            "in_store_at_kill": len(keys), "in_outbox_at_kill": len(waiting),
            "_durable": set(keys) | set(waiting), "_outbox": set(waiting),
        }
        log(f"{KILLED_PLANT} killed: {len(keys)} readings in influxd, {len(waiting)} waiting in its outbox")

    def kill_api(self) -> None:
        name = self.args.kill_api
        self.mark("api_killed")  # the signal goes out now; kill() then waits for the process to be reaped
        self.procs[name].kill()
        if name == "api-1":
            self.sched_windows["api-1"].append(time.time())
        log(f"{name} killed")

    def restart(self, name: str, event: str) -> None:
        self.procs[name].start()
        self.procs[name].wait_ready()
        self.mark(event)
        if name == "api-1":
            self.sched_windows["api-1"].append(time.time())
        log(f"{name} restarted and ready")

    async def faults(self, t0: float, influx: InfluxServer, since_ns: int, proxy: StallableProxy) -> None:
        d, down = self.args.duration, self.args.down

        async def at(offset: float) -> None:
            await asyncio.sleep(max(0.0, t0 + offset - time.monotonic()))

        await at(0.30 * d)
        await asyncio.to_thread(self.kill_plant, influx, since_ns, proxy)
        await at(0.30 * d + down)
        await asyncio.to_thread(self.restart, KILLED_PLANT, "plant_restarted")
        await at(0.55 * d)
        await asyncio.to_thread(self.kill_api)
        await at(0.55 * d + down)
        await asyncio.to_thread(self.restart, self.args.kill_api, "api_restarted")

    async def run_load(self, base: str, logins: list[dict[str, Any]], influx: InfluxServer, since_ns: int,
                       proxy: StallableProxy) -> Load:
        load = Load()
        rng = random.Random(14)
        d = self.args.duration
        ramp = min(30.0, 0.15 * d)
        t0 = time.monotonic()
        self.mark("load_started")
        stop_at = t0 + d
        users = [portal_user(base, login, self.fleet, stop_at, rng.uniform(0, ramp), self.args.think, load,
                             random.Random(rng.random()), f"10.{20 + i // 250}.{i % 250}.{1 + i % 200}")
                 for i, login in enumerate(logins)]
        await asyncio.gather(self.faults(t0, influx, since_ns, proxy), *users)
        self.mark("load_stopped")
        if load.logins:
            self.events["every_user_logged_in"] = max(x["t1"] for x in load.logins)
        return load

    def start_all(self, env: dict[str, str], configs: dict[str, Path], ports: dict[str, int]) -> None:
        logs = self.tmp / "logs"
        logs.mkdir(exist_ok=True)
        for name, path in configs.items():
            self.procs[name] = GatewayProc(name, path, ports[name], env, logs)
        # The registry is migrated already (registry import and users add ran first): all five start at once.
        for gw in self.procs.values():
            gw.start()
        self.sched_windows["api-1"] = [time.time()]
        for gw in self.procs.values():
            gw.wait_ready()


def plant_report(drill: Drill, influx: InfluxServer, since_ns: int) -> dict[str, Any]:
    out = {}
    for p in drill.fleet:
        keys = influx_keys(influx, DB, since_ns, p.customer)
        lifetimes = drill.plant_stats[p.name]
        final = [s for s in lifetimes if s]
        collected = sum(s.get("collected", 0) for s in final)
        dropped = sum(s.get("dropped", 0) for s in final)
        row: dict[str, Any] = {"stored_points": len(keys), "duplicate_keys": sum(n - 1 for n in keys.values() if n > 1),
                               "lifetimes": drill.procs[p.name].lifetimes}
        if p.name == KILLED_PLANT and drill.kill_facts:
            k = drill.kill_facts
            durable, waiting = k["_durable"], k["_outbox"]
            new = set(keys) - durable
            last = final[-1] if final else {}
            rereads = last.get("collected", 0) - last.get("dropped", 0) - len(new)
            nodes = sum(len(POINT_UNITS) for m in p.meters if m.protocol == "opcua")
            not_durable = max(0, k["collected_before_kill"] - k["dropped_before_kill"] - len(durable))
            durable_lost = len(durable - set(keys))
            collected += k["collected_before_kill"]
            dropped += k["dropped_before_kill"]
            row["kill"] = {key: v for key, v in k.items() if not key.startswith("_")} | {
                "outbox_arrived_after_restart": len(waiting & set(keys)), "durable_lost": durable_lost,
                "collected_not_durable": not_durable, "rereads_after_restart": rereads,
                "subscribed_opcua_nodes": nodes}
            row["lost"] = durable_lost + not_durable + max(0, rereads - nodes)
        else:
            row["lost"] = max(0, collected - dropped - len(keys))
        row.update(collected=collected, dropped=dropped)
        out[p.name] = row
    return out


def latency_report(load: Load, access: list[dict[str, Any]], kill_t: float | None, killed_port: int) -> dict[str, Any]:
    """p50/p95 per page as nginx and the client saw them; errors apart for requests in flight on the killed process."""
    by_id = {a["request_id"]: a for a in access}
    in_flight = [r for r in load.records if kill_t is not None and r["t0"] <= kill_t <= r["t1"]]
    flight_ids = {id(r) for r in in_flight}
    rest = [r for r in load.records if id(r) not in flight_ids]

    def bad(r: dict[str, Any]) -> bool:
        return bool(r["status"] != 200)

    def summary(records: list[dict[str, Any]]) -> dict[str, Any]:
        client = [(r["t1"] - r["t0"]) * 1000 for r in records]
        server = [by_id[r["request_id"]]["seconds"] * 1000 for r in records if r.get("request_id") in by_id]
        return {"requests": len(records), "errors": sum(bad(r) for r in records),
                "nginx_p50_ms": _r(pct(server, 0.5)), "nginx_p95_ms": _r(pct(server, 0.95)),
                "client_p50_ms": _r(pct(client, 0.5)), "client_p95_ms": _r(pct(client, 0.95)),
                "client_max_ms": _r(max(client) if client else None)}

    pages = {page: summary([r for r in rest if r["page"] == page]) for page in sorted({r["page"] for r in rest})}
    # Logins hash with argon2: while users are still logging in, their pages wait behind the hashes.
    logged_in = max((x["t1"] for x in load.logins), default=0.0)
    errors = [r for r in rest if bad(r)]
    killed = f"127.0.0.1:{killed_port}"
    return {
        **summary(rest), "pages": pages,
        "while_users_log_in": summary([r for r in rest if r["t0"] <= logged_in]),
        "after_every_user_logged_in": summary([r for r in rest if r["t0"] > logged_in]),
        "error_samples": [{k: r.get(k) for k in ("page", "status", "error", "upstream")} for r in errors[:8]],
        "in_flight_on_killed_api": {**summary(in_flight),
                                    "answered_by_killed": sum(killed in r.get("upstream", "") for r in in_flight)},
        "served_by": dict(Counter(a["upstream"].split(",")[-1].strip() for a in access if a["upstream"] != "-")),
        "retried_by_nginx_to_other_process": sum("," in a["upstream"] for a in access),
        "logins": {"ok": sum(x["ok"] for x in load.logins), "failed": sum(not x["ok"] for x in load.logins),
                   "p95_ms": _r(pct([x["ms"] for x in load.logins], 0.95)),
                   "failures": Counter(str(x["status"]) for x in load.logins if not x["ok"])},
    }


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def main() -> None:  # noqa: PLR0915 - one scenario, read top to bottom
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=180.0, help="seconds of load; the faults scale with it")
    ap.add_argument("--users", type=int, default=200, help="portal users, one login each")
    ap.add_argument("--think", type=float, default=10.0, help="mean think time between a user's clicks, s")
    ap.add_argument("--down", type=float, default=10.0, help="seconds a killed process stays down")
    ap.add_argument("--kill-api", choices=["api-1", "api-2"], default="api-2",
                    help="which API process to kill: api-2 (portal only) or api-1 (portal and the scheduler)")
    ap.add_argument("--backlog", type=int, default=100,
                    help="readings the killed plant's outbox holds when it is killed (its writes held until then)")
    ap.add_argument("--history-days", type=int, default=7)
    ap.add_argument("--warm-days", type=int, default=7, help="[api] warm_days of the API processes")
    ap.add_argument("--users-add-per-login", action="store_true",
                    help="start `energy-gateway users add` once per login (slow) instead of once for all")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (logs, configs) afterwards")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fleet-"))
    drill = Drill(args, tmp)
    influx = InfluxServer(tmp / "influxd")
    sims = Sims(3, tmp / "sims.err")
    hook = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    nginx: Nginx | None = None
    proxy: StallableProxy | None = None
    timings: dict[str, float] = {}
    started = time.monotonic()
    try:
        with postgres_server() as pg:
            influx.start()
            env = {**os.environ, "GATEWAY_DATABASE_URL": pg.create_database(DB),
                   "GATEWAY_SECRET_KEY": secrets.token_urlsafe(32), "FLEET_WEBHOOK_SECRET": secrets.token_urlsafe(16),
                   "PYTHONPATH": str(ROOT)}
            os.environ.update({k: env[k] for k in ("GATEWAY_DATABASE_URL", "GATEWAY_SECRET_KEY",
                                                   "FLEET_WEBHOOK_SECRET")})
            since_ns = time.time_ns()
            addresses = sims.start()
            ports = {name: free_port() for name in ["api-1", "api-2", *(p.name for p in drill.fleet)]}
            proxy = StallableProxy(influx.port)  # plant-b's way to influxd
            configs = write_configs(tmp, drill.fleet, addresses, influx.url, f"http://127.0.0.1:{hook.server_port}/",
                                    ports, args.warm_days, {KILLED_PLANT: f"http://127.0.0.1:{proxy.port}"})
            n_hist = backfill_history(configs["api-1"], drill.fleet, args.history_days, since_ns - 10**9)
            log(f"influxd {influx.url}, PostgreSQL :{pg.port}, {n_hist} history readings; temp folder {tmp}")
            t = time.monotonic()
            cli(env, "registry", "import", "--config", str(configs["api-1"]),
                str(write_registry(tmp / "registry", drill.fleet)))
            logins = make_logins(env, configs["api-1"], drill.fleet, args.users, args.users_add_per_login, tmp)
            timings["registry_import_and_users_add_s"] = time.monotonic() - t
            log(f"{len(logins)} logins added with `energy-gateway users add` in {time.monotonic() - t:.0f} s")
            t = time.monotonic()
            drill.start_all(env, configs, ports)
            timings["start_processes_s"] = time.monotonic() - t
            log(f"5 gateways ready in {timings['start_processes_s']:.0f} s")
            nginx = Nginx(tmp / "nginx", free_port(), [ports["api-1"], ports["api-2"]])
            nginx.start()
            log(f"nginx on :{nginx.port}; {args.users} users for {args.duration:.0f} s")
            load_avg = [os.getloadavg()[0]]
            load = asyncio.run(drill.run_load(f"http://127.0.0.1:{nginx.port}", logins, influx, since_ns, proxy))
            load_avg.append(os.getloadavg()[0])
            log(f"load done: {len(load.records)} requests")
            jobs_list = {name: [json.loads(line) for line in cli(env, "jobs", "list", "--json", "--config",
                                                                  str(configs[name])).stdout.splitlines() if line]
                         for name in ("api-1", "api-2")}
            api_metrics = {name: drill.procs[name].metrics() or {} for name in ("api-1", "api-2")}
            for p in drill.fleet:  # every outbox drained, then SIGTERM: each plant's stats line
                gw = drill.procs[p.name]
                deadline = time.monotonic() + 300
                while (gw.metrics() or {}).get("gateway_outbox_depth", 1) > 0 and time.monotonic() < deadline:
                    time.sleep(0.2)
            for p in drill.fleet:
                drill.plant_stats[p.name].append(drill.procs[p.name].stop() or {})
            drill.sched_windows["api-1"].append(time.time())
            for name in ("api-1", "api-2"):
                drill.procs[name].stop()
            nginx.stop()
            plants_out = plant_report(drill, influx, since_ns)
    finally:
        for gw in drill.procs.values():
            gw.kill()
        if nginx is not None:
            nginx.stop()
        sims.stop()
        if proxy is not None:
            proxy.close()
        influx.stop()
        hook.shutdown()

    texts = [(name, path.read_text(errors="replace")) for name in ("api-1", "api-2")
             for path in drill.procs[name].stderr_paths()]
    runs = [r for name, text in texts for r in job_runs(text, name)]
    skips: Counter[str] = Counter()
    for _name, text in texts:
        skips += job_skips(text)
    w = drill.sched_windows["api-1"]
    jobs = check_job_runs(runs, {f"api-1#{i // 2 + 1}": (w[i], w[i + 1]) for i in range(0, len(w) - 1, 2)})
    for job, n in skips.items():  # the run before still running (max_instances = 1), or its time missed
        jobs.setdefault(job, {})["skipped_by_apscheduler"] = n
    for j in jobs.values():
        j["periods_missed_unexplained"] = max(0, j.get("periods_missed", 0) - j.get("skipped_by_apscheduler", 0))
    access = parse_access_log((tmp / "nginx" / "access.log").read_text(errors="replace"))
    kill_t = drill.events.get("api_killed")
    portal = latency_report(load, access, kill_t, ports[args.kill_api])
    ev = {k: round(v - drill.events["load_started"], 1) for k, v in drill.events.items()}
    job_counts = {name: {k.split('job="')[1].split('"')[0]: int(v) for k, v in m.items()
                         if k.startswith("gateway_job_runs_total{")} for name, m in api_metrics.items()}
    lost = sum(r["lost"] for r in plants_out.values())
    dup = sum(r["duplicate_keys"] for r in plants_out.values())
    scheduler_only = all(j.get("processes", ["api-1"]) == ["api-1"] for j in jobs.values())
    result = {
        "duration_s": args.duration, "users": args.users, "think_s": args.think, "down_s": args.down,
        "killed": {"plant": KILLED_PLANT, "api": args.kill_api}, "events_s": ev,
        "setup_s": {k: round(v, 1) for k, v in timings.items()}, "history_readings": n_hist,
        "load_average_1min": {"start": round(load_avg[0], 1), "end": round(load_avg[1], 1), "cores": os.cpu_count()},
        "plants": plants_out, "lost": lost, "duplicated": dup,
        "portal": portal,
        "jobs": {"runs": jobs, "metrics_runs_at_end": job_counts,
                 "jobs_list_last_run": {n: {r["name"]: r["last_run"] for r in rows} for n, rows in jobs_list.items()},
                 "webhook_posts": _Hook.received},
        "wall_s": round(time.monotonic() - started, 1),
        "targets": {
            "zero_lost_or_duplicated": lost == 0 and dup == 0,
            "portal_p95_le_300ms_nginx": (portal["nginx_p95_ms"] or 1e9) <= 300,
            "portal_p95_le_300ms_client": (portal["client_p95_ms"] or 1e9) <= 300,
            "portal_p95_le_300ms_nginx_after_every_user_logged_in":
                (portal["after_every_user_logged_in"]["nginx_p95_ms"] or 1e9) <= 300,
            "portal_zero_errors_apart_from_in_flight": portal["errors"] == 0 and portal["logins"]["failed"] == 0,
            "jobs_never_twice_only_on_the_scheduler": bool(jobs) and scheduler_only and all(
                j.get("periods_run_twice", 0) == 0 for j in jobs.values()),
            "jobs_no_period_missed_apart_from_logged_overrun_skips": all(
                j["periods_missed_unexplained"] == 0 for j in jobs.values()),
            "jobs_no_period_missed": all(j.get("periods_missed", 0) == 0 for j in jobs.values()),
        },
    }
    log(f"logs and configs: {tmp}" if args.keep else "temp folder removed (--keep keeps it)")
    if not args.keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
