"""Collection benchmark: the Modbus collector vs a raw pymodbus loop in the same run, lateness at scale.

Phases (simulated meters served by `collectors.sim.modbus_server` in another process, on loopback):
1. throughput: N devices polled back to back for D seconds by the collector, then by a raw pymodbus loop doing
   the same requests (same blocks, one task per connection) and decoding the same points; R alternating rounds,
   medians and their ratio (the collector also builds Readings, tracks health and keeps its schedule).
2. dead device: 20 healthy devices + 1 that never answers, 1 s interval: the healthy devices' p99 lateness.
3. sustained: 200 devices x 50 points at 1 s (10,000 points/s): readings/s, p99 lateness, overruns.
4. overload (`--overload-devices N`): N devices at 0.1 s through the real pipeline into the embedded store:
   collected and stored per second, the outbox depth each second (bounded by back-pressure while the store is up),
   and the time the flush on stop takes; with the store writer in a thread (the baseline) and in a process of its
   own (gateway.store_writer), in the same run.
5. sustained with the store (`--sustained-store thread|process|both`): phase 3's load through the pipeline into the
   embedded store: poll-start p99 while the store writes.

Lateness is reported two ways: `poll_start` (how late each poll started against its schedule, from the
collector) and `emit` (how late each device's readings reached `emit` against an ideal 1 s grid fitted to that
device, which includes the request's round trip and jitter).

Prints progress to stderr and one JSON object as its last stdout line.
Usage: .venv/bin/python bench/collect.py [--protocol modbus|opcua|all] [--devices 20] [--duration 5] [--rounds 3]
       [--sustained-devices 200] [--sustained-points 50] [--sustained-duration 30]
       [--overload-devices 100] [--overload-interval 0.1] [--overload-duration 20] [--high-water 200000]
       [--overload-writer thread|process|both] [--sustained-store none|thread|process|both] [--stop-budget 10]
       [--phases throughput,dead,sustained,overload]
Issue 16's runs: --phases overload --overload-devices 200 --overload-interval 0.1 --overload-duration 60
             and --phases sustained --sustained-store both (200 devices x 50 points at 1 s with the store on)
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pymodbus.client import AsyncModbusTcpClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.base import ReadingBatch  # noqa: E402
from collectors.modbus import ModbusCollector, ModbusDeviceConfig  # noqa: E402
from collectors.modbus.datatypes import DataType, RegisterKind, WordOrder  # noqa: E402
from collectors.modbus.plan import plan_reads, point_size  # noqa: E402
from collectors.reading import Quality, Reading  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
_PYMODBUS_TYPES = {
    DataType.INT16: AsyncModbusTcpClient.DATATYPE.INT16, DataType.UINT16: AsyncModbusTcpClient.DATATYPE.UINT16,
    DataType.INT32: AsyncModbusTcpClient.DATATYPE.INT32, DataType.UINT32: AsyncModbusTcpClient.DATATYPE.UINT32,
    DataType.INT64: AsyncModbusTcpClient.DATATYPE.INT64, DataType.UINT64: AsyncModbusTcpClient.DATATYPE.UINT64,
    DataType.FLOAT32: AsyncModbusTcpClient.DATATYPE.FLOAT32, DataType.FLOAT64: AsyncModbusTcpClient.DATATYPE.FLOAT64,
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class SimProcess:
    """`python -m collectors.sim.modbus_server` in its own process (its CPU is not the collector's)."""

    def __init__(self, servers: int, meters: int = 1, profile: str = "sdm630", silent: Sequence[int] = ()) -> None:
        cmd = [sys.executable, "-m", "collectors.sim.modbus_server", "--servers", str(servers), "--meters",
               str(meters), "--profile", profile]
        for i in silent:
            cmd += ["--silent-server", str(i)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)  # noqa: S603
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            self.proc.kill()
            raise RuntimeError(f"simulator did not start: {' '.join(cmd)}")
        info = json.loads(line)
        self.ports: list[int] = info["ports"]
        self.units: list[int] = info["units"]

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def devices_for(ports: Sequence[int], *, interval_s: float, points: int | None = None, timeout_s: float = 1.0
                ) -> list[ModbusDeviceConfig]:
    """One device per simulator server; the sdm630 profile, or `points` float32 input registers from 0."""
    out = []
    for i, port in enumerate(ports):
        base: dict[str, Any] = {"type": "modbus", "name": f"meter{i:03d}", "host": "127.0.0.1", "port": port,
                                "unit": 1, "interval_s": interval_s, "timeout_s": timeout_s, "retries": 0}
        if points is None:
            base["profile"] = "sdm630"
        else:
            base["points"] = [{"name": f"p{j:02d}", "address": 2 * j, "kind": "input", "type": "float32"}
                              for j in range(points)]
        out.append(ModbusDeviceConfig.model_validate(base))
    return out


class EmitRecorder:
    """The `emit` callback: counts readings and keeps per-device emit times (cheap: it runs on the loop)."""

    def __init__(self) -> None:
        self.count = 0
        self.good = 0
        self.by_quality: dict[str, int] = defaultdict(int)  # inside the measured window
        self.comm_lost: dict[str, int] = defaultdict(int)  # whole run, per device
        self.times: dict[str, list[float]] = defaultdict(list)
        self.counting = False

    def __call__(self, readings: Sequence[Reading]) -> None:
        now = time.monotonic()
        # The collector hands over a ReadingBatch: read its columns (iterating it would make a Reading each).
        batch = ReadingBatch.of(readings)
        if batch:
            device = batch.device[0]
            self.times[device].append(now)
            if batch.quality[0] is Quality.COMM_LOST:
                self.comm_lost[device] += len(batch)
        if not self.counting:
            return
        self.count += len(batch)
        for quality, n in Counter(batch.quality).items():
            self.by_quality[quality.value] += n


def emit_lateness(times: Sequence[float], interval_s: float) -> list[float]:
    """Lateness of each emit against the best-case 1 s grid of that device (its earliest phase)."""
    if len(times) < 2:
        return []
    t = np.asarray(times)
    phase = t - interval_s * np.arange(len(t))
    return list(phase - phase.min())


async def run_collector(devices: list[ModbusDeviceConfig], warmup_s: float, duration_s: float
                        ) -> tuple[ModbusCollector, EmitRecorder, float]:
    col = ModbusCollector(devices)
    rec = EmitRecorder()
    stop = asyncio.Event()
    task = asyncio.create_task(col.run(rec, stop))
    await asyncio.sleep(warmup_s)
    rec.counting = True
    t0 = time.perf_counter()
    await asyncio.sleep(duration_s)
    rec.counting = False
    elapsed = time.perf_counter() - t0
    stop.set()
    await task
    return col, rec, elapsed


async def run_raw(devices: list[ModbusDeviceConfig], warmup_s: float, duration_s: float) -> tuple[int, float]:
    """Baseline: plain pymodbus clients, one per connection, the collector's request plan, pymodbus decoding."""
    counting = False
    count = 0
    stop = asyncio.Event()

    async def worker(cfg: ModbusDeviceConfig) -> None:
        nonlocal count
        client = AsyncModbusTcpClient(cfg.host or "", port=cfg.port, timeout=cfg.timeout_s, retries=0)
        await client.connect()
        blocks = plan_reads(cfg.resolved_points(), cfg.max_registers, cfg.max_gap)
        try:
            while not stop.is_set():
                for b in blocks:
                    call = client.read_input_registers if b.kind is RegisterKind.INPUT else \
                        client.read_holding_registers
                    resp = await call(b.address, count=b.count, device_id=cfg.unit)
                    values = []
                    for p in b.points:
                        off = p.address - b.address
                        regs = resp.registers[off : off + point_size(p)]
                        # pymodbus knows word order only (ABCD/CDAB), which is all the benchmark's maps use.
                        little = p.order in (WordOrder.CDAB, WordOrder.DCBA)
                        values.append(client.convert_from_registers(regs, _PYMODBUS_TYPES[p.type],
                                                                    "little" if little else "big"))
                    if counting:
                        count += len(values)
        finally:
            client.close()

    tasks = [asyncio.create_task(worker(d)) for d in devices]
    await asyncio.sleep(warmup_s)
    counting = True
    t0 = time.perf_counter()
    await asyncio.sleep(duration_s)
    counting = False
    elapsed = time.perf_counter() - t0
    stop.set()
    await asyncio.gather(*tasks)
    return count, elapsed


def _pct(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)) * 1000, 2) if len(values) else None


