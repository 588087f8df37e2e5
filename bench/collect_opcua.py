"""OPC UA collector benchmark: the collector against OPC UA plant simulators, 10,000 nodes at 1 s (issue 16).

1. Poll throughput: values/s of the collector's chunked reads (DataValue -> Reading with quality and timestamps)
   against raw asyncua `read_attributes` of the same nodes, alternating, in the same run (one simulator process).
2. Subscriptions: notifications/s delivered through the collector against a raw asyncua subscription on the same
   nodes, each for the same time.
3. Sustained, before and after in the same run, at `--sustained-nodes` (10,000) written every second:
   - before: the old setup, asyncua's server in this process (each node written through write_attribute_value)
     and the collector in its old configuration (one session, one subscription publishing every interval), for a
     short window (`--baseline-duration`);
   - after: the nodes spread over `--servers` simulator processes of their own (`python -m
     collectors.sim.opcua_server --fast`, each writing its share once a second in one pass with the source time
     set), the collector as the gateway runs it with `--sessions-per-server` device entries per server, each
     spreading its nodes over subscriptions of `--items-per-subscription`, publishing every `--publishing-ms`
     with `--queue-size` values kept per node (a publish that comes late then loses nothing),
     measured over `--sustained-duration` seconds after `--warmup` seconds.
   Reported: notifications/s against expected (nodes / interval) and against what the servers wrote, lateness
   (the collector's receive time - source time) p50/p95/p99, this process's CPU seconds per 1,000 notifications
   (the servers are processes of their own in "after"; in "before" they are in this process and counted too),
   its RSS, each server process's CPU share (saturated above 90 % of a core), and the load average.
Notifications are counted by source timestamp inside the measuring window.

Prints one JSON object as its last stdout line (`run(args)` returns it for bench/collect.py --protocol opcua).
Usage: .venv/bin/python bench/collect_opcua.py [--nodes 200] [--duration 5] [--sustained-nodes 10000]
       [--servers 4] [--sessions-per-server 1] [--items-per-subscription 1000] [--publishing-ms 500]
       [--queue-size 4]
       [--warmup 10] [--sustained-duration 60] [--baseline-duration 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asyncua import Client, ua  # noqa: E402

from collectors.base import ReadingBatch  # noqa: E402
from collectors.opcua import OpcUaCollector, OpcUaDeviceConfig  # noqa: E402
from collectors.opcua.collector import _Device  # noqa: E402
from collectors.reading import Reading  # noqa: E402
from collectors.sim.load import LoadModel  # noqa: E402
from collectors.sim.opcua_server import OpcUaPlantSimulator, SimOpcUaMeter  # noqa: E402

POINTS_PER_METER = 8
MODELS = 8  # distinct load models cycled over the meters: starting 1,250 meters takes seconds, not minutes
# Every sample is a notification, also an unchanged value (a power factor at its limit stays put for seconds):
# otherwise "every node every second" is not what the servers send.
EVERY_SAMPLE = "status_value_timestamp"
ROOT = Path(__file__).resolve().parents[1]
_TICK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class Simulator:
    """python -m collectors.sim.opcua_server in `servers` subprocesses, the nodes spread over them.

    `urls` and `per_server` (node ids) are per server; `node_ids` is every node (one server) or the first's.
    """

    def __init__(self, nodes: int, servers: int = 1, fast: bool = False) -> None:
        self.meters = max(1, -(-nodes // POINTS_PER_METER))
        self.servers = max(1, min(servers, self.meters))
        self.fast = fast
        self.procs: list[subprocess.Popen[str]] = []
        self.urls: list[str] = []
        self.per_server: list[list[str]] = []

    @property
    def url(self) -> str:
        return self.urls[0]

    @property
    def node_ids(self) -> list[str]:
        return [n for ids in self.per_server for n in ids] if self.servers == 1 else self.per_server[0]

    def cpu_s(self) -> list[float]:
        return [proc_cpu_s(p.pid) for p in self.procs]

    def __enter__(self) -> Simulator:
        t = time.monotonic()
        share = [self.meters // self.servers + (i < self.meters % self.servers) for i in range(self.servers)]
        for meters in share:  # started together: building the address space is the slow part
            cmd = [sys.executable, "-m", "collectors.sim.opcua_server", "--meters", str(meters),
                   "--models", str(MODELS)] + (["--fast"] if self.fast else [])
            self.procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT))
        for proc in self.procs:
            assert proc.stdout is not None
            info = json.loads(proc.stdout.readline())
            self.urls.append(info["url"])
            self.per_server.append([nid for meter in info["nodes"].values() for nid in meter.values()])
        log(f"simulator: {self.meters} meters, {sum(map(len, self.per_server))} nodes in {self.servers} server "
            f"process(es){' (--fast)' if self.fast else ''}, up in {time.monotonic() - t:.1f} s")
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(30)


def device(url: str, node_ids: list[str], mode: str, name: str = "bench", **keys: object) -> OpcUaDeviceConfig:
    return OpcUaDeviceConfig.model_validate({
        "type": "opcua", "name": name, "url": url, "mode": mode, "interval_s": 1.0, "timeout_s": 30,
        "nodes": [{"point": f"p{i}", "node_id": nid} for i, nid in enumerate(node_ids)], **keys})


async def poll_throughput(url: str, node_ids: list[str], duration: float, rounds: int) -> dict[str, Any]:
    cfg = device(url, node_ids, "poll")
    dev = _Device(cfg, Path(tempfile.mkdtemp()), {})
    client = await dev.connect()
    raw = Client(url, timeout=30)
    await raw.connect()
    raw_nodes = [raw.get_node(n) for n in node_ids]
    chunk = dev.chunk
    col_rates, raw_rates = [], []
    try:
        for _ in range(rounds):
            n, t = 0, time.perf_counter()
            while time.perf_counter() - t < duration:
                n += len(await dev.read_all(client, fresh_only=False))
            col_rates.append(n / (time.perf_counter() - t))
            n, t = 0, time.perf_counter()
            while time.perf_counter() - t < duration:
                for i in range(0, len(raw_nodes), chunk):
                    n += len(await raw.read_attributes(raw_nodes[i:i + chunk]))
            raw_rates.append(n / (time.perf_counter() - t))
    finally:
        await dev.close()
        await raw.disconnect()
    return {"nodes": len(node_ids), "collector_values_per_s": round(statistics.median(col_rates)),
            "raw_asyncua_values_per_s": round(statistics.median(raw_rates)),
            "ratio": round(statistics.median(c / r for c, r in zip(col_rates, raw_rates, strict=True)), 3)}


class Received:
    """The emit callback: keeps each batch as it comes (no per-reading work here, so little of the CPU counted)."""

    def __init__(self) -> None:
        self.batches: list[ReadingBatch] = []

    def __call__(self, readings: Sequence[Reading]) -> None:
        self.batches.append(ReadingBatch.of(readings))

    def columns(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(device, source ns, gateway ns) of every reading received."""
        whole = ReadingBatch.concat(self.batches)
        return whole.device, np.asarray(whole.source_ts, dtype=np.int64), np.asarray(whole.gateway_ts, dtype=np.int64)


