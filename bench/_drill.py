"""Building blocks of the fleet drill (bench/fleet.py): plant simulators, gateway processes, nginx, the record checks.

Kept apart from the scenario so that tests/deploy/test_fleet_drill.py can run them quickly on their own: the nginx
config made from the shipped deploy/nginx/energy-gateway.conf, the parsers of nginx's access log and of the
scheduler's job-run log lines, and the (meter, point, time) census of influxd.

`python bench/_drill.py sims --plants 3` runs every plant's Modbus and OPC UA simulators in one process (its own,
so that neither the gateways nor the drill's load generator slow them down) and prints their addresses as one
JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collectors.sim.load import LoadModel  # noqa: E402
from tests.servers.influx import InfluxServer  # noqa: E402

SHIPPED_NGINX = ROOT / "deploy" / "nginx" / "energy-gateway.conf"
NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")


# -- the plants ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlantMeter:
    """One meter of a plant: which protocol serves it and the load model behind both its simulator and its history."""

    meter: str
    protocol: str  # "modbus" or "opcua"
    unit: int  # Modbus unit id, or the OPC UA simulator's meter index (1-based)
    model: LoadModel


@dataclass(frozen=True)
class Plant:
    name: str  # plant-a, ...
    customer: str
    site: str
    language: str
    meters: tuple[PlantMeter, ...]


def plants(n: int) -> list[Plant]:
    """`n` plants, each one customer with one site: two Modbus meters on one server and one meter on OPC UA."""
    out = []
    for i in range(n):
        letter = chr(ord("a") + i)
        models = [LoadModel(peak_kw=900.0 + 400 * i + 150 * k, base_frac=0.2 + 0.1 * k, seed=40 + 10 * i + k,
                            timezone="Asia/Shanghai") for k in range(3)]
        meters = (PlantMeter(f"{letter}-incomer", "modbus", 1, models[0]),
                  PlantMeter(f"{letter}-line", "modbus", 2, models[1]),
                  PlantMeter(f"{letter}-aux", "opcua", 1, models[2]))
        out.append(Plant(f"plant-{letter}", f"fleet-{letter}", f"fleet-{letter}-works", ("zh", "en")[i % 2], meters))
    return out


async def _serve_sims(n: int) -> None:
    from collectors.sim.modbus_server import ModbusPlantSimulator, SimModbusMeter
    from collectors.sim.opcua_server import OpcUaPlantSimulator, SimOpcUaMeter

    running: list[Any] = []
    addresses = []
    for p in plants(n):
        modbus = ModbusPlantSimulator([SimModbusMeter(m.unit, "generic", m.model)
                                       for m in p.meters if m.protocol == "modbus"])
        opcua = OpcUaPlantSimulator([SimOpcUaMeter(m.meter, m.model) for m in p.meters if m.protocol == "opcua"])
        await modbus.start()
        await opcua.start()
        running += [modbus, opcua]
        addresses.append({"plant": p.name, "modbus_port": modbus.port, "opcua_url": opcua.url})
    print(json.dumps({"plants": addresses}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for sim in running:
        await sim.stop()


class Sims:
    """The simulators' process; `start()` returns each plant's Modbus port and OPC UA URL."""

    def __init__(self, n: int, log_path: Path) -> None:
        self.n = n
        self.log_path = log_path
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> dict[str, dict[str, Any]]:
        with self.log_path.open("w") as err:
            self.proc = subprocess.Popen([sys.executable, __file__, "sims", "--plants", str(self.n)], cwd=ROOT,
                                         stdout=subprocess.PIPE, stderr=err, text=True)
        assert self.proc.stdout is not None  # noqa: S101 - asked for above
        line = self.proc.stdout.readline()  # printed once every server listens
        if '"plants"' not in line:
            raise RuntimeError(f"the simulators did not start: {line!r}; see {self.log_path}")
        return {p["plant"]: p for p in json.loads(line)["plants"]}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


# -- gateway processes ---------------------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-z_]+)(\{[^}]*\})? (\S+)$")


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text as {"name{labels}": value} (labels as written), comments skipped."""
    out = {}
    for line in text.splitlines():
        if m := _SAMPLE.match(line):
            out[m[1] + (m[2] or "")] = float(m[3])
    return out


