"""Start-up benchmark: wall time of `energy-gateway --help` and `check-config` against `python -c pass`.

Each command runs N times in a fresh process (after one untimed warm-up run that fills the OS page cache); the
median of the N wall times is reported. The baseline, the bare interpreter start (`python -c pass` with the same
interpreter), is measured in the same run, interleaved with the commands so that machine load hits all alike.

The config checked is a valid example written to a temporary folder (two customers, Modbus and OPC UA devices, an
InfluxDB v2 store and the secrets it names set in the environment), or the file given with --config.

--other-tree DIR also measures the same two commands from another copy of the source (`python -m gateway.cli` with
DIR first on sys.path; e.g. `git archive HEAD | tar -x -C /tmp/before`), interleaved in the same run, so a change
is compared under the same machine load.

Prints one JSON object as its last stdout line.
Usage: .venv/bin/python bench/startup.py [--runs 15] [--config gateway.toml] [--other-tree DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLE = """\
[gateway]
name = "plant-1"
data_dir = "state"
environment = "production"

[store]
type = "influxdb"
api = "v2"
url = "http://127.0.0.1:8086"
org = "utility"
bucket = "energy"
token_env = "BENCH_INFLUX_TOKEN"

[api]
secret_key_env = "BENCH_SECRET_KEY"

[[customers]]
id = "acme"
timezone = "Europe/Berlin"

[[customers]]
id = "huaxin"

[[sites]]
id = "north"
customer = "acme"

[[sites]]
id = "melt"
customer = "huaxin"

[[meters]]
id = "incomer"
site = "north"
device = "pm-1"

[[meters]]
id = "aux"
site = "melt"
device = "ua-1"

[[devices]]
type = "modbus"
name = "pm-1"
host = "10.1.2.3"
unit = 1
profile = "sdm630"

[[devices]]
type = "opcua"
name = "ua-1"
url = "opc.tcp://10.1.2.9:4840/plant/"
username = "reader"
password_env = "BENCH_OPCUA_PASSWORD"
nodes = [{ point = "active_power_kw", node_id = "ns=2;s=Aux.P", unit = "kW" }]
"""
ENV = {"BENCH_INFLUX_TOKEN": "t" * 40, "BENCH_SECRET_KEY": "k" * 32, "BENCH_OPCUA_PASSWORD": "p" * 12}


def _exe() -> list[str]:
    script = Path(sys.executable).with_name("energy-gateway")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gateway.cli"]


def _wall(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, cwd=env.get("BENCH_CWD"))
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--other-tree", type=Path, default=None, help="another source tree, measured alongside")
    args = parser.parse_args()
    env = {**os.environ, **ENV}
    other = None
    if args.other_tree is not None:
        tree = str(args.other_tree.resolve())
        other = {**env, "PYTHONPATH": tree, "BENCH_CWD": tree}
    with tempfile.TemporaryDirectory() as tmp:
        config = args.config or Path(tmp) / "gateway.toml"
        if args.config is None:
            config.write_text(EXAMPLE, encoding="utf-8")
        commands = {
            "python_c_pass": ([sys.executable, "-c", "pass"], env),
            "help": ([*_exe(), "--help"], env),
            "check_config": ([*_exe(), "check-config", "--config", str(config.resolve())], env),
        }
        if other is not None:
            module = [sys.executable, "-m", "gateway.cli"]
            commands["help_other_tree"] = ([*module, "--help"], other)
            commands["check_config_other_tree"] = ([*module, "check-config", "--config", str(config.resolve())], other)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for name, (cmd, cmd_env) in commands.items():
            _wall(cmd, cmd_env)  # warm-up: page cache and .pyc files
            print(f"{name}: {' '.join(cmd)}", file=sys.stderr, flush=True)
        for _ in range(args.runs):
            for name, (cmd, cmd_env) in commands.items():
                times[name].append(_wall(cmd, cmd_env))
    medians = {name: round(statistics.median(ts), 3) for name, ts in times.items()}
    result = {
        "runs": args.runs,
        "python": sys.version.split()[0],
        "median_s": medians,
        "over_baseline_s": {k: round(v - medians["python_c_pass"], 3) for k, v in medians.items()
                            if k != "python_c_pass"},
        "max_s": {name: round(max(ts), 3) for name, ts in times.items()},
        "config": str(args.config) if args.config else "example (written to a temporary folder)",
        "other_tree": str(args.other_tree) if args.other_tree else None,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