async def sustained(devices: list[OpcUaDeviceConfig], nodes: int, warmup: float, duration: float,
                    servers: Simulator | None) -> dict[str, Any]:
    """Run the collector on `devices` and measure a steady window (see the module docstring)."""
    col = OpcUaCollector(devices, Path(tempfile.mkdtemp()))
    got = Received()
    stop = asyncio.Event()
    task = asyncio.create_task(col.run(got, stop))
    t_start = time.monotonic()
    while not got.batches and not task.done():  # noqa: ASYNC110 - subscribed and the first publish arrived
        await asyncio.sleep(0.05)
    subscribed_s = time.monotonic() - t_start
    await asyncio.sleep(warmup)  # the initial burst of every node's current value, and the first passes
    load0 = os.getloadavg()
    srv0 = servers.cpu_s() if servers else []
    t0, cpu0 = time.time_ns(), time.process_time()
    await asyncio.sleep(duration)
    t1, cpu1 = time.time_ns(), time.process_time()
    srv1 = servers.cpu_s() if servers else []
    load1 = os.getloadavg()
    publishing_s = max(d.publishing_interval_ms or d.interval_s * 1000 for d in devices) / 1000
    await asyncio.sleep(1.5 + publishing_s)  # readings of the window still at the server or in the emit buffer
    rss = rss_mb()
    stop.set()
    await asyncio.wait_for(task, 60)
    dev, src, gw = got.columns()
    inside = (src >= t0) & (src < t1)
    n = int(inside.sum())
    window = (t1 - t0) / 1e9
    late = (gw[inside] - src[inside]) / 1e9
    # A server stamps all its nodes with one source time per pass: its passes are the distinct source times seen,
    # each worth one value per node it serves. A server slower than a pass a second writes less.
    names = np.asarray(dev, dtype=object)[inside]
    written = 0
    for d in devices:
        mine = src[inside][names == d.name]
        written += len(np.unique(mine)) * len(d.nodes)
    server_share = [round((b - a) / window, 3) for a, b in zip(srv0, srv1, strict=True)]
    expected = nodes / devices[0].interval_s
    return {
        "nodes": nodes, "window_s": round(window, 1),
        "sessions": len(devices), "subscriptions": sum(d.subscriptions for d in col.devices),
        "publishing_ms": publishing_s * 1000,
        "notifications_per_s": round(n / window),
        "expected_per_s": round(expected),
        "delivered_share": round(n / window / expected, 4),
        "servers_wrote_per_s": round(written / window),
        "delivered_of_written": round(n / written, 4) if written else None,
        "lateness_p50_s": round(float(np.percentile(late, 50)), 3) if n else None,
        "lateness_p95_s": round(float(np.percentile(late, 95)), 3) if n else None,
        "lateness_p99_s": round(float(np.percentile(late, 99)), 3) if n else None,
        "process_cpu_s_per_1000": round((cpu1 - cpu0) / n * 1000, 4) if n else None,
        "process_cpu_share": round((cpu1 - cpu0) / window, 3),
        "rss_mb": rss, "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "notifications_per_process_cpu_s": round(n / (cpu1 - cpu0)) if cpu1 > cpu0 else None,
        "server_cpu_share": server_share,
        "server_cpu_s_per_1000_written": round(sum(server_share) * window / written * 1000, 4)
        if server_share and written else None,
        "server_saturated": any(s > 0.9 for s in server_share) if server_share else None,
        "load_avg_1m": [round(load0[0], 2), round(load1[0], 2)],
        "subscribed_after_s": round(subscribed_s, 1),
        "online": all(h.online for h in col.health()),
    }