def lateness_summary(col: ModbusCollector, rec: EmitRecorder, interval_s: float, exclude: Sequence[str] = ()
                     ) -> dict[str, Any]:
    starts = [x for name, xs in col.lateness_samples().items() if name not in exclude for x in xs[1:]]
    emits = [x for name, ts in rec.times.items() if name not in exclude for x in emit_lateness(ts, interval_s)]
    return {
        "poll_start_p50_ms": _pct(starts, 50), "poll_start_p99_ms": _pct(starts, 99),
        "poll_start_max_ms": _pct(starts, 100), "poll_start_samples": len(starts),
        "emit_p50_ms": _pct(emits, 50), "emit_p99_ms": _pct(emits, 99), "emit_samples": len(emits),
    }


async def bench_throughput(args: argparse.Namespace) -> dict[str, Any]:
    collector_rates: list[float] = []
    raw_rates: list[float] = []
    good = total = 0
    with SimProcess(args.devices) as sim:
        # An interval far below a round trip: every worker polls back to back (overruns are expected here).
        devices = devices_for(sim.ports, interval_s=1e-6)
        # Rounds alternate so that load from other processes on a shared machine hits both sides alike.
        for i in range(args.rounds):
            log(f"throughput round {i + 1}/{args.rounds}: collector, {len(devices)} devices, {args.duration} s")
            _, rec, c_elapsed = await run_collector(devices, 0.5, args.duration)
            collector_rates.append(rec.count / c_elapsed)
            good += rec.by_quality.get("good", 0)
            total += rec.count
            log(f"throughput round {i + 1}/{args.rounds}: raw pymodbus loop, {len(devices)} devices")
            raw_count, r_elapsed = await run_raw(devices, 0.5, args.duration)
            raw_rates.append(raw_count / r_elapsed)
    c_rate = float(np.median(collector_rates))
    r_rate = float(np.median(raw_rates))
    return {
        "devices": len(devices), "points_per_device": len(devices[0].resolved_points()),
        "duration_s": args.duration, "rounds": args.rounds,
        "collector_readings_per_s": round(c_rate, 1), "raw_pymodbus_readings_per_s": round(r_rate, 1),
        "ratio": round(c_rate / r_rate, 3) if r_rate else None,
        "ratio_best": round(max(collector_rates) / max(raw_rates), 3) if max(raw_rates) else None,
        "collector_rounds": [round(x) for x in collector_rates], "raw_rounds": [round(x) for x in raw_rates],
        "collector_good_share": round(good / total, 4) if total else None,
        "target_ratio": 0.8,
    }


