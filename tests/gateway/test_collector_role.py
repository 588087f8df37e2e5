"""`energy-gateway run --role collector` as a real process: no web stack, its store writer apart, a bounded stop.

Meters are the Modbus plant simulator in its own process; stores are the embedded one and a real influxd.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
import urllib.request
from pathlib import Path

import pytest

from gateway.outbox import Outbox
from tests.gateway.procs import Proc
from tests.servers.influx import free_port

pytestmark = pytest.mark.slow

# What the collector role must run without (issue 16: they held most of the 157 MB of a collector process).
HEAVY = ("fastapi", "uvicorn", "starlette", "jinja2", "pandas", "statsmodels", "sqlalchemy", "alembic", "plotly",
         "openpyxl", "weasyprint")
# The real entry point (gateway.cli.main), with the modules loaded at exit said on stderr: the whole run, start to
# stop, is what loaded them.
RUN_AND_SAY_MODULES = (
    "import atexit, json, sys\n"
    "atexit.register(lambda: print('MODULES ' + json.dumps(sorted(sys.modules)), file=sys.stderr, flush=True))\n"
    "sys.argv = ['energy-gateway', *sys.argv[1:]]\n"
    "from gateway.cli import main\n"
    "main()\n"
)


def _config(path: Path, modbus_port: int, store: str, api: str, outbox: str = "") -> Path:
    devices = "".join(
        f'[[devices]]\ntype = "modbus"\nname = "dev{u}"\nhost = "127.0.0.1"\nport = {modbus_port}\nunit = {u}\n'
        f'profile = "generic"\ninterval_s = 0.2\ntimeout_s = 0.5\n\n' for u in (1, 2, 3))
    meters = "".join(f'[[meters]]\nid = "m{u}"\nsite = "s1"\ndevice = "dev{u}"\n\n' for u in (1, 2, 3))
    path.write_text(
        # A database URL that cannot work: the collector role must never open the registry.
        '[gateway]\ndata_dir = "state"\nrole = "collector"\nrun_scheduler = false\n\n'
        '[database]\nurl_env = "NO_SUCH_DATABASE_URL"\n\n'
        f"{store}\n[outbox]\ncommit_interval_s = 0.05\n{outbox}\n[api]\n{api}\n\n"
        '[[customers]]\nid = "c1"\n\n[[sites]]\nid = "s1"\ncustomer = "c1"\n\n'
        f"{meters}{devices}")
    return path


def _collector(cfg: Path, *role: str) -> Proc:
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_SECRET_KEY"}  # production, and no API key needed
    return Proc([sys.executable, "-c", RUN_AND_SAY_MODULES, "run", *role, "--config", str(cfg)],
                env={**env, "PYTHONUNBUFFERED": "1"})


def _writer_pid(gateway_pid: int) -> int | None:
    """The gateway's child process running gateway.store_writer (started from one of its threads)."""
    for task in Path(f"/proc/{gateway_pid}/task").glob("*"):
        for pid in (task / "children").read_text().split():
            if b"gateway.store_writer" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return int(pid)
    return None


def _stored(store: Path) -> int:
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("SELECT count(*) FROM samples").fetchone()[0])
    except sqlite3.Error:
        return 0


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback, our own server
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _metric(port: int, name: str) -> float:
    _, body = _get(f"http://127.0.0.1:{port}/metrics")
    return float(next(line.split()[1] for line in body.splitlines() if line.startswith(f"{name} ")))


