"""Side by side: our collector process against ThingsBoard IoT Gateway on the same simulated Modbus meters.

Setup (all on loopback): thingsboard-gateway 3.8.5 in its own virtual environment under the cache directory
(installed on first use), Debian's mosquitto on a free port as ThingsBoard GW's "server", the simulated meters
(`collectors.sim.modbus_server`, N servers, 50 float32 input registers read from each) in their own process.
Then, one gateway at a time on the same meters:
- ours: `energy-gateway run` with a generated gateway.toml (embedded store, durable outbox on, API off, scheduler
  off; `--role collector` by default, a plant's collector process, its store writer a child process unless
  `--store-writer thread`); readings counted in its SQLite store (rows, durably stored);
- ThingsBoard GW: its Modbus connector (one device per meter, 50 `32float` timeseries, ON_RECEIVED, memory
  storage, no rate limits) publishing to mosquitto; a subscriber in its own process counts the telemetry values.
Each run: start, wait for the first reading, warm up, then a steady window. Measured over the window: the gateway's
process tree CPU seconds (user + system), RSS (peak over the whole run and at the end), readings stored (ours) or
published (theirs). Reported: readings per CPU-second for each, their ratio (the baseline is ThingsBoard GW,
measured in the same run), and readings per wall-second (the overload case: stored vs published).

Exits 0 with `{"skipped": reason}` when thingsboard-gateway cannot be installed or mosquitto is not there.
Prints progress to stderr and one JSON object as its last stdout line.
Usage: .venv/bin/python bench/vs_thingsboard.py [--devices 20,100,200] [--interval 1] [--overload]
       [--seconds 30] [--warmup 10] [--cache-dir ~/.cache/energy-gateway-bench] [--only ours|tb]
       [--role collector|all] [--store-writer process|thread]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

ROOT = Path(__file__).resolve().parents[1]
TB_VERSION = "3.8.5"
TB_PYMODBUS = "3.9.2"  # the version its Modbus connector pip-installs at start-up when another is there
POINTS = 50
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")

# The subscriber, run by the tb-venv's python (which has paho): counts values in ThingsBoard gateway telemetry
# ({"device": [{"ts": ..., "values": {...}}, ...]}); prints the running total for each line read on stdin. It also
# answers the gateway's "getSessionLimits" RPC as a ThingsBoard server would (no rate limits, 64 KiB payloads):
# the gateway publishes nothing until it has that answer.
SUBSCRIBER = r"""
import json, sys, threading
import paho.mqtt.client as mqtt
count = 0
lock = threading.Lock()
LIMITS = json.dumps({"rateLimits": {}, "gatewayRateLimits": {}, "maxInflightMessages": 10000,
                     "maxPayloadSize": 65536})
def on_message(client, userdata, msg):
    global count
    if msg.topic.startswith("v1/devices/me/rpc/request/"):
        client.publish("v1/devices/me/rpc/response/" + msg.topic.rsplit("/", 1)[1], LIMITS, qos=1)
        return
    n = 0
    for entries in json.loads(msg.payload).values():
        for e in (entries if isinstance(entries, list) else [entries]):
            n += len(e.get("values", e)) if isinstance(e, dict) else 0
    with lock:
        count += n
def on_connect(client, userdata, *args):
    client.subscribe([("v1/gateway/telemetry", 1), ("v1/devices/me/rpc/request/+", 1)])
    print("ready", flush=True)
try:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-counter")
except AttributeError:
    c = mqtt.Client(client_id="bench-counter")
c.on_message, c.on_connect = on_message, on_connect
c.connect("127.0.0.1", int(sys.argv[1]))
c.loop_start()
for _ in sys.stdin:
    with lock:
        print(count, flush=True)
