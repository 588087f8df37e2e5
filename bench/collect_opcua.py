"""OPC UA collector benchmark against the OPC UA plant simulator (run as its own process, so it has its own core).

1. Poll throughput: values/s of the collector's chunked reads (DataValue -> Reading with quality and timestamps)
   against raw asyncua `read_attributes` of the same nodes, alternating, in the same run.
2. Subscriptions: notifications/s delivered through the collector against a raw asyncua subscription on the same
   nodes, each for the same time.
3. Sustained: how many nodes at 1 s the collector keeps up with through subscriptions (target 10,000), the nodes
   spread over `--servers` simulator processes (one session each), so that the servers are not the ceiling: the
   share of expected notifications that arrive, their lateness (gateway time - source time) at the collector, and
   the collector's CPU seconds per 1,000 notifications.
Notifications are counted by source timestamp inside the measuring window on both sides.

Prints one JSON object as its last stdout line (`run(args)` returns it for bench/collect.py --protocol opcua).
Usage: .venv/bin/python bench/collect_opcua.py [--nodes 200] [--duration 5] [--sustained-nodes 10000]
       [--servers 4] [--sustained-duration 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asyncua import Client, ua  # noqa: E402

from collectors.opcua import OpcUaCollector, OpcUaDeviceConfig  # noqa: E402
from collectors.opcua.collector import _Device  # noqa: E402
from collectors.reading import Reading  # noqa: E402

POINTS_PER_METER = 8


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Simulator:
    """python -m collectors.sim.opcua_server in `servers` subprocesses (each its own core when there is one).

    The nodes are spread over the servers; `urls` and `node_ids` are per server, `node_ids` also flat (the first).
    """

    def __init__(self, nodes: int, servers: int = 1) -> None:
        self.meters = max(1, -(-nodes // POINTS_PER_METER))
        self.servers = max(1, min(servers, self.meters))
        self.procs: list[subprocess.Popen[str]] = []
        self.urls: list[str] = []
        self.per_server: list[list[str]] = []

    @property
    def url(self) -> str:
        return self.urls[0]

    @property
    def node_ids(self) -> list[str]:
        return [n for ids in self.per_server for n in ids] if self.servers == 1 else self.per_server[0]

    def __enter__(self) -> Simulator:
        t = time.monotonic()
        share = [self.meters // self.servers + (i < self.meters % self.servers) for i in range(self.servers)]
        for meters in share:  # started together: building the address space is the slow part
            self.procs.append(subprocess.Popen([sys.executable, "-m", "collectors.sim.opcua_server", "--meters",
                                                str(meters)], stdout=subprocess.PIPE, text=True,
                                               cwd=Path(__file__).resolve().parents[1]))
        for proc in self.procs:
            assert proc.stdout is not None
            info = json.loads(proc.stdout.readline())
            self.urls.append(info["url"])
            self.per_server.append([nid for meter in info["nodes"].values() for nid in meter.values()])
        log(f"simulator: {self.meters} meters, {sum(map(len, self.per_server))} nodes in {self.servers} server "
            f"process(es), up in {time.monotonic() - t:.1f} s")
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(30)


def device(url: str, node_ids: list[str], mode: str, name: str = "bench") -> OpcUaDeviceConfig:
    return OpcUaDeviceConfig.model_validate({
        "type": "opcua", "name": name, "url": url, "mode": mode, "interval_s": 1.0, "timeout_s": 30,
        "nodes": [{"point": f"p{i}", "node_id": nid} for i, nid in enumerate(node_ids)]})


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


async def collector_notifications(urls: list[str], per_server: list[list[str]], duration: float
                                  ) -> tuple[int, float, list[float], float, int]:
    """Notifications through the collector (one device, so one session, per server) counted by source time.

    Returns the count, the window, the lateness of each notification, the collector's CPU seconds in the window
    (this process runs nothing else then; the servers are processes of their own) and how many values the servers
    wrote in the window: a server stamps all its nodes with one source time per pass, so its passes are the
    distinct source times seen, each worth one value per node. A server slower than 1 s a pass writes less.
    """
    col = OpcUaCollector([device(u, ids, "subscribe", f"bench{i}") for i, (u, ids) in
                          enumerate(zip(urls, per_server, strict=True))], Path(tempfile.mkdtemp()))
    got: list[Reading] = []
    stop = asyncio.Event()
    task = asyncio.create_task(col.run(got.extend, stop))
    while not got:  # noqa: ASYNC110 - subscribed and the first publish arrived
        await asyncio.sleep(0.05)
    await asyncio.sleep(2.0)  # the initial burst of every node's current value
    t0, cpu0 = time.time_ns(), time.process_time()
    await asyncio.sleep(duration)
    t1, cpu1 = time.time_ns(), time.process_time()
    await asyncio.sleep(1.5)  # readings of the window still in the collector's 1 s emit buffer
    # Counted by source time inside the window, so the emit batching does not shift the count.
    n = sum(1 for r in got if t0 <= r.source_ts < t1)
    lateness = [(r.gateway_ts - r.source_ts) / 1e9 for r in got if t0 <= r.source_ts < t1]
    passes: dict[str, set[int]] = {}
    for r in got:
        if t0 <= r.source_ts < t1:
            passes.setdefault(r.device, set()).add(r.source_ts)
    written = sum(len(passes.get(f"bench{i}", ())) * len(ids) for i, ids in enumerate(per_server))
    stop.set()
    await asyncio.wait_for(task, 30)
    return n, (t1 - t0) / 1e9, lateness, cpu1 - cpu0, written


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


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with Simulator(args.nodes) as sim:
        out["poll"] = await poll_throughput(sim.url, sim.node_ids, args.duration, args.rounds)
        log(f"poll: {out['poll']}")
        n, el, _, _, _ = await collector_notifications(sim.urls, sim.per_server, args.duration * 2)
        rn, rel = await raw_notifications(sim.urls, sim.per_server, args.duration * 2)
        out["subscribe"] = {"nodes": len(sim.node_ids), "collector_notifications_per_s": round(n / el),
                            "raw_asyncua_notifications_per_s": round(rn / rel),
                            "ratio": round((n / el) / (rn / rel), 3) if rn else None}
        log(f"subscribe: {out['subscribe']}")
    if args.sustained_nodes:
        with Simulator(args.sustained_nodes, args.servers) as sim:
            n, el, lateness, cpu, written = await collector_notifications(sim.urls, sim.per_server,
                                                                          args.sustained_duration)
            log(f"sustained, collector: {n / el:.0f} notifications/s, {cpu:.1f} CPU s")
            try:
                rn, rel = await raw_notifications(sim.urls, sim.per_server, args.sustained_duration)
            except (OSError, TimeoutError) as exc:  # the raw client is a reference; its failure must not lose ours
                log(f"raw asyncua client failed: {exc!r}")
                rn, rel = 0, 1.0
            nodes = sum(map(len, sim.per_server))
            expected = nodes / 1.0
            out["sustained"] = {
                "nodes": nodes, "servers": sim.servers, "sessions": sim.servers, "interval_s": 1.0,
                "notifications_per_s": round(n / el),
                "collector_cpu_s_per_1000": round(cpu / n * 1000, 4) if n else None,
                "delivered_share": round((n / el) / expected, 3),
                "servers_wrote_per_s": round(written / el),
                "delivered_of_written": round(n / written, 4) if written else None,
                "raw_asyncua_notifications_per_s": round(rn / rel),
                "ratio_to_raw": round((n / el) / (rn / rel), 3) if rn else None,
                "lateness_p50_s": round(statistics.median(lateness), 2) if lateness else None,
                "lateness_p95_s": round(sorted(lateness)[int(0.95 * (len(lateness) - 1))], 2) if lateness else None,
                "target_nodes": 10_000,
                "note": f"{sim.servers} simulator processes (asyncua's Python server, each writing its nodes once a "
                        "second) and the collector share this machine's cores",
            }
            log(f"sustained: {out['sustained']}")
    return {"opcua": out}


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=200)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sustained-nodes", type=int, default=10_000, help="0 skips the sustained run")
    ap.add_argument("--sustained-duration", type=float, default=20.0)
    ap.add_argument("--servers", type=int, default=4, help="simulator processes the sustained run's nodes spread over")
    return ap.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Entry point for bench/collect.py --protocol opcua (its unknown options are ours)."""
    own = parse(list(getattr(args, "extra", [])))
    return asyncio.run(_run(own))


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_run(parse(sys.argv[1:])))))