def test_collector_role_stores_without_the_web_stack_and_serves_metrics(tmp_path, modbus_sim):
    port = free_port()
    cfg = _config(tmp_path / "gateway.toml", modbus_sim, '[store]\ntype = "embedded"\n', f"port = {port}",
                  outbox='store_writer = "process"\n')
    proc = _collector(cfg, "--role", "collector")
    try:
        proc.wait_for_line("running")
        proc.wait_for(lambda: _stored(tmp_path / "state" / "timeseries.db") > 0, "readings in the store")
        # A store writer that dies is replaced; what it had not delivered waits in the outbox meanwhile.
        first_writer = _writer_pid(proc.pid)
        assert first_writer is not None
        os.kill(first_writer, signal.SIGKILL)
        proc.wait_for_line("starting a new one")
        proc.wait_for(lambda: _writer_pid(proc.pid) not in (None, first_writer), "a new store writer")
        proc.wait_for(lambda: _get(f"http://127.0.0.1:{port}/ready")[0] == 200, "every device polled")
        # The store writer process's counters reach this process's Prometheus counters within a tenth of a second.
        proc.wait_for(lambda: _metric(port, "gateway_readings_stored_total") > 0, "stored readings in /metrics")
        code, metrics = _get(f"http://127.0.0.1:{port}/metrics")
        assert code == 200
        assert 'gateway_device_online{device="dev1",protocol="modbus"} 1.0' in metrics
        assert "gateway_backpressure_slowed_total" in metrics
        code, health = _get(f"http://127.0.0.1:{port}/health")
        assert code == 200
        assert json.loads(health)["role"] == "collector"
        assert _get(f"http://127.0.0.1:{port}/api/v1/customers")[0] == 404  # no API in this role
        code, out, err = proc.finish(signal.SIGTERM, timeout=60)
    finally:
        proc.kill()
    assert code == 0, err
    assert "Traceback" not in err
    modules = set(json.loads(next(line for line in err.splitlines() if line.startswith("MODULES "))[8:]))
    assert "gateway.collector_role" in modules
    assert sorted(m for m in modules if m.split(".")[0] in HEAVY) == []
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["store_writer"]["process"] is True
    assert stats["store_writer"]["restarts"] == 1
    assert stats["collected"] > 0
    # Every reading collected is in the store, once (the store keeps one row per series and time). `stored` is
    # not compared: the killed writer's last tenth of a second of counters died with it.
    assert _stored(tmp_path / "state" / "timeseries.db") == stats["collected"]
    assert stats["outbox_depth"] == 0
    assert not Path(f"/proc/{stats['store_writer']['pid']}").exists()  # the writer ended with the gateway


def _influx_count(influxd, db: str) -> int:
    body = influxd.query('SELECT count("quality") FROM "reading"', db=db)
    series = body["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def test_sigterm_with_the_store_down_stops_within_its_budget_and_the_next_start_delivers_all(
        tmp_path, modbus_sim, influxd, influx_db):
    dead = f'[store]\ntype = "influxdb"\napi = "v1"\nurl = "http://127.0.0.1:{free_port()}"\ndatabase = "{influx_db}"\n'
    live = f'[store]\ntype = "influxdb"\napi = "v1"\nurl = "{influxd.url}"\ndatabase = "{influx_db}"\n'
    cfg = tmp_path / "gateway.toml"
    outbox_path = tmp_path / "state" / "outbox.db"
    _config(cfg, modbus_sim, dead, "enabled = false", outbox="stop_flush_s = 2\n")  # role = "collector" in it
    first = _collector(cfg)
    try:
        first.wait_for_line("running")
        first.wait_for(lambda: outbox_path.exists() and Outbox(outbox_path).depth >= 100, "readings in the outbox")
        # The old flush tried for 30 s; this one gives up after its 2 s (plus the collectors' stop) and says so.
        code, out, err = first.finish(signal.SIGTERM, timeout=20)
    finally:
        first.kill()
    assert code == 0, err
    first_stats = json.loads(out.strip().splitlines()[-1])
    left = Outbox(outbox_path).depth
    assert left == first_stats["outbox_depth"] == first_stats["collected"] > 0  # nothing stored, nothing lost
    assert f"stopped with {left} readings left in the outbox" in err
    assert _influx_count(influxd, influx_db) == 0

    _config(cfg, modbus_sim, live, "enabled = false")
    second = _collector(cfg)
    try:
        second.wait_for_line("running")
        second.wait_for(lambda: _influx_count(influxd, influx_db) >= left, "the backlog in influxd")
        code, out, err = second.finish(signal.SIGTERM, timeout=60)
    finally:
        second.kill()
    assert code == 0, err
    second_stats = json.loads(out.strip().splitlines()[-1])
    assert second_stats["outbox_depth"] == 0
    assert second_stats["stored"] == left + second_stats["collected"]
    assert "store_writer" not in second_stats  # the default: the writer is a thread of this process, which
    modules = set(json.loads(next(line for line in err.splitlines() if line.startswith("MODULES "))[8:]))
    assert "gateway.store.influx" in modules  # wrote to influxd itself, and still without the web stack or pandas
    assert sorted(m for m in modules if m.split(".")[0] in HEAVY) == []
    # Every reading of both runs is in influxd once: what waited in the outbox and what the second run collected.
    assert _influx_count(influxd, influx_db) == first_stats["collected"] + second_stats["collected"]