@dataclass
class GatewayProc:
    """One `energy-gateway run` process with its own config; stdout (the stats line) and stderr go to files."""

    name: str
    config: Path
    port: int
    env: dict[str, str]
    logs: Path
    proc: subprocess.Popen[bytes] | None = None
    lifetimes: int = 0
    _out: Path | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.lifetimes += 1
        self._out = self.logs / f"{self.name}.{self.lifetimes}.out"
        with self._out.open("wb") as out, (self.logs / f"{self.name}.{self.lifetimes}.err").open("wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "--config", str(self.config)],
                                         cwd=ROOT, env=self.env, stdout=out, stderr=err)

    def stderr_paths(self) -> list[Path]:
        return [self.logs / f"{self.name}.{i}.err" for i in range(1, self.lifetimes + 1)]

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as r:  # noqa: S310 - loopback
                return int(r.status), r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def wait_ready(self, timeout: float = 300.0) -> None:
        """Until /ready answers 200 (store, registry, outbox answer; every device polled once)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited before it was ready: {self.tail()}")
            try:
                if self.get("/ready")[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready within {timeout:.0f} s: {self.tail()}")
            time.sleep(0.2)

    def metrics(self) -> dict[str, float] | None:
        try:
            status, text = self.get("/metrics", timeout=2.0)
        except OSError:
            return None
        return parse_metrics(text) if status == 200 else None

    def kill(self) -> None:
        """SIGKILL: nothing flushed, nothing said."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def stop(self, timeout: float = 120.0) -> dict[str, Any] | None:
        """SIGTERM: the gateway flushes its outbox and prints its stats line (returned)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                return None
        assert self._out is not None  # noqa: S101 - set by start()
        lines = self._out.read_text(errors="replace").strip().splitlines()
        try:
            stats: dict[str, Any] = json.loads(lines[-1]) if lines else {}
        except ValueError:
            return None
        return stats

    def tail(self, n: int = 8) -> str:
        paths = self.stderr_paths()
        if not paths or not paths[-1].exists():
            return "(no log)"
        return " | ".join(paths[-1].read_text(errors="replace").splitlines()[-n:])


class StallableProxy:
    """A TCP relay in front of influxd for one plant: `stall()` holds its writes (influxd stays up for the others).

    While stalled, nothing the plant sends is passed on, so its outbox fills as in a WAN outage; `resume()` lets it
    through again.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._open = threading.Event()
        self._open.set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._accept, name="stall-proxy", daemon=True).start()

    def stall(self) -> None:
        self._open.clear()

    def resume(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._open.set()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                self._open.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


# -- nginx ---------------------------------------------------------------------------------------------------------

def nginx_binary() -> str | None:
    """Debian's nginx (apt-get install nginx), or None when it is not installed."""
    found = shutil.which("nginx")
    if found:
        return found
    return next((p for p in NGINX_CANDIDATES if os.access(p, os.X_OK)), None)


def nginx_config(prefix: Path, port: int, upstreams: list[int], shipped: Path = SHIPPED_NGINX) -> str:
    """The shipped server config made runnable on loopback without root: plain HTTP on `port`, `upstreams` behind it.

    Everything the shipped file says about proxying (upstream failure parameters, headers, the /metrics block, the
    log format) is kept as written; only what ties it to a real machine changes: TLS and the port-80 redirect go,
    the logs and the pid file move under `prefix`, and each response names the process that answered
    (`X-Upstream`, so the drill can tell requests that were in flight on a killed process).
    """
    text = shipped.read_text()
    servers = re.findall(r"^\s*server\s+127\.0\.0\.1:\d+\s+([^;]*);", text, re.MULTILINE)
    params = servers[0] if servers else "max_fails=2 fail_timeout=10s"
    text = re.sub(r"^\s*#?\s*server\s+[\d.]+:\d+[^;]*;.*\n", "", text, flags=re.MULTILINE)
    lines = "".join(f"    server 127.0.0.1:{p} {params};\n" for p in upstreams)
    text = re.sub(r"(upstream energy_gateway \{\n(?:\s*#.*\n)*)", lambda m: m[1] + lines, text, count=1)
    # The redirect server (port 80) is the last block; TLS lines belong to the machine's certificate.
    text = re.sub(r"\nserver \{\n\s*listen 80;.*?\n\}\n?", "\n", text, flags=re.DOTALL)
    text = re.sub(r"listen 443 ssl;", f"listen 127.0.0.1:{port};", text)
    text = re.sub(r"^\s*ssl_certificate(_key)?\s+[^;]*;\n", "", text, flags=re.MULTILINE)
    text = re.sub(r"access_log \S+ energy_gateway;", f"access_log {prefix / 'access.log'} energy_gateway;", text)
    rid = "proxy_set_header X-Request-ID $request_id;"
    text = text.replace(rid, rid + "\n        add_header X-Upstream $upstream_addr always;")
    temp = "".join(f"    {kind}_temp_path {prefix / 'tmp' / kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (f"# Generated by bench/_drill.py from {shipped.name}\n"
            f"pid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'} warn;\nworker_processes 1;\n"
            "events {\n    worker_connections 4096;\n}\n"
            f"http {{\n{temp}" + "".join(f"    {line}\n" if line else "\n" for line in text.splitlines()) + "}\n")


class Nginx:
    """nginx as this process's child, with its own config under `prefix`; never the machine's nginx service."""

    def __init__(self, prefix: Path, port: int, upstreams: list[int], binary: str | None = None) -> None:
        found = binary or nginx_binary()
        if found is None:
            raise RuntimeError("nginx is not installed: apt-get install -y nginx")
        self.binary = found
        self.prefix = prefix
        self.port = port
        (prefix / "tmp").mkdir(parents=True, exist_ok=True)
        prefix.chmod(0o755)  # nginx's workers (user nobody when started as root) write its temp folders
        (prefix / "tmp").chmod(0o755)
        self.conf = prefix / "nginx.conf"
        self.conf.write_text(nginx_config(prefix, port, upstreams))
        self.proc: subprocess.Popen[bytes] | None = None

    def _argv(self, *extra: str) -> list[str]:
        return [self.binary, "-p", str(self.prefix), "-c", str(self.conf), "-e", str(self.prefix / "error.log"),
                *extra]

    def test(self) -> subprocess.CompletedProcess[str]:
        """`nginx -t` on the generated config (exit 0 and "syntax is ok" when nginx accepts it)."""
        return subprocess.run(self._argv("-t"), capture_output=True, text=True, check=False)

    def start(self, timeout: float = 30.0) -> None:
        self.proc = subprocess.Popen(self._argv("-g", "daemon off;"), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {(self.prefix / 'error.log').read_text(errors='replace')}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2):  # noqa: S310
                    pass
            except urllib.error.HTTPError:
                return  # nginx answers (404 for /metrics, by the shipped config)
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("nginx did not answer") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish the requests in progress
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


_ACCESS = re.compile(r'^(?P<addr>\S+) \[[^\]]+\] "(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+) '
                     r"(?P<time>[\d.]+) upstream=(?P<upstream>.*) request_id=(?P<rid>\S+)$")


def parse_access_log(text: str) -> list[dict[str, Any]]:
    """nginx's `energy_gateway` log lines as {method, path, status, seconds, upstream, request_id}."""
    out = []
    for line in text.splitlines():
        m = _ACCESS.match(line)
        if m is None:
            continue
        method, _, rest = m["request"].partition(" ")
        out.append({"method": method, "path": rest.rsplit(" ", 1)[0].split("?", 1)[0], "status": int(m["status"]),
                    "seconds": float(m["time"]), "upstream": m["upstream"], "request_id": m["rid"]})
    return out


# -- the scheduler's records ---------------------------------------------------------------------------------------

_RUNNING = re.compile(r'^Running job "(?P<name>\S+) \(trigger: (?P<trigger>.*?)(?:, next run at: .*)?\)" '
                      r"\(scheduled at (?P<at>[^)]+)\)$")
_INTERVAL = re.compile(r"interval\[(?:(?P<d>\d+) days?, )?(?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d(?:\.\d+)?)\]")


def job_runs(log_text: str, process: str) -> list[dict[str, Any]]:
    """Every job start in a gateway's JSON log (APScheduler's "Running job" at INFO): job, period, process.

    The period is the run's scheduled time, which APScheduler fixes before it starts the job: two runs of a job
    with the same scheduled time (or, from two schedulers, within one interval) ran the same period twice.
    """
    out = []
    for line in log_text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if not isinstance(rec, dict) or not str(rec.get("logger", "")).startswith("apscheduler"):
            continue
        m = _RUNNING.match(str(rec.get("message", "")))
        if m is None:
            continue
        interval = _INTERVAL.search(m["trigger"])
        period_s = None
        if interval is not None:
            period_s = (int(interval["d"] or 0) * 86400 + int(interval["h"]) * 3600 + int(interval["m"]) * 60
                        + float(interval["s"]))
        out.append({"job": m["name"], "scheduled_at": datetime.fromisoformat(m["at"].strip()).timestamp(),
                    "interval_s": period_s, "process": process, "logged": rec.get("ts")})
    return out


_SKIPPED = re.compile(r'^(?:Execution of job|Run time of job) "(?P<name>\S+) \(trigger: .*?" (?:skipped|was missed)')


def job_skips(log_text: str) -> Counter[str]:
    """Runs APScheduler did not start, per job: the last run still running, or the run time missed (WARNING)."""
    out: Counter[str] = Counter()
    for line in log_text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and (m := _SKIPPED.match(str(rec.get("message", "")))):
            out[m["name"]] += 1
    return out


def check_job_runs(runs: list[dict[str, Any]], windows: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """Per job: runs, periods run twice, periods missed while a scheduler was up, and which processes ran it.

    `windows` maps each process that had the scheduler role to the (start, end) Unix times it was up; an interval
    job is due once per interval inside them, so a gap between two consecutive runs longer than 1.5 intervals
    while a scheduler was up is a missed period.
    """
    report: dict[str, Any] = {}
    for job in sorted({r["job"] for r in runs}):
        mine = sorted((r for r in runs if r["job"] == job), key=lambda r: r["scheduled_at"])
        interval = mine[0]["interval_s"]
        same = Counter(round(r["scheduled_at"], 3) for r in mine)
        twice = sum(n - 1 for n in same.values() if n > 1)
        if interval:  # two schedulers on different clocks run one period at different instants
            twice += sum(1 for a, b in zip(mine, mine[1:], strict=False)
                         if 0 < b["scheduled_at"] - a["scheduled_at"] < 0.5 * interval)
        missed = 0
        if interval:
            for a, b in zip(mine, mine[1:], strict=False):
                gap = b["scheduled_at"] - a["scheduled_at"]
                up = any(s <= a["scheduled_at"] and b["scheduled_at"] <= e for s, e in windows.values())
                if up and gap > 1.5 * interval:
                    missed += round(gap / interval) - 1
        report[job] = {"runs": len(mine), "interval_s": interval, "periods_run_twice": twice,
                       "periods_missed": missed, "processes": sorted({r["process"] for r in mine})}
    return report


# -- influxd census ------------------------------------------------------------------------------------------------

def influx_keys(server: InfluxServer, db: str, since_ns: int, customer: str | None = None) -> Counter[tuple[str, str,
                                                                                                           int]]:
    """How many rows influxd holds per (meter, point, time) from `since_ns` on, over every tag set.

    influxd keeps one point per series and time, so a reading written twice with the same tags is one row; a count
    above 1 here is a duplicate that differs in some tag (unit, site, customer): the same reading stored twice.
    """
    where = f"time >= {since_ns}"
    if customer is not None:
        where += " AND \"customer\" = '" + customer.replace("'", "\\'") + "'"
    # S608: InfluxQL for the drill's own throwaway influxd, over the drill's own customer ids.
    answer: Any = server.query(f'SELECT "quality" FROM "reading" WHERE {where} GROUP BY *', db=db)  # noqa: S608
    keys: Counter[tuple[str, str, int]] = Counter()
    for series in (answer.get("results", [{}])[0].get("series") or []):
        tags = series.get("tags", {})
        for ts, _quality in series.get("values", []):
            keys[(tags.get("meter", ""), tags.get("point", ""), int(ts))] += 1
    return keys


def outbox_keys(path: Path) -> list[tuple[str, str, int]]:
    """Every reading waiting in a (stopped) gateway's outbox, as (meter, point, source time); read, not changed."""
    from gateway.outbox import Outbox

    box = Outbox(path)
    try:
        out: list[tuple[str, str, int]] = []
        after = 0
        while (batch := box.peek(100_000, after_id=after)) is not None:
            b = batch.batch
            out += zip(b.meter, b.point, b.source_ts, strict=True)
            after = batch.last_id
        return out
    finally:
        box.close()


def add_users(config: str, logins: list[dict[str, Any]]) -> None:
    """Run the `users add` command of energy-gateway's CLI for each login (password through --password-env)."""
    from typer.testing import CliRunner

    from gateway.cli.users import app

    runner = CliRunner()
    for login in logins:
        extra = ["--customer", login["customer"]] if login["role"] == "customer" else ["--manager", login["manager"]]
        r = runner.invoke(app, ["add", "--config", config, login["username"], "--role", login["role"], *extra,
                                "--password-env", "FLEET_PASSWORD"], env={"FLEET_PASSWORD": login["password"]})
        if r.exit_code != 0:
            raise SystemExit(f"users add {login['username']}: exit {r.exit_code}: {r.output.strip()}")


def pct(xs: list[float], q: float) -> float | None:
    """The q-quantile (nearest rank) of `xs`, None when empty."""
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    sims = sub.add_parser("sims", help="every plant's simulators in this process")
    sims.add_argument("--plants", type=int, default=3)
    users = sub.add_parser("users-add", help="`energy-gateway users add` for every login of a JSON file, in this "
                                           "process (one start-up instead of one per login)")
    users.add_argument("--config", required=True)
    users.add_argument("--logins", required=True, type=Path)
    args = ap.parse_args()
    if args.command == "users-add":
        add_users(args.config, json.loads(args.logins.read_text()))
    elif args.command == "sims":
        import logging

        logging.basicConfig(level=logging.WARNING)
        asyncio.run(_serve_sims(args.plants))


if __name__ == "__main__":
    main()
