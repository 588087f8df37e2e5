"""Portal load benchmark: N concurrent portal users for D seconds against a running gateway.

By default it starts `energy-gateway demo` (simulators, collectors, store, API; 60 days of history) in a
temporary directory and uses the logins the demo prints; `--url` and `--logins FILE` point it at another gateway.
Each user logs in through the portal form (session cookie), then loops over the pages a customer opens: the day
page, the day-curve data for a random day of the last 30, the month page, alerts and requests, with a think time
between clicks. The baseline, measured in the same run right after, at the same concurrency, is /healthz: what
the web stack costs with no work behind it.

Prints progress to stderr and one JSON object as its last stdout line: p50/p95/max per page, requests, errors.
Usage: .venv/bin/python bench/portal_load.py [--users 50] [--duration 60] [--think 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--think", type=float, default=1.0, help="mean think time between clicks, s")
    ap.add_argument("--baseline", type=float, default=15.0, help="seconds of the /healthz baseline")
    ap.add_argument("--settle", type=float, default=15.0,
                    help="seconds to wait after the gateway is up (start-up jobs, cache warming) before measuring")
    ap.add_argument("--url", help="a running gateway (default: start the demo)")
    ap.add_argument("--logins", type=Path, help="JSON file: a list of {role, username, password, customer}")
    args = ap.parse_args()
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