"""


class Skip(Exception):
    """A prerequisite is missing: the bench prints {"skipped": reason} and exits 0."""


def log(msg: str) -> None:
    print(f"[vs_thingsboard {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[Any], timeout: float = 60.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def ensure_tb_venv(cache: Path) -> Path:
    """The python of `<cache>/tb-venv`, with thingsboard-gateway and its Modbus connector's libraries installed."""
    venv = cache / "tb-venv"
    python = venv / "bin" / "python"
    probe = ("import importlib.metadata as m, sys; v = m.version; "
             f"sys.exit(0 if v('thingsboard-gateway') == '{TB_VERSION}' and v('pymodbus') == '{TB_PYMODBUS}' "
             "and v('pyserial-asyncio') else 1)")
    if python.exists() and subprocess.run([str(python), "-c", probe], capture_output=True).returncode == 0:
        return python
    log(f"installing thingsboard-gateway=={TB_VERSION} into {venv} (once; a minute or two)")
    cache.mkdir(parents=True, exist_ok=True)
    steps = [[sys.executable, "-m", "venv", str(venv)],
             [str(python), "-m", "pip", "install", "-q", f"thingsboard-gateway=={TB_VERSION}",
              f"pymodbus=={TB_PYMODBUS}", "pyserial", "pyserial-asyncio"]]
    for cmd in steps:
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            tail = [line for line in done.stderr.splitlines() if not line.startswith("WARNING")][-3:]
            raise Skip(f"cannot install thingsboard-gateway=={TB_VERSION}: {' | '.join(tail) or done.returncode}")
    return python


def ensure_mosquitto() -> str:
    def find() -> str | None:
        return shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)

    if not find() and os.geteuid() == 0:
        log("apt-get install mosquitto")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "mosquitto"], capture_output=True, env=env)
    found = find()
    if not found:
        raise Skip("mosquitto is not installed" + (" and apt-get could not install it" if os.geteuid() == 0 else
                                                   " and this is not root: apt-get install mosquitto"))
    return found


