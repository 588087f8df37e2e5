"""Soak with faults: a real `energy-gateway run` polling Modbus and OPC UA meters into a real influxd, with faults.

Topology (all on loopback; the simulators run in this process's thread or their own process, never the gateway's):
- server A: three meters on one connection, unit 2 silent from the start (a silent unit on a shared connection:
  its neighbours 1 and 3 must not lose polls to it);
- server B: two meters in their own process, killed (SIGKILL) and restarted on the same port;
- server C: two healthy meters;
- server G: one "meter" that answers every request with random bytes (garbage);
- OPC UA server U: two healthy meters (subscriptions at the poll interval), in its own process;
- OPC UA server K: two meters in their own process, killed (SIGKILL) and restarted on the same port: the collector's
  sessions must come back by themselves and nothing they delivered may be lost;
- influxd (Debian's 1.x, through tests/servers/influx.py), stopped for 2 minutes (a quarter of a run shorter than
  8 minutes) and started again; the outbox's row bound is set to half of what that outage queues, so it is reached
  and drops.
The faults do not overlap: Modbus B killed at 12 % of the run, OPC UA K at 22 %, influxd stopped at 35 %.

Every healthy device's "seconds since its last good poll" is read from the gateway's /metrics four times a second;
a fault's stall is the largest of those during the fault (plus 5 s after), and the baseline is the same measure
before the first fault, in the same run. A killed server's devices are "back" when their own age falls to two
intervals again after the restart (`recovered_after_s`). After the run (SIGTERM flushes the outbox), the gateway's
own counts are compared with the points in influxd: lost = collected - dropped - points, duplicated = stored - points
(influxd keeps one point per series and time, so a reading written twice shows up only as the difference).

Prints progress to stderr and one JSON object as its last stdout line.
Usage: .venv/bin/python bench/soak.py [--duration 600] [--interval 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.sim.modbus_server import ModbusPlantSimulator, demo_meters  # noqa: E402
from collectors.sim.opcua_server import NAMESPACE, POINT_UNITS  # noqa: E402
from tests.servers.influx import InfluxServer, free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
POINTS_PER_DEVICE = 8  # the generic profile's points, and the OPC UA simulator's (POINT_UNITS)
AGE = re.compile(r'^gateway_device_last_success_age_seconds\{device="([^"]+)",protocol="[^"]*"\} (\S+)$')
GAUGE = re.compile(r"^(gateway_outbox_depth|gateway_store_down_seconds) (\S+)$")


def log(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class SimThread:
    """Servers A (unit 2 silent), C and the garbage server G, in one asyncio loop in a thread of this process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ports: dict[str, int] = {}
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="sims", daemon=True)

    def start(self) -> dict[str, int]:
        self._thread.start()
        if not self._ready.wait(60):
            raise RuntimeError("the simulators did not start")
        return self.ports

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        a_meters = demo_meters(3, seed=300)
        a_meters[1].faults.silent = True
        a, c = ModbusPlantSimulator(a_meters), ModbusPlantSimulator(demo_meters(2, seed=500))
        await a.start()
        await c.start()
        garbage = await asyncio.start_server(self._garbage, "127.0.0.1", 0)
        self.ports = {"A": a.port, "C": c.port, "G": garbage.sockets[0].getsockname()[1]}
        self._ready.set()
        await self._stop.wait()
        garbage.close()
        await a.stop()
        await c.stop()
        # The silent unit's requests never got an answer: end their handlers rather than leave them to the GC.
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in rest:
            t.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    @staticmethod
    async def _garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer every request with random bytes of a random length (a meter whose firmware lost its mind)."""
        rng = random.Random(7)  # noqa: S311 - noise, not secrecy
        try:
            while await reader.read(260):
                writer.write(rng.randbytes(rng.randint(3, 40)))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


class KillableSim:
    """A simulator in its own process on a fixed port, so it can be killed and come back where the gateway looks.

    `module` is collectors.sim.modbus_server (servers B) or collectors.sim.opcua_server (servers U and K); both
    print one JSON line once they listen, holding `ready_key`.
    """

    def __init__(self, name: str, module: str, ready_key: str, meters: int = 2) -> None:
        self.name, self.module, self.ready_key, self.meters = name, module, ready_key, meters
        self.port = free_port()
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, "--meters", str(self.meters), "--port", str(self.port)],
            stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the JSON line it prints once it listens
        if f'"{self.ready_key}"' not in line:
            raise RuntimeError(f"simulator {self.name} did not start: {line!r}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _device(name: str, port: int, unit: int, interval_s: float) -> str:
    return (f'[[meters]]\nid = "m-{name}"\nsite = "s1"\ndevice = "{name}"\n\n'
            f'[[devices]]\ntype = "modbus"\nname = "{name}"\nhost = "127.0.0.1"\nport = {port}\nunit = {unit}\n'
            f'profile = "generic"\ninterval_s = {interval_s}\ntimeout_s = 0.5\nbackoff_max_s = 5\n\n')


def _opcua_device(name: str, port: int, meter: int, interval_s: float) -> str:
    """A subscribing OPC UA device on simulator meter `meter{meter}` (the standalone simulator's names)."""
    nodes = "".join(f'[[devices.nodes]]\npoint = "{p}"\nnode_id = "nsu={NAMESPACE};s=meter{meter}.{p}"\n'
                    f'unit = "{unit}"\n\n' for p, unit in POINT_UNITS.items())
    return (f'[[meters]]\nid = "m-{name}"\nsite = "s1"\ndevice = "{name}"\n\n'
            f'[[devices]]\ntype = "opcua"\nname = "{name}"\nurl = "opc.tcp://127.0.0.1:{port}/plant/"\n'
            f'mode = "subscribe"\ninterval_s = {interval_s}\ntimeout_s = 2.0\nbackoff_max_s = 5\n\n' + nodes)


# name -> (server, unit or OPC UA meter number); which are healthy, and which sit beside the silent unit
DEVICES = {"a1": ("A", 1), "a2-silent": ("A", 2), "a3": ("A", 3), "b1": ("B", 1), "b2": ("B", 2),
           "c1": ("C", 1), "c2": ("C", 2), "g-garbage": ("G", 1),
           "u1": ("U", 1), "u2": ("U", 2), "k1": ("K", 1), "k2": ("K", 2)}
OPCUA_SERVERS = ("U", "K")
HEALTHY = ["a1", "a3", "c1", "c2", "u1", "u2"]
SILENT_NEIGHBOURS = ["a1", "a3"]
KILLED = {"modbus_server_killed": ["b1", "b2"], "opcua_server_killed": ["k1", "k2"]}


def write_config(path: Path, ports: dict[str, int], influx_url: str, api_port: int, max_rows: int,
                 interval_s: float) -> None:
    devices = "".join((_opcua_device if server in OPCUA_SERVERS else _device)(name, ports[server], unit, interval_s)
                      for name, (server, unit) in DEVICES.items())
    path.write_text(
        '[gateway]\ndata_dir = "state"\nenvironment = "development"\nrun_scheduler = false\n\n'
        f'[store]\ntype = "influxdb"\napi = "v1"\nurl = "{influx_url}"\ndatabase = "soak"\ncreate_database = true\n'
        'timeout_s = 5\n\n'
        f'[outbox]\nmax_rows = {max_rows}\n\n[api]\nport = {api_port}\nwarm_days = 0\n\n'
        '[[customers]]\nid = "c1"\nname = "C1"\n\n[[sites]]\nid = "s1"\ncustomer = "c1"\n\n' + devices)


class Scraper:
    """Reads the gateway's /metrics four times a second: each device's age since its last good poll, outbox depth."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ages: list[tuple[float, dict[str, float]]] = []
        self.gauges: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scraper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def scrape(self) -> dict[str, float] | None:
        try:
            with urllib.request.urlopen(self.url, timeout=5) as r:  # noqa: S310 - loopback
                text = r.read().decode()
        except OSError:
            return None
        ages = {}
        for line in text.splitlines():
            if m := AGE.match(line):
                ages[m[1]] = float(m[2])
            elif m := GAUGE.match(line):
                self.gauges[m[1]] = float(m[2])
        return ages

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            ages = self.scrape()
            if ages is not None:
                self.ages.append((time.monotonic(), ages))

    def worst(self, devices: list[str], start: float, end: float) -> float | None:
        seen = [age for t, ages in self.ages if start <= t <= end for d, age in ages.items() if d in devices]
        return round(max(seen), 2) if seen else None

    def worst_where(self, devices: list[str], start: float, end: float, t0: float) -> dict[str, Any] | None:
        """The device whose age peaked in the window, and when (seconds into the run): which one to chase."""
        seen = [(age, d, t) for t, ages in self.ages if start <= t <= end for d, age in ages.items() if d in devices]
        if not seen:
            return None
        age, device, t = max(seen)
        return {"device": device, "age_s": round(age, 2), "at_s": round(t - t0, 1)}

    def recovered(self, devices: list[str], since: float, within: float) -> float | None:
        """Seconds after `since` until every one of `devices` had a good poll less than `within` seconds old."""
        for t, ages in self.ages:
            if t >= since and all(ages.get(d, within + 1) <= within for d in devices):
                return round(t - since, 1)
        return None


def proc_usage(pid: int) -> dict[str, int]:
    """Resident memory (KiB) and open files of a process, from /proc."""
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return {"rss_kib": rss, "open_files": len(os.listdir(f"/proc/{pid}/fd"))}


def influx_points(server: InfluxServer) -> dict[str, int]:
    """Points per device in the soak database (every reading has a `quality` field)."""
    answer: Any = server.query('SELECT count("quality") FROM "reading" GROUP BY "device"', db="soak")
    out = {}
    for series in answer.get("results", [{}])[0].get("series", []) or []:
        out[series["tags"]["device"]] = int(series["values"][0][1])
    return out


def wait_until(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def main() -> None:  # noqa: PLR0915 - one scenario, read top to bottom
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of soak (the faults scale below 600)")
    ap.add_argument("--interval", type=float, default=1.0, help="poll interval of every meter, seconds")
    args = ap.parse_args()
    d, interval = args.duration, args.interval
    warm = min(30.0, 0.08 * d)
    kill_at, kill_for = 0.12 * d, min(30.0, 0.08 * d)
    ua_kill_at = 0.22 * d
    influx_at, influx_for = 0.35 * d, min(120.0, 0.25 * d)
    rate = len(DEVICES) * POINTS_PER_DEVICE / interval  # readings/s, comm_lost ones included
    max_rows = max(1000, int(rate * influx_for * 0.5))  # reached half-way through the influxd outage

    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    influx = InfluxServer(tmp / "influxd")
    sims = SimThread()
    b = KillableSim("B", "collectors.sim.modbus_server", "ports")
    opcua = {name: KillableSim(name, "collectors.sim.opcua_server", "url") for name in OPCUA_SERVERS}
    gateway: subprocess.Popen[str] | None = None
    try:
        influx.start()
        ports = sims.start()
        b.start()
        ports["B"] = b.port
        for name, sim in opcua.items():
            sim.start()
            ports[name] = sim.port
        api_port = free_port()
        config = tmp / "gateway.toml"
        write_config(config, ports, influx.url, api_port, max_rows, interval)
        err_log = (tmp / "gateway.err").open("w")
        gateway = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "--config", str(config)],
                                   stdout=subprocess.PIPE, stderr=err_log, text=True, cwd=ROOT)
        scraper = Scraper(f"http://127.0.0.1:{api_port}/metrics")
        wait_until(lambda: scraper.scrape() is not None, 120, "the gateway's /metrics")
        t0 = time.monotonic()
        scraper.start()
        log(f"gateway pid {gateway.pid} running; {len(DEVICES)} devices at {interval} s, outbox max_rows {max_rows}")
        faults: dict[str, tuple[float, float]] = {}

        def at(offset: float) -> None:
            time.sleep(max(0.0, t0 + offset - time.monotonic()))

        at(warm)
        usage_start = proc_usage(gateway.pid)
        at(kill_at)
        log("fault: Modbus server B killed")
        b.kill()
        at(kill_at + kill_for)
        b.start()
        log("Modbus server B restarted")
        faults["modbus_server_killed"] = (t0 + kill_at, t0 + kill_at + kill_for)
        at(ua_kill_at)
        log("fault: OPC UA server K killed")
        opcua["K"].kill()
        at(ua_kill_at + kill_for)
        opcua["K"].start()
        log("OPC UA server K restarted")
        faults["opcua_server_killed"] = (t0 + ua_kill_at, t0 + ua_kill_at + kill_for)
        at(influx_at)
        log(f"fault: influxd stopped for {influx_for:.0f} s")
        influx.stop()
        at(influx_at + influx_for)
        influx.start()
        log("influxd started again")
        faults["influxd_stopped"] = (t0 + influx_at, t0 + influx_at + influx_for)
        at(d)
        usage_end = proc_usage(gateway.pid)
        wait_until(lambda: scraper.gauges.get("gateway_outbox_depth", 1) == 0, 300, "the outbox to drain")
        scraper.stop()
        gateway.send_signal(signal.SIGTERM)
        out, _ = gateway.communicate(timeout=120)
        stats = json.loads(out.strip().splitlines()[-1])
        points = influx_points(influx)
    finally:
        if gateway is not None and gateway.poll() is None:
            gateway.kill()
        b.kill()
        for sim in opcua.values():
            sim.kill()
        sims.stop()
        influx.stop()

    stored_points = sum(points.values())
    settle = 5.0
    stalls = {name: scraper.worst(HEALTHY, start, end + settle) for name, (start, end) in faults.items()}
    stalls["garbage_meter"] = scraper.worst(HEALTHY, t0 + warm, t0 + d)  # all along
    stalls["silent_unit_on_shared_connection"] = scraper.worst(SILENT_NEIGHBOURS, t0 + warm, t0 + d)
    baseline = scraper.worst(HEALTHY, t0 + warm, t0 + kill_at)
    where = {name: scraper.worst_where(HEALTHY, start, end + settle, t0) for name, (start, end) in faults.items()}
    where["garbage_meter"] = scraper.worst_where(HEALTHY, t0 + warm, t0 + d, t0)
    where["silent_unit_on_shared_connection"] = scraper.worst_where(SILENT_NEIGHBOURS, t0 + warm, t0 + d, t0)
    recovered = {name: scraper.recovered(KILLED[name], faults[name][1], 2 * interval) for name in KILLED}
    growth = (usage_end["rss_kib"] - usage_start["rss_kib"]) / usage_start["rss_kib"] * 100
    lost = stats["collected"] - stats["dropped"] - stats.get("rejected", 0) - stored_points
    per_device: dict[str, int] = defaultdict(int, points)
    result = {
        "duration_s": d, "interval_s": interval, "devices": len(DEVICES), "healthy_devices": HEALTHY,
        "faults_s": {name: [round(s - t0, 1), round(e - t0, 1)] for name, (s, e) in faults.items()},
        "collected": stats["collected"], "stored": stats["stored"], "influx_points": stored_points,
        "dropped": stats["dropped"], "dropped_by_reason": stats["dropped_by_reason"],
        "rejected": stats.get("rejected", 0), "lost": lost, "duplicated": max(0, stats["stored"] - stored_points),
        "points_per_device": dict(per_device),
        "outbox_max_rows": max_rows,
        "rss_kib": {"start": usage_start["rss_kib"], "end": usage_end["rss_kib"], "growth_pct": round(growth, 1)},
        "open_files": {"start": usage_start["open_files"], "end": usage_end["open_files"]},
        "longest_healthy_stall_s": {"baseline_no_fault": baseline, **stalls},
        "longest_stall_where": where,
        "recovered_after_s": recovered,
        "targets": {
            "nothing_lost_or_duplicated": lost == 0 and stats["stored"] >= stored_points,
            "rss_growth_under_10_pct": growth < 10,
            "no_healthy_stall_over_2_intervals": all(s is not None and s <= 2 * interval for s in stalls.values()),
            "killed_servers_came_back": all(r is not None for r in recovered.values()),
        },
    }
    log(f"gateway log: {tmp / 'gateway.err'}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
