"""Portal load benchmark: N concurrent portal users for D seconds against a running gateway.

By default it starts `energy-gateway demo` (simulators, collectors, store, API; 60 days of history) in a
temporary directory and uses the logins the demo prints; `--url` and `--logins FILE` point it at another gateway.
Each user logs in through the portal form (session cookie), then loops over the pages a customer opens: the day
page, the day-curve data for a random day of the last 30, the month page, alerts and requests, with a think time
between clicks. The baseline, measured in the same run right after, at the same concurrency, is /healthz: what
the web stack costs with no work behind it.

Scenario `portfolio` (`--scenario portfolio`): an account manager with `--accounts` (200) accounts loading the
portfolio page (`/portal/accounts`, sorted and filtered at random) while the figures are warm; target p95 <= 300 ms.
It builds its own gateway in `--data-dir` (kept, so a second run skips the set-up): one meter, a contract and the
history since the first of last month per account, the manager and its login; then starts `energy-gateway run` on
it (API only), waits until the page has every figure (the time of the first, cold load is reported too), and
measures `--users` managers clicking through the page. The baseline is /healthz at the same concurrency.

Prints progress to stderr and one JSON object as its last stdout line: p50/p95/max per page, requests, errors.
Usage: .venv/bin/python bench/portal_load.py [--users 50] [--duration 60] [--think 1.0]
       .venv/bin/python bench/portal_load.py --scenario portfolio [--accounts 200] [--users 2] [--duration 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


class Stats:
    def __init__(self) -> None:
        self.ms: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.samples: list[str] = []

    async def hit(self, client: httpx.AsyncClient, page: str, url: str, **kw: Any) -> httpx.Response | None:
        t = time.perf_counter()
        try:
            r = await client.get(url, **kw)
        except httpx.HTTPError as exc:
            self._error(page, f"{url}: {exc!r}")
            return None
        self.ms.setdefault(page, []).append((time.perf_counter() - t) * 1000)
        if r.status_code != 200:
            self._error(page, f"{url}: HTTP {r.status_code} {r.text[:120]}")
        return r

    def _error(self, page: str, what: str) -> None:
        self.errors[page] = self.errors.get(page, 0) + 1
        if len(self.samples) < 10:
            self.samples.append(what)


async def portal_user(base: str, login: dict[str, Any], stop_at: float, think: float, stats: Stats,
                      rng: random.Random) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30, follow_redirects=False) as c:
        form = await c.get("/login")
        token = form.text.split('name="csrf_token" value="')[1].split('"')[0]
        r = await c.post("/login", data={"username": login["username"], "password": login["password"],
                                         "csrf_token": token})
        if r.status_code != 303:
            stats._error("login", f"login {login['username']}: HTTP {r.status_code}")
            return
        customer = login["customer"]
        today = date.today()
        while time.monotonic() < stop_at:
            day = (today - timedelta(days=rng.randint(0, 30))).isoformat()
            await stats.hit(c, "day_page", f"/portal/c/{customer}/day", params={"date": day})
            await stats.hit(c, "day_curve", f"/api/v1/customers/{customer}/day-curve", params={"date": day})
            await asyncio.sleep(rng.uniform(0.5, 1.5) * think)
            choice = rng.random()
            if choice < 0.4:
                await stats.hit(c, "month_page", f"/portal/c/{customer}/month")
            elif choice < 0.7:
                await stats.hit(c, "alerts_page", f"/portal/c/{customer}/alerts")
            else:
                await stats.hit(c, "requests_page", f"/portal/c/{customer}/requests")
            await asyncio.sleep(rng.uniform(0.5, 1.5) * think)


async def baseline_user(base: str, stop_at: float, think: float, stats: Stats, rng: random.Random) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        await c.get("/healthz")  # open the connection untimed, as the portal users did with their login
        await asyncio.sleep(rng.uniform(0, think))
        while time.monotonic() < stop_at:
            await stats.hit(c, "healthz", "/healthz")
            await asyncio.sleep(rng.uniform(0.5, 1.5) * think)


async def load(base: str, logins: list[dict[str, Any]], users: int, duration: float, think: float,
               baseline_s: float) -> dict[str, Any]:
    rng = random.Random(7)
    stats = Stats()
    customers = [x for x in logins if x["role"] == "customer"]
    stop = time.monotonic() + duration
    started = time.monotonic()
    await asyncio.gather(*(portal_user(base, customers[i % len(customers)], stop, think, stats,
                                       random.Random(rng.random())) for i in range(users)))
    elapsed = time.monotonic() - started
    base_stats = Stats()
    stop = time.monotonic() + baseline_s
    await asyncio.gather(*(baseline_user(base, stop, think, base_stats, random.Random(i)) for i in range(users)))
    log(f"baseline done: {sum(len(v) for v in base_stats.ms.values())} requests")
    pages = {p: {"requests": len(v), "p50_ms": round(statistics.median(v), 1), "p95_ms": round(pct(v, 0.95), 1),
                 "max_ms": round(max(v), 1)} for p, v in sorted(stats.ms.items())}
    base_ms = base_stats.ms.get("healthz", [])
    total = sum(len(v) for v in stats.ms.values())
    errors = sum(stats.errors.values()) + sum(base_stats.errors.values())
    return {
        "users": users, "duration_s": round(elapsed, 1), "think_s": think, "requests": total,
        "requests_per_s": round(total / elapsed, 1), "pages": pages,
        "baseline_healthz": {"requests": len(base_ms), "p50_ms": round(statistics.median(base_ms), 1) if base_ms
                             else None, "p95_ms": round(pct(base_ms, 0.95), 1) if base_ms else None},
        "errors": errors, "errors_by_page": {**stats.errors, **base_stats.errors}, "error_samples": stats.samples,
        "day_curve_p95_ms": pages.get("day_curve", {}).get("p95_ms"),
        "target_day_curve_p95_ms": 200,
    }


def start_demo(data_dir: Path, run_s: float) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    log(f"starting the demo in {data_dir} (first start backfills 60 days)")
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "demo", "--port", "0", "--duration", str(run_s),
                             "--data-dir", str(data_dir)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())
    return proc, first


PORTFOLIO_TARGET_P95_MS = 300
MANAGER, MANAGER_LOGIN, BENCH_PASSWORD = "am-bench", "bench-manager", "bench-password-0123"  # noqa: S105 - bench only
SORTS = ("name", "tier", "kwh", "bill", "last_month", "money", "alerts", "overdue", "visit")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def portfolio_config(data_dir: Path, accounts: int, port: int) -> str:
    """gateway.toml of an API-only gateway (it polls nothing) with `accounts` customers of one meter each."""
    parts = [f'[gateway]\ndata_dir = "{data_dir / "state"}"\nenvironment = "development"\nrun_scheduler = false\n'
             "collect = false\n", f'[api]\nhost = "127.0.0.1"\nport = {port}\nwarm_days = 0\n']
    for i in range(accounts):
        cid = f"c{i:04d}"
        parts.append(f'[[customers]]\nid = "{cid}"\nname = "Plant {i:04d}"\ntimezone = "Asia/Shanghai"\n'
                     f'[[sites]]\nid = "{cid}-s"\ncustomer = "{cid}"\n'
                     f'[[meters]]\nid = "{cid}-m"\nsite = "{cid}-s"\ndevice = "{cid}-d"\n'
                     f'[[devices]]\ntype = "modbus"\nname = "{cid}-d"\nhost = "127.0.0.1"\nport = 1\n'
                     f'unit = {1 + i % 247}\nprofile = "generic"\n')
    return "\n".join(parts)


def setup_portfolio(data_dir: Path, accounts: int) -> None:
    """The portfolio scenario's gateway: config, history since the first of last month, contracts, manager, login.

    Runs in a process of its own (the gateway's files are free again when it exits).
    """
    from sqlalchemy import select

    from collectors.sim.load import LoadModel
    from crm_bridge.registry.models import AccountManager, Contract, Customer, ManagerAssignment
    from gateway.config import load_config
    from gateway.demo.backfill import history_readings
    from gateway.runtime import Gateway
    from gateway.web import auth_service

    os.environ.setdefault("GATEWAY_SECRET_KEY", "bench-secret-key-0123456789abcdef")
    (data_dir / "gateway.toml").write_text(portfolio_config(data_dir, accounts, _free_port()))
    gw = Gateway.from_config(load_config(data_dir / "gateway.toml"))
    now_ns = time.time_ns() // (900 * 10**9) * (900 * 10**9)
    first_of_last = (date.today().replace(day=1) - timedelta(days=1)).replace(day=1)
    days = (date.today() - first_of_last).days + 2  # a day more on each side: the accounts are on Shanghai's clock
    start_ns = now_ns - days * 86400 * 10**9
    tags = gw.directory.tags
    for i, c in enumerate(gw.config.customers):
        model = LoadModel(peak_kw=300 + 37 * (i % 50), seed=i, timezone=c.timezone)
        gw.store.write(history_readings(model, f"{c.id}-d", tags[f"{c.id}-d"], start_ns, now_ns, now_ns))
        if i % 20 == 19:
            log(f"history: {i + 1} of {accounts} accounts ({days} days each)")
    with gw.db() as s:
        m = AccountManager(code=MANAGER, name="Bench Manager")
        s.add(m)
        for customer in s.scalars(select(Customer)):
            s.add(ManagerAssignment(manager=m, customer=customer))
            s.add(Contract(customer=customer, transformer_kva=1000.0, contract_demand_kw=600.0,
                           basic_charge_mode="contract", pf_standard=0.9, tariff_id="guangdong-1-10kv"))
        s.commit()
    auth_service(gw).add_user(MANAGER_LOGIN, BENCH_PASSWORD, "account_manager", manager=MANAGER)
    gw.store.close()
    (data_dir / "ready").write_text(str(accounts))


async def _login(c: httpx.AsyncClient, username: str, password: str) -> bool:
    form = await c.get("/login")
    token = form.text.split('name="csrf_token" value="')[1].split('"')[0]
    r = await c.post("/login", data={"username": username, "password": password, "csrf_token": token})
    return r.status_code == 303


async def warm_portfolio(base: str, deadline_s: float) -> dict[str, Any]:
    """Load the page until every figure is there; the first (cold) load's time and the time until complete."""
    async with httpx.AsyncClient(base_url=base, timeout=600) as c:
        if not await _login(c, MANAGER_LOGIN, BENCH_PASSWORD):
            raise SystemExit("the bench manager cannot log in")
        started = time.perf_counter()
        first_ms = None
        while time.perf_counter() - started < deadline_s:
            t = time.perf_counter()
            r = await c.get("/portal/accounts")
            if first_ms is None:
                first_ms = (time.perf_counter() - t) * 1000
            if r.status_code != 200:
                raise SystemExit(f"portfolio page: HTTP {r.status_code} {r.text[:200]}")
            if 'data-computing="0"' in r.text:
                rows = r.text.count("<tr data-customer=")
                return {"first_load_ms": round(first_ms, 1), "accounts_shown": rows,
                        "complete_after_s": round(time.perf_counter() - started, 1)}
            await asyncio.sleep(2)
        raise SystemExit(f"the portfolio's figures were not all computed within {deadline_s} s")


async def portfolio_user(base: str, stop_at: float, think: float, stats: Stats, rng: random.Random) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        if not await _login(c, MANAGER_LOGIN, BENCH_PASSWORD):
            stats._error("login", "bench manager: login refused")
            return
        while time.monotonic() < stop_at:
            params: dict[str, str] = {"sort": rng.choice(SORTS), "order": rng.choice(("asc", "desc"))}
            if rng.random() < 0.3:
                params["q"] = f"{rng.randint(0, 9)}"
            if rng.random() < 0.2:
                params["attention"] = "1"
            await stats.hit(c, "portfolio_page", "/portal/accounts", params=params)
            await asyncio.sleep(rng.uniform(0.5, 1.5) * think)


async def load_portfolio(base: str, users: int, duration: float, think: float, baseline_s: float) -> dict[str, Any]:
    rng = random.Random(11)
    stats = Stats()
    stop = time.monotonic() + duration
    started = time.monotonic()
    await asyncio.gather(*(portfolio_user(base, stop, think, stats, random.Random(rng.random())) for _ in range(users)))
    elapsed = time.monotonic() - started
    base_stats = Stats()
    stop = time.monotonic() + baseline_s
    await asyncio.gather(*(baseline_user(base, stop, think, base_stats, random.Random(i)) for i in range(users)))
    ms = stats.ms.get("portfolio_page", [])
    base_ms = base_stats.ms.get("healthz", [])
    return {
        "scenario": "portfolio", "users": users, "duration_s": round(elapsed, 1), "think_s": think,
        "requests": len(ms), "portfolio_page": {"p50_ms": round(statistics.median(ms), 1) if ms else None,
                                                 "p95_ms": round(pct(ms, 0.95), 1) if ms else None,
                                                 "max_ms": round(max(ms), 1) if ms else None},
        "baseline_healthz": {"requests": len(base_ms), "p50_ms": round(statistics.median(base_ms), 1) if base_ms
                             else None, "p95_ms": round(pct(base_ms, 0.95), 1) if base_ms else None},
        "errors": sum(stats.errors.values()) + sum(base_stats.errors.values()), "error_samples": stats.samples,
        "portfolio_p95_ms": round(pct(ms, 0.95), 1) if ms else None,
        "target_portfolio_p95_ms": PORTFOLIO_TARGET_P95_MS,
    }


def run_portfolio(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = (args.data_dir or Path(tempfile.mkdtemp(prefix="portal-portfolio-"))).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    ready = data_dir / "ready"
    if not ready.exists() or ready.read_text() != str(args.accounts):
        log(f"setting up {args.accounts} accounts in {data_dir}")
        t = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--setup-portfolio", str(data_dir), "--accounts",
                        str(args.accounts)], cwd=ROOT, check=True)
        log(f"set up in {time.perf_counter() - t:.0f} s")
    cfg = (data_dir / "gateway.toml").read_text()
    port = cfg.split("port = ")[1].split("\n")[0]
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "GATEWAY_SECRET_KEY": "bench-secret-key-0123456789abcdef"}
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "--config", str(data_dir / "gateway.toml")],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the gateway did not start")
            time.sleep(0.2)
        warm = asyncio.run(warm_portfolio(base, args.warm_deadline))
        log(f"portfolio warm: {warm}")
        result = asyncio.run(load_portfolio(base, args.users, args.duration, args.think, args.baseline))
        return {**result, "accounts": args.accounts, "warm_up": warm}
    finally:
        proc.terminate()
        proc.wait(60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, help="concurrent users (default: 50 customers; 2 managers for portfolio)")
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--think", type=float, default=1.0, help="mean think time between clicks, s")
    ap.add_argument("--baseline", type=float, default=15.0, help="seconds of the /healthz baseline")
    ap.add_argument("--settle", type=float, default=15.0,
                    help="seconds to wait after the gateway is up (start-up jobs, cache warming) before measuring")
    ap.add_argument("--url", help="a running gateway (default: start the demo)")
    ap.add_argument("--logins", type=Path, help="JSON file: a list of {role, username, password, customer}")
    ap.add_argument("--scenario", choices=("customers", "portfolio"), default="customers",
                    help="customers: customers' pages on the demo; portfolio: a manager's portfolio page")
    ap.add_argument("--accounts", type=int, default=200, help="portfolio: the manager's accounts")
    ap.add_argument("--data-dir", type=Path, help="portfolio: where its gateway lives (kept for the next run)")
    ap.add_argument("--warm-deadline", type=float, default=1800.0,
                    help="portfolio: seconds allowed for the first computation of every figure")
    ap.add_argument("--setup-portfolio", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.setup_portfolio:
        setup_portfolio(args.setup_portfolio, args.accounts)
        return
    if args.scenario == "portfolio":
        args.users = args.users or 2
        print(json.dumps(run_portfolio(args)))
        return
    args.users = args.users or 50
    proc = None
    if args.url:
        base, logins = args.url.rstrip("/"), json.loads(args.logins.read_text())
    else:
        tmp = tempfile.mkdtemp(prefix="portal-load-")
        proc, first = start_demo(Path(tmp), args.settle + args.duration + args.baseline + 120)
        base, logins = first["portal_url"].rstrip("/"), first["logins"]
    try:
        time.sleep(args.settle)
        log(f"{args.users} users for {args.duration} s against {base}")
        result = asyncio.run(load(base, logins, args.users, args.duration, args.think, args.baseline))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(60)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