async def bench_dead_device(args: argparse.Namespace) -> dict[str, Any]:
    healthy = 20
    with SimProcess(healthy + 1, silent=[healthy]) as sim:
        devices = devices_for(sim.ports, interval_s=1.0, timeout_s=0.5)
        dead = devices[healthy].name
        log(f"dead device: {healthy} healthy + 1 silent, 1 s interval, {args.dead_duration} s")
        col, rec, _ = await run_collector(devices, 1.5, args.dead_duration)
    out = lateness_summary(col, rec, 1.0, exclude=[dead])
    health = {h.device: h for h in col.health()}
    out.update({"healthy_devices": healthy, "dead_device_online": health[dead].online,
                "dead_device_comm_lost_readings": rec.comm_lost.get(dead, 0),
                "healthy_comm_lost_readings": sum(v for k, v in rec.comm_lost.items() if k != dead),
                "target_p99_ms": 50})
    return out


async def bench_sustained(args: argparse.Namespace) -> dict[str, Any]:
    n, points = args.sustained_devices, args.sustained_points
    with SimProcess(n) as sim:
        devices = devices_for(sim.ports, interval_s=1.0, points=points, timeout_s=2.0)
        log(f"sustained: {n} devices x {points} points at 1 s, {args.sustained_duration} s")
        col, rec, elapsed = await run_collector(devices, 2.0, args.sustained_duration)
    out = lateness_summary(col, rec, 1.0)
    out.update({
        "devices": n, "points_per_device": points, "target_points_per_s": n * points,
        "readings_per_s": round(rec.count / elapsed, 1), "good_share": round(rec.by_quality.get("good", 0) /
                                                                              rec.count, 4) if rec.count else None,
        "overruns": sum(h.overruns for h in col.health()), "duration_s": args.sustained_duration,
        "target_p99_ms": 100,
    })
    return out


