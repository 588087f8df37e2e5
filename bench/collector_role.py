"""Memory of a collector process: `run --role collector` against the full gateway as a collector deployment ran it.

Both run the same config (N simulated Modbus meters, sdm630 profile, 1 s; the embedded store) for the same time as
real processes, one after the other, in the same run. The baseline is `energy-gateway run` with the API on (what
deploy/docker/collector.toml ran: /metrics and /health came from the API) and no scheduler. Measured at the end of
each run: VmRSS of the gateway process and of its store writer process (the collector role's only child), the
heavy modules the process loaded (from an atexit hook, so the whole run counts), readings stored, and the time from
SIGTERM to exit.

Prints progress to stderr and one JSON object as its last stdout line.
Usage: .venv/bin/python bench/collector_role.py [--devices 20] [--seconds 30]
"""

from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.collect import SimProcess, log  # noqa: E402
from tests.gateway.procs import Proc  # noqa: E402
from tests.servers.influx import free_port  # noqa: E402

HEAVY = ("fastapi", "uvicorn", "starlette", "jinja2", "pandas", "statsmodels", "sqlalchemy", "alembic", "plotly",
         "openpyxl", "weasyprint", "numpy")
RUN = (
    "import atexit, json, sys\n"
    "atexit.register(lambda: print('MODULES ' + json.dumps(sorted(sys.modules)), file=sys.stderr, flush=True))\n"
    "sys.argv = ['energy-gateway', *sys.argv[1:]]\n"
    "from gateway.cli import main\n"
    "main()\n"
)


def write_config(folder: Path, ports: list[int], api_port: int) -> Path:
    parts = ['[gateway]\ndata_dir = "state"\nenvironment = "development"\nrun_scheduler = false\n',
             f'[store]\ntype = "embedded"\n\n[api]\nport = {api_port}\nwarm_days = 0\n',
             '[[customers]]\nid = "c1"\n\n[[sites]]\nid = "s1"\ncustomer = "c1"\n']
    for i, port in enumerate(ports):
        parts.append(f'[[meters]]\nid = "m{i}"\nsite = "s1"\ndevice = "meter{i:03d}"\n')
        parts.append(f'[[devices]]\ntype = "modbus"\nname = "meter{i:03d}"\nhost = "127.0.0.1"\nport = {port}\n'
                     'unit = 1\nprofile = "sdm630"\ninterval_s = 1.0\n')
    path = folder / "gateway.toml"
    path.write_text("\n".join(parts))
    return path


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except FileNotFoundError:
        pass
    return None


def children(pid: int) -> list[int]:
    """Child processes of `pid`, whichever of its threads started them."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(x) for x in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return out


def stored(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM samples").fetchone()[0])
    except sqlite3.Error:
        return 0


def one_run(role: str, ports: list[int], seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = write_config(Path(tmp), ports, free_port())
        log(f"{role}: {len(ports)} devices for {seconds} s")
        t0 = time.perf_counter()
        proc = Proc([sys.executable, "-c", RUN, "run", "--role", role, "--config", str(cfg)])
        try:
            proc.wait_for_line("running")
            ready_s = time.perf_counter() - t0
            time.sleep(seconds)  # a benchmark's measuring window, not a wait for readiness
            main_rss = rss_mb(proc.pid)
            kids = {pid: rss_mb(pid) for pid in children(proc.pid)}
            t = time.perf_counter()
            code, out, err = proc.finish(signal.SIGTERM, timeout=120)
            stop_s = time.perf_counter() - t
        finally:
            proc.kill()
        modules = json.loads(next(line for line in err.splitlines() if line.startswith("MODULES "))[8:])
        stats = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
        return {
            "role": role, "exit_code": code, "start_to_running_s": round(ready_s, 2),
            "rss_mb": main_rss, "children_rss_mb": list(kids.values()),
            "total_rss_mb": round((main_rss or 0) + sum(v or 0 for v in kids.values()), 1),
            "modules": len(modules), "heavy_modules": sorted({m.split(".")[0] for m in modules} & set(HEAVY)),
            "collected": stats.get("collected"), "stored": stored(Path(tmp) / "state" / "timeseries.db"),
            "sigterm_to_exit_s": round(stop_s, 2),
        }


def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    with SimProcess(args.devices) as sim:
        baseline = one_run("all", sim.ports, args.seconds)
        collector = one_run("collector", sim.ports, args.seconds)
    result = {
        "devices": args.devices, "seconds": args.seconds, "baseline_full_gateway": baseline,
        "collector_role": collector,
        "rss_ratio": round(collector["rss_mb"] / baseline["rss_mb"], 3) if baseline["rss_mb"] else None,
        "target_rss_mb": 100,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    try:
        main()
    except subprocess.TimeoutExpired as exc:
        raise SystemExit(f"a gateway did not stop: {exc}") from None
