"""Demo start time: from `energy-gateway demo --port 0 --data-dir D` to a portal that answers /ready.

Two starts on one data directory: the first on an empty one (config, 60 days of history, registry, logins), the
second on what the first left (history is made once). Each is timed from the process start to the first 200 from
`/ready` (store, database and outbox reachable, collectors started), and to the line with the logins on stdout.
The port is the one the demo writes into D/gateway.toml at this start (it reuses the last one when free). The
baseline, measured in the same run, is `energy-gateway --help` (interpreter and command-line start).

The demo is stopped with SIGTERM after each start (a clean stop, as a person's Ctrl-C); the stop is timed too.
Targets (issue 14): first start within 90 s, second within 15 s (package download and install are dev.sh's part
and not measured here).

Prints progress to stderr and one JSON object as its last stdout line.
Usage: .venv/bin/python bench/demo_start.py [--data-dir D] [--timeout 300]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def log(msg: str) -> None:
    print(f"[demo_start {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def command() -> list[str]:
    """The installed entry point beside this interpreter, else the module (a checkout without an install)."""
    exe = Path(sys.executable).parent / "energy-gateway"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "gateway.cli"]


def time_help() -> float:
    started = time.monotonic()
    subprocess.run([*command(), "--help"], check=True, capture_output=True, cwd=ROOT, timeout=120)
    return time.monotonic() - started


def api_port(config: Path, since: float) -> int | None:
    """The [api] port of the gateway.toml written at or after `since` (wall clock), if it is there yet."""
    try:
        if config.stat().st_mtime < since:
            return None
        return int(tomllib.loads(config.read_text(encoding="utf-8"))["api"]["port"])
    except (FileNotFoundError, KeyError, ValueError, tomllib.TOMLDecodeError):
        return None  # not written yet, or caught half-written


def answers_ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:  # noqa: S310 - loopback
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_once(data_dir: Path, timeout: float) -> dict[str, Any]:
    """Start the demo, time /ready and the logins line, stop it with SIGTERM; the figures of this start."""
    wall = time.time() - 1  # mtime granularity: a file written in this second counts
    started = time.monotonic()
    proc = subprocess.Popen([*command(), "demo", "--port", "0", "--data-dir", str(data_dir)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first_line: dict[str, float] = {}
    err: list[str] = []

    def read_stdout() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "portal_url" in line and "at" not in first_line:
                first_line["at"] = time.monotonic() - started

    def read_stderr() -> None:
        assert proc.stderr is not None
        err.extend(proc.stderr)

    readers = [threading.Thread(target=f, daemon=True) for f in (read_stdout, read_stderr)]
    for t in readers:
        t.start()
    ready_s = None
    try:
        while time.monotonic() - started < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"the demo exited with {proc.returncode}: {''.join(err)[-2000:]}")
            port = api_port(data_dir / "gateway.toml", wall)
            if port is not None and answers_ready(port):
                ready_s = time.monotonic() - started
                break
            time.sleep(0.05)
        if ready_s is None:
            raise RuntimeError(f"the demo's /ready did not answer within {timeout} s")
        while "at" not in first_line and proc.poll() is None and time.monotonic() - started < timeout:
            time.sleep(0.05)
    finally:
        stop_started = time.monotonic()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait(10)
        stop_s = time.monotonic() - stop_started
        for t in readers:
            t.join(10)
    return {"ready_s": round(ready_s, 2), "logins_line_s": round(first_line["at"], 2) if "at" in first_line else None,
            "stop_s": round(stop_s, 2), "exit_code": code}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=None, help="data directory (default: a new temporary one)")
    ap.add_argument("--timeout", type=float, default=300.0, help="give up on a start after this many seconds")
    args = ap.parse_args()
    own = args.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="demo-start-")) / "demo" if own else args.data_dir
    if data_dir.exists() and any(data_dir.iterdir()):
        raise SystemExit(f"{data_dir} is not empty: the first start needs an empty data directory")
    load_before = os.getloadavg()[0]
    try:
        help_s = time_help()
        log(f"baseline: energy-gateway --help in {help_s:.2f} s")
        first = start_once(data_dir, args.timeout)
        log(f"first start: /ready after {first['ready_s']} s")
        second = start_once(data_dir, args.timeout)
        log(f"second start: /ready after {second['ready_s']} s")
        help_after_s = time_help()
    finally:
        if own:
            shutil.rmtree(data_dir.parent, ignore_errors=True)
    result = {
        "baseline_help_s": round(min(help_s, help_after_s), 2),
        "first_start": first,
        "second_start": second,
        # A shared machine's load stretches every figure alike: the baseline shows by how much.
        "load_average_1min": {"before": round(load_before, 1), "after": round(os.getloadavg()[0], 1),
                              "cpus": os.cpu_count()},
        "targets": {"first_start_ready_within_90_s": first["ready_s"] <= 90,
                    "second_start_ready_within_15_s": second["ready_s"] <= 15},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