async def into_store(args: argparse.Namespace, n: int, interval_s: float, duration_s: float, writer: str
                     ) -> dict[str, Any]:
    """N devices through the real pipeline into the embedded store, its writer a `thread` or a `process`.

    Reports poll-start lateness, readings collected and stored per second, the outbox depth each second (bounded by
    back-pressure while the store is up), the back-pressure factor and the hand-overs it slowed, and the stop:
    how long the flush took within its budget (`--stop-budget`, as SIGTERM's) and what it left in the outbox.
    """
    import tempfile

    from gateway.config import parse_config
    from gateway.outbox import Outbox
    from gateway.pipeline import Pipeline
    from gateway.store_writer import StoreWriterProcess

    points = args.sustained_points
    with SimProcess(n) as sim, tempfile.TemporaryDirectory() as tmp:
        devices = devices_for(sim.ports, interval_s=interval_s, points=points, timeout_s=2.0)
        cfg = parse_config({"gateway": {"data_dir": tmp}, "store": {"type": "embedded", "path": "ts.db"},
                            "outbox": {"path": "outbox.db", "high_water": args.high_water}})
        if writer == "process":
            pipe = Pipeline(Outbox(Path(tmp) / "outbox.db", shared=True), None, high_water=args.high_water,
                            store_writer=StoreWriterProcess(cfg))
        else:
            from gateway.store.sqlite import SqliteStore

            pipe = Pipeline(Outbox(Path(tmp) / "outbox.db"), SqliteStore(Path(tmp) / "ts.db"),
                            high_water=args.high_water)
        pipe.start()
        log(f"into the store: {n} devices x {points} points at {interval_s} s, store writer in a {writer}, "
            f"{duration_s} s, high-water mark {args.high_water}")
        col = ModbusCollector(devices)
        stop = asyncio.Event()
        task = asyncio.create_task(col.run(pipe.ingest, stop))
        await asyncio.sleep(2.0)
        first = pipe.stats()
        skip = {name: len(xs) for name, xs in col.lateness_samples().items()}  # the warm-up's polls
        t0 = time.perf_counter()
        backlog, factors = [], []
        for _ in range(int(duration_s)):
            await asyncio.sleep(1.0)
            st = pipe.stats()
            backlog.append(int(st["outbox_depth"]))  # type: ignore[call-overload]
            factors.append(st["backpressure"]["factor"])  # type: ignore[index]
        elapsed = time.perf_counter() - t0
        last = pipe.stats()
        starts = [x for name, xs in col.lateness_samples().items() for x in xs[max(1, skip.get(name, 0)):]]
        stop.set()
        await task
        t = time.perf_counter()
        await asyncio.to_thread(pipe.stop, True, args.stop_budget)
        stop_s = time.perf_counter() - t
        left = pipe.outbox.depth
        pipe.outbox.close()
        if pipe.store is not None:
            pipe.store.close()
    collected = int(last["collected"]) - int(first["collected"])  # type: ignore[call-overload]
    stored = int(last["stored"]) - int(first["stored"])  # type: ignore[call-overload]
    return {"store_writer": writer, "devices": n, "points_per_device": points, "interval_s": interval_s,
            "offered_points_per_s": round(n * points / interval_s),
            "collected_per_s": round(collected / elapsed), "stored_per_s": round(stored / elapsed),
            "poll_start_p50_ms": _pct(starts, 50), "poll_start_p99_ms": _pct(starts, 99),
            "poll_start_samples": len(starts), "overruns": sum(h.overruns for h in col.health()),
            "outbox_depth_each_s": backlog, "outbox_depth_max": max(backlog, default=0),
            "backpressure_factor_each_s": factors,
            "slowed_handovers": last["backpressure"]["slowed"],  # type: ignore[index]
            "dropped": last["dropped"], "stop_budget_s": args.stop_budget, "stop_s": round(stop_s, 1),
            "left_in_outbox_after_stop": left, "high_water": args.high_water}