async def before(nodes: int, duration: float) -> dict[str, Any]:
    """The old setup: asyncua's server in this process and the collector's old configuration (short window)."""
    meters = [SimOpcUaMeter(f"meter{i + 1}", LoadModel(peak_kw=500.0 * (i % MODELS + 1), seed=100 + i % MODELS))
              for i in range(max(1, -(-nodes // POINTS_PER_METER)))]
    sim = OpcUaPlantSimulator(meters)
    t = time.monotonic()
    await sim.start()
    ids = [n for m in meters for n in sim.node_ids(m.name).values()]
    log(f"before: {len(ids)} nodes on an in-process server, up in {time.monotonic() - t:.1f} s")
    try:
        return await sustained([device(sim.url, ids, "subscribe", "before", data_change_trigger=EVERY_SAMPLE)],
                               len(ids), 5.0, duration, None)
    finally:
        await sim.stop()


async def after(args: argparse.Namespace) -> dict[str, Any]:
    with Simulator(args.sustained_nodes, args.servers, fast=True) as sim:
        devices = []
        for s, (url, ids) in enumerate(zip(sim.urls, sim.per_server, strict=True)):
            k = max(1, args.sessions_per_server)
            for j in range(k):
                devices.append(device(url, ids[j::k], "subscribe", f"s{s}-{j}",
                                      publishing_interval_ms=args.publishing_ms, data_change_trigger=EVERY_SAMPLE,
                                      queue_size=args.queue_size,
                                      max_items_per_subscription=args.items_per_subscription))
        out = await sustained(devices, sum(map(len, sim.per_server)), args.warmup, args.sustained_duration, sim)
        out["servers"] = sim.servers
        return out


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if args.nodes:
        with Simulator(args.nodes) as sim:
            out["poll"] = await poll_throughput(sim.url, sim.node_ids, args.duration, args.rounds)
            log(f"poll: {out['poll']}")
            rec = Received()
            col = OpcUaCollector([device(sim.url, sim.node_ids, "subscribe")], Path(tempfile.mkdtemp()))
            n, el = await _count(col, rec, args.duration * 2)
            rn, rel = await raw_notifications(sim.urls, sim.per_server, args.duration * 2)
            out["subscribe"] = {"nodes": len(sim.node_ids), "collector_notifications_per_s": round(n / el),
                                "raw_asyncua_notifications_per_s": round(rn / rel),
                                "ratio": round((n / el) / (rn / rel), 3) if rn else None}
            log(f"subscribe: {out['subscribe']}")
    if args.sustained_nodes:
        res: dict[str, Any] = {"interval_s": 1.0, "target": {"nodes": 10_000, "delivered_share": 0.98,
                                                             "lateness_p95_s": 1.0}}
        if args.baseline_duration:
            res["before"] = await before(args.sustained_nodes, args.baseline_duration)
            log(f"sustained before: {res['before']}")
        res["after"] = a = await after(args)
        log(f"sustained after: {a}")
        res["met"] = (a["nodes"] >= 10_000 and a["delivered_share"] >= 0.98 and a["lateness_p95_s"] is not None
                      and a["lateness_p95_s"] <= 1.0)
        res["cores"] = os.cpu_count()
        out["sustained"] = res
    return {"opcua": out}


async def _count(col: OpcUaCollector, rec: Received, duration: float) -> tuple[int, float]:
    """Notifications through the collector counted by source time in a window of `duration` seconds."""
    stop = asyncio.Event()
    task = asyncio.create_task(col.run(rec, stop))
    while not rec.batches:  # noqa: ASYNC110 - subscribed and the first publish arrived
        await asyncio.sleep(0.05)
    await asyncio.sleep(2.0)
    t0 = time.time_ns()
    await asyncio.sleep(duration)
    t1 = time.time_ns()
    await asyncio.sleep(1.5)
    stop.set()
    await asyncio.wait_for(task, 30)
    _, src, _ = rec.columns()
    return int(((src >= t0) & (src < t1)).sum()), (t1 - t0) / 1e9


async def raw_notifications(urls: list[str], per_server: list[list[str]], duration: float) -> tuple[int, float]:
    stamps: list[int] = []

    class Handler:
        def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
            ts = data.monitored_item.Value.SourceTimestamp
            stamps.append(int(ts.timestamp() * 1e9) if ts else time.time_ns())

    # The watchdog at the collector's timeout too: its 1 s default tears a busy session down (see the collector).
    clients = [Client(u, timeout=30, watchdog_intervall=30) for u in urls]
    for client in clients:
        await client.connect()
    try:
        for client, ids in zip(clients, per_server, strict=True):
            sub = await client.create_subscription(1000, Handler())
            nodes = [client.get_node(n) for n in ids]
            for i in range(0, len(nodes), 500):
                await sub.subscribe_data_change(nodes[i:i + 500], queuesize=1, sampling_interval=ua.Double(1000))
        await asyncio.sleep(2.0)
        t0 = time.time_ns()
        await asyncio.sleep(duration)
        t1 = time.time_ns()
        await asyncio.sleep(1.5)
        return sum(1 for s in stamps if t0 <= s < t1), (t1 - t0) / 1e9
    finally:
        for client in clients:
            await client.disconnect()




def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=200, help="nodes of the poll and subscribe phases (0 skips them)")
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sustained-nodes", type=int, default=10_000, help="0 skips the sustained run")
    ap.add_argument("--servers", type=int, default=4, help="simulator processes the sustained nodes spread over")
    ap.add_argument("--sessions-per-server", type=int, default=1, help="device entries (sessions) per server")
    ap.add_argument("--items-per-subscription", type=int, default=1000, help="max_items_per_subscription")
    ap.add_argument("--publishing-ms", type=float, default=500.0, help="publishing_interval_ms (0: interval_s)")
    ap.add_argument("--queue-size", type=int, default=4, help="queue_size: values kept per node for a late publish")
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--sustained-duration", type=float, default=60.0)
    ap.add_argument("--baseline-duration", type=float, default=20.0, help="0 skips the before run")
    return ap.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Entry point for bench/collect.py --protocol opcua (its unknown options are ours)."""
    own = parse(list(getattr(args, "extra", [])))
    return asyncio.run(_run(own))


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_run(parse(sys.argv[1:])))))