class ProcTree:
    """CPU seconds and RSS of a process and its descendants, from /proc (psutil is no dependency of the project)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss = 0

    def sample(self) -> tuple[float, int]:
        """(CPU seconds of the tree, its reaped children's included; RSS bytes of the tree now)."""
        cpu, rss, todo = 0.0, 0, [self.pid]
        while todo:
            pid = todo.pop()
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                rss += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
                for task in Path(f"/proc/{pid}/task").glob("*/children"):
                    todo += [int(x) for x in task.read_text().split()]
            except OSError:  # a child that ended between listing and reading
                continue
            # utime, stime (and for the root also cutime, cstime: children it has waited for)
            cpu += sum(int(x) for x in fields[11:15 if pid == self.pid else 13]) / TICKS
        self.peak_rss = max(self.peak_rss, rss)
        return cpu, rss

    def lifetime_peak_rss(self) -> int:
        """The main process's own high-water mark (VmHWM) or the tree's sampled peak, whichever is larger."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return max(self.peak_rss, int(line.split()[1]) * 1024)
        except OSError:
            pass
        return self.peak_rss


@dataclass
class Window:
    warmup: float
    seconds: float
    sim_pid: int  # the simulator's CPU over the window is reported too: a saturated simulator slows both sides


def measure(proc: subprocess.Popen[Any], count: Callable[[], int], w: Window, name: str) -> dict[str, Any]:
    """Wait for the first reading (120 s at most), warm up, then measure CPU, RSS and `count` over the window.

    A gateway that gives nothing in 120 s is measured all the same (it is overwhelmed, not broken): no warm-up,
    `first_reading_s` null, and the window says what it did publish or store, if anything.
    """
    tree, sim = ProcTree(proc.pid), ProcTree(w.sim_pid)
    warmup, seconds = w.warmup, w.seconds
    started = time.monotonic()
    first: float | None = None
    while first is None and time.monotonic() < started + 120:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with code {proc.returncode} before its first reading")
        if count() > 0:
            first = time.monotonic() - started
        tree.sample()
        time.sleep(0.5)
    if first is None:
        log(f"{name}: no reading within 120 s; measuring {seconds:.0f} s anyway")
        warmup = 0.0
    else:
        log(f"{name}: first readings in; warm-up {warmup:.0f} s, then {seconds:.0f} s measured")
    end_warmup = time.monotonic() + warmup
    while time.monotonic() < end_warmup:
        tree.sample()
        time.sleep(0.5)
    (cpu0, _), (sim0, _) = tree.sample(), sim.sample()
    n0, t0 = count(), time.monotonic()
    while time.monotonic() < t0 + seconds:
        time.sleep(0.5)
        tree.sample()
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with code {proc.returncode} during the window")
    (cpu1, rss_end), (sim1, _) = tree.sample(), sim.sample()
    n1, t1 = count(), time.monotonic()
    wall, cpu, n = t1 - t0, cpu1 - cpu0, n1 - n0
    return {"first_reading_s": None if first is None else round(first, 1), "readings": n,
            "window_s": round(wall, 1), "cpu_s": round(cpu, 2),
            "readings_per_cpu_s": round(n / cpu) if cpu > 0 else None, "readings_per_s": round(n / wall),
            "cpu_share": round(cpu / wall, 3), "rss_peak_mb": round(tree.lifetime_peak_rss() / 2**20, 1),
            "rss_end_mb": round(rss_end / 2**20, 1), "loadavg_1m_end": round(os.getloadavg()[0], 2),
            "simulator_cpu_share": round((sim1 - sim0) / wall, 3)}


def run_ours(ports: list[int], interval: float, w: Window, role: str = "collector",
             store_writer: str = "process") -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vs-tb-ours-") as tmp:
        work = Path(tmp)
        devices, meters = [], []
        for i, port in enumerate(ports):
            points = "".join(f'\n[[devices.points]]\nname = "p{j:02d}"\naddress = {2 * j}\nkind = "input"\n'
                             f'type = "float32"\n' for j in range(POINTS))
            devices.append(f'\n[[devices]]\ntype = "modbus"\nname = "meter{i:03d}"\nhost = "127.0.0.1"\n'
                           f'port = {port}\nunit = 1\ninterval_s = {interval}\ntimeout_s = 2.0\n{points}')
            meters.append(f'\n[[meters]]\nid = "m{i:03d}"\nsite = "s1"\ndevice = "meter{i:03d}"\n')
        config = work / "gateway.toml"
        config.write_text(
            f'[gateway]\nname = "bench"\ndata_dir = "{work / "state"}"\nrun_scheduler = false\nrole = "{role}"\n\n'
            f'[store]\ntype = "embedded"\n\n[outbox]\npath = "outbox.db"\nstore_writer = "{store_writer}"\n\n'
            '[api]\nenabled = false\n\n'
            '[[customers]]\nid = "c1"\nname = "C1"\n\n[[sites]]\nid = "s1"\ncustomer = "c1"\n'
            + "".join(meters) + "".join(devices))
        (work / "state").mkdir()
        exe = Path(sys.executable).with_name("energy-gateway")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "gateway.cli"]
        logf = (work / "gateway.log").open("w")
        proc = subprocess.Popen([*cmd, "run", "--config", str(config)], stdout=subprocess.PIPE, stderr=logf,
                                text=True, cwd=work)
        db = work / "state" / "timeseries.db"

        def stored() -> int:
            if not db.exists():
                return 0
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as con:
                    return int(con.execute("SELECT count(*) FROM samples").fetchone()[0])
            except sqlite3.OperationalError:
                return 0  # not created yet

        try:
            out = measure(proc, stored, w, "ours")
        except RuntimeError:
            stop_process(proc)
            logf.close()
            log((work / "gateway.log").read_text()[-3000:])
            raise
        t = time.monotonic()
        stop_process(proc)  # SIGTERM: the outbox is flushed into the store before it exits
        out["stop_s"] = round(time.monotonic() - t, 1)
        logf.close()
        last = (proc.stdout.read() if proc.stdout else "").strip().splitlines()  # `run` prints its totals last
        totals = json.loads(last[-1]) if last and last[-1].startswith("{") else {}
        # Collected but not yet stored at exit stays in the durable outbox for the next start (not lost).
        out["run_totals"] = {k: totals[k] for k in ("collected", "stored", "dropped", "outbox_depth") if k in totals}
        out["rows_after_stop"] = stored()
        return out


def tb_config(dirpath: Path, tb_python: Path, mqtt_port: int, ports: list[int], interval: float) -> None:
    pkg = subprocess.run([str(tb_python), "-c", "import thingsboard_gateway, os; "
                          "print(os.path.dirname(thingsboard_gateway.__file__))"],
                         capture_output=True, text=True, check=True).stdout.strip()
    # logs.json, list.json, statistics.json ... as shipped; not its sample devices or backups
    shutil.copytree(Path(pkg) / "config", dirpath, ignore=shutil.ignore_patterns("connected_devices.json", "backup"))
    none = "0:0,"
    main = json.loads((dirpath / "tb_gateway.json").read_text())
    main["thingsboard"].update({
        "host": "127.0.0.1", "port": mqtt_port, "remoteShell": False, "remoteConfiguration": False,
        "statistics": {"enable": False, "statsSendPeriodInSeconds": 3600}, "security": {"type": "accessToken",
                                                                                       "accessToken": "bench"},
        "reportStrategy": {"type": "ON_RECEIVED"}, "rateLimits": none, "dpRateLimits": none,
        "messagesRateLimits": none, "deviceMessagesRateLimits": none, "deviceRateLimits": none,
        "deviceDpRateLimits": none})
    main["storage"] = {"type": "memory", "read_records_count": 100, "max_records_count": 1_000_000}
    main["connectors"] = [{"type": "modbus", "name": "Modbus", "configuration": "bench_modbus.json"}]
    (dirpath / "tb_gateway.json").write_text(json.dumps(main, indent=2))
    timeseries = [{"tag": f"p{j:02d}", "type": "32float", "functionCode": 4, "objectsCount": 2, "address": 2 * j}
                  for j in range(POINTS)]
    slaves = [{"host": "127.0.0.1", "port": port, "type": "tcp", "method": "socket", "unitId": 1,
               "deviceName": f"meter{i:03d}", "deviceType": "meter", "timeout": 2, "byteOrder": "BIG",
               "wordOrder": "BIG", "retries": True, "retryOnEmpty": True, "retryOnInvalid": True,
               "pollPeriod": int(interval * 1000), "connectAttemptTimeMs": 5000, "connectAttemptCount": 5,
               "waitAfterFailedAttemptsMs": 30000, "reportStrategy": {"type": "ON_RECEIVED"},
               "attributes": [], "timeseries": timeseries, "attributeUpdates": [], "rpc": []}
              for i, port in enumerate(ports)]
    (dirpath / "bench_modbus.json").write_text(json.dumps({"logLevel": "WARNING", "master": {"slaves": slaves}}))


def run_tb(tb_python: Path, mqtt_port: int, ports: list[int], interval: float, w: Window) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vs-tb-theirs-") as tmp:
        work = Path(tmp)
        tb_config(work / "config", tb_python, mqtt_port, ports, interval)
        sub = subprocess.Popen([str(tb_python), "-c", SUBSCRIBER, str(mqtt_port)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
        stdin, stdout = cast(IO[str], sub.stdin), cast(IO[str], sub.stdout)  # both are pipes
        if stdout.readline().strip() != "ready":
            stop_process(sub)
            raise RuntimeError("the MQTT subscriber did not connect to mosquitto")
        logf = (work / "tb.log").open("w")
        env = {**os.environ, "TB_GW_CONFIG_DIR": str(work / "config") + "/"}
        proc = subprocess.Popen([str(tb_python), "-m", "thingsboard_gateway.tb_gateway"], stdout=logf,
                                stderr=subprocess.STDOUT, cwd=work, env=env)

        def published() -> int:
            stdin.write("?\n")
            stdin.flush()
            return int(stdout.readline())

        try:
            out = measure(proc, published, w, "thingsboard-gateway")
        except RuntimeError:
            logf.flush()
            log((work / "tb.log").read_text()[-3000:])
            raise
        finally:
            stop_process(proc, 30)
            logf.close()
            stdin.close()
            stop_process(sub)
        return out


def case(args: argparse.Namespace, tb_python: Path, mqtt_port: int, devices: int, interval: float
         ) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "collectors.sim.modbus_server", "--servers", str(devices), "--meters", "1"]
    sim = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    line = sim.stdout.readline() if sim.stdout else ""
    if not line:
        stop_process(sim)
        raise RuntimeError(f"the simulator did not start: {' '.join(cmd)}")
    ports: list[int] = json.loads(line)["ports"]
    w = Window(args.warmup, args.seconds, sim.pid)
    res: dict[str, Any] = {"devices": devices, "points_per_device": POINTS, "interval_s": interval,
                           "offered_per_s": round(devices * POINTS / interval)}
    runs: list[tuple[str, str, Callable[[], dict[str, Any]]]] = [
        ("ours", "ours", lambda: run_ours(ports, interval, w, args.role, args.store_writer)),
        ("tb", "thingsboard", lambda: run_tb(tb_python, mqtt_port, ports, interval, w))]
    try:
        for flag, key, run in runs:
            if args.only in (None, flag):
                log(f"{key}: {devices} devices x {POINTS} points at {interval} s")
                try:
                    res[key] = run()
                except RuntimeError as exc:  # one gateway failing still reports the other
                    res[key] = {"error": str(exc)}
                log(f"{key}: {res[key]}")
    finally:
        stop_process(sim)
    ours, theirs = res.get("ours"), res.get("thingsboard")
    if ours and theirs and "error" not in ours and "error" not in theirs:
        a, b = ours["readings_per_cpu_s"], theirs["readings_per_cpu_s"]
        res["ratio_per_cpu_s"] = round(a / b, 2) if a and b else None
        res["ratio_per_s"] = round(ours["readings_per_s"] / theirs["readings_per_s"], 2) \
            if theirs["readings_per_s"] else None
    return res


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", default="20", help="comma-separated device counts, e.g. 20,100,200")
    ap.add_argument("--interval", type=float, default=1.0, help="poll interval in seconds")
    ap.add_argument("--overload", action="store_true", help="also 200 devices at 0.1 s")
    ap.add_argument("--seconds", type=float, default=30.0, help="measured window per gateway")
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds after the first reading, not measured")
    ap.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "energy-gateway-bench")
    ap.add_argument("--only", choices=["ours", "tb"], help="run one side only")
    ap.add_argument("--role", choices=["collector", "all"], default="collector",
                    help="our process: the collector role (a plant's collector, the default) or the full gateway")
    ap.add_argument("--store-writer", choices=["process", "thread"], default="process",
                    help="the collector role's store writer: a process of its own, or a thread in the collector")
    args = ap.parse_args(argv)
    cases = [(int(n), args.interval) for n in args.devices.split(",") if n.strip()]
    if args.overload:
        cases.append((200, 0.1))
    result: dict[str, Any] = {"cpus": len(os.sched_getaffinity(0)), "loadavg_start": os.getloadavg(),
                              "thingsboard_gateway": TB_VERSION, "ours": {"role": args.role,
                                                                          "store_writer": args.store_writer},
                              "storage": {"ours": "embedded SQLite + outbox",
                                                                             "thingsboard": "memory"},
                              "readings": {"ours": "rows stored in the embedded store",
                                           "thingsboard": "telemetry values received from mosquitto"}}
    try:
        tb_python = ensure_tb_venv(args.cache_dir) if args.only != "ours" else Path(sys.executable)
        mosquitto = ensure_mosquitto() if args.only != "ours" else ""
    except Skip as exc:
        print(json.dumps({"skipped": str(exc)}))
        return {"skipped": str(exc)}
    broker = None
    with tempfile.TemporaryDirectory(prefix="vs-tb-mqtt-") as tmp:
        try:
            mqtt_port = free_port()
            if mosquitto:
                conf = Path(tmp) / "mosquitto.conf"
                conf.write_text(f"listener {mqtt_port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                                "max_queued_messages 100000\n")
                broker = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)
                deadline = time.monotonic() + 15
                while True:
                    try:
                        socket.create_connection(("127.0.0.1", mqtt_port), 1).close()
                        break
                    except OSError:
                        if broker.poll() is not None or time.monotonic() > deadline:
                            raise RuntimeError("mosquitto did not start") from None
                        time.sleep(0.1)
            result["cases"] = [case(args, tb_python, mqtt_port, n, interval) for n, interval in cases]
        finally:
            if broker is not None:
                stop_process(broker)
    result["loadavg_end"] = os.getloadavg()
    result["targets"] = {"ratio_per_cpu_s_200_devices_1s": 3.0, "overload_stored_vs_published": 2.0}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