def _writers(choice: str) -> list[str]:
    return ["thread", "process"] if choice == "both" else [choice]


async def bench_overload(args: argparse.Namespace) -> dict[str, Any]:
    """More devices at 0.1 s than the store takes; with `both`, the thread writer first: the baseline."""
    runs = {w: await into_store(args, args.overload_devices, args.overload_interval, args.overload_duration, w)
            for w in _writers(args.overload_writer)}
    return {**runs, "target_stored_per_s": 33_400}


async def bench_sustained_store(args: argparse.Namespace) -> dict[str, Any]:
    """The sustained load (N x P at 1 s) with the store on: does storing disturb polling (poll-start p99)?"""
    runs = {w: await into_store(args, args.sustained_devices, 1.0, args.sustained_duration, w)
            for w in _writers(args.sustained_store)}
    return {**runs, "target_poll_start_p99_ms": 20}


def run_opcua(args: argparse.Namespace) -> dict[str, Any]:
    path = Path(__file__).with_name("collect_opcua.py")
    if not path.exists():
        return {"opcua": {"skipped": "bench/collect_opcua.py does not exist"}}
    spec = importlib.util.spec_from_file_location("bench_collect_opcua", path)
    if spec is None or spec.loader is None:
        return {"opcua": {"error": f"cannot load {path}"}}
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result: dict[str, Any] = module.run(args)
    return result


async def run_modbus(args: argparse.Namespace) -> dict[str, Any]:
    phases = set(args.phases.split(","))
    out: dict[str, Any] = {}
    if "throughput" in phases:
        out["throughput"] = await bench_throughput(args)
    if "dead" in phases:
        out["dead_device"] = await bench_dead_device(args)
    if "sustained" in phases and args.sustained_devices > 0:
        out["sustained"] = await bench_sustained(args)
    if "sustained" in phases and args.sustained_devices > 0 and args.sustained_store != "none":
        out["sustained_with_store"] = await bench_sustained_store(args)
    if "overload" in phases and args.overload_devices > 0:
        out["overload"] = await bench_overload(args)
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--protocol", choices=["modbus", "opcua", "all"], default="modbus")
    ap.add_argument("--devices", type=int, default=20, help="devices for the throughput comparison")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per throughput run")
    ap.add_argument("--rounds", type=int, default=3, help="alternating collector/raw throughput rounds")
    ap.add_argument("--dead-duration", type=float, default=15.0, help="seconds of the dead-device run")
    ap.add_argument("--sustained-devices", type=int, default=200, help="0 skips the sustained run")
    ap.add_argument("--sustained-points", type=int, default=50)
    ap.add_argument("--sustained-duration", type=float, default=30.0)
    ap.add_argument("--overload-devices", type=int, default=0, help="devices of the overload run (0 skips it)")
    ap.add_argument("--overload-interval", type=float, default=0.1)
    ap.add_argument("--overload-duration", type=float, default=20.0)
    ap.add_argument("--high-water", type=int, default=200_000, help="the pipeline's back-pressure mark")
    ap.add_argument("--overload-writer", choices=["thread", "process", "both"], default="both",
                    help="where the overload run's store writer runs (both: thread, the baseline, then process)")
    ap.add_argument("--sustained-store", choices=["none", "thread", "process", "both"], default="none",
                    help="also run the sustained load into the embedded store with this store writer")
    ap.add_argument("--stop-budget", type=float, default=10.0, help="seconds the flush on stop may take")
    ap.add_argument("--phases", default="throughput,dead,sustained,overload",
                    help="comma-separated phases to run: throughput, dead, sustained, overload")
    args, extra = ap.parse_known_args(argv)
    args.extra = extra  # options meant for bench/collect_opcua.py
    result: dict[str, Any] = {"cpus": _cpus(), "python": sys.version.split()[0]}
    if args.protocol in ("modbus", "all"):
        result["modbus"] = asyncio.run(run_modbus(args))
    if args.protocol in ("opcua", "all"):
        result.update(run_opcua(args))
    print(json.dumps(result))
    return result


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()
