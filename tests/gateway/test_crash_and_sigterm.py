"""The real gateway process: kill -9 with readings waiting in the outbox, then restart; and a clean SIGTERM.

Meters are the Modbus plant simulator in its own process; the store is a real influxd.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.outbox import Outbox
from tests.gateway.procs import Proc
from tests.servers.influx import free_port

pytestmark = pytest.mark.slow
EXE = [sys.executable, "-m", "gateway.cli"]


def _config(path: Path, modbus_port: int, store: str, n_devices: int = 3) -> Path:
    devices = "".join(
        f'[[devices]]\ntype = "modbus"\nname = "dev{u}"\nhost = "127.0.0.1"\nport = {modbus_port}\nunit = {u}\n'
        f'profile = "generic"\ninterval_s = 0.2\ntimeout_s = 0.5\n\n'
        for u in range(1, n_devices + 1)
    )
    meters = "".join(f'[[meters]]\nid = "m{u}"\nsite = "s1"\ndevice = "dev{u}"\n\n' for u in range(1, n_devices + 1))
    path.write_text(
        '[gateway]\ndata_dir = "state"\nenvironment = "development"\n\n'
        f"{store}\n"
        '[outbox]\ncommit_interval_s = 0.05\n\n[api]\nenabled = false\n\n'
        '[[customers]]\nid = "c1"\n\n[[sites]]\nid = "s1"\ncustomer = "c1"\n\n'
        f"{meters}{devices}"
    )
    return path


def _wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _influx_count(influxd, db: str) -> int:
    body = influxd.query('SELECT count("quality") FROM "reading"', db=db)
    series = body["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def test_kill_9_with_readings_in_outbox_then_restart_delivers_them(tmp_path, influxd, influx_db, modbus_sim):
    dead = f'[store]\ntype = "influxdb"\napi = "v1"\nurl = "http://127.0.0.1:{free_port()}"\ndatabase = "{influx_db}"\n'
    live = f'[store]\ntype = "influxdb"\napi = "v1"\nurl = "{influxd.url}"\ndatabase = "{influx_db}"\n'
    cfg = _config(tmp_path / "gateway.toml", modbus_sim, dead)
    outbox_path = tmp_path / "state" / "outbox.db"
    first = subprocess.Popen([*EXE, "run", "--config", str(cfg)], stderr=subprocess.DEVNULL)
    try:
        _wait(lambda: outbox_path.exists() and Outbox(outbox_path).depth >= 200, 60, "readings in the outbox")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert first.returncode == -signal.SIGKILL
    waiting = Outbox(outbox_path)
    pending = waiting.peek(10**9).readings
    waiting.close()
    assert len(pending) >= 200
    assert _influx_count(influxd, influx_db) == 0

    _config(cfg, modbus_sim, live)
    second = subprocess.Popen([*EXE, "run", "--config", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True)
    try:
        _wait(lambda: _influx_count(influxd, influx_db) >= len(pending), 60, "the backlog in influxd")
    finally:
        second.send_signal(signal.SIGTERM)
        out, _ = second.communicate(timeout=60)
    assert second.returncode == 0
    # Every reading that waited in the outbox at the kill is in influxd, exactly once, with its value.
    for r in pending[:: max(1, len(pending) // 50)]:
        body = influxd.query(
            f"SELECT value, quality FROM reading WHERE device='{r.device}' AND point='{r.point}' "
            f"AND time = {r.source_ts}", db=influx_db)
        rows = body["results"][0]["series"][0]["values"]
        assert len(rows) == 1
        if r.value is not None:
            assert rows[0][1] == pytest.approx(r.value)
    assert Outbox(outbox_path).depth == 0
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["stored"] >= len(pending)


def _stored(store: Path) -> int:
    """Readings in the embedded store (0 while it does not exist yet); read-only, beside the running gateway."""
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("SELECT count(*) FROM samples").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_sigterm_flushes_and_exits_cleanly(tmp_path, modbus_sim):
    cfg = _config(tmp_path / "gateway.toml", modbus_sim, '[store]\ntype = "embedded"\n')
    proc = Proc([*EXE, "run", "--config", str(cfg)], env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        proc.wait_for_line("running")  # collectors, pipeline and scheduler started
        proc.wait_for(lambda: _stored(tmp_path / "state" / "timeseries.db") > 0, "readings in the store")
        code, out, err = proc.finish(signal.SIGTERM, timeout=60)
    finally:
        proc.kill()
    assert code == 0, err
    assert "Traceback" not in err
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["collected"] > 0
    assert stats["stored"] == stats["collected"]
    assert stats["outbox_depth"] == 0
    assert Outbox(tmp_path / "state" / "outbox.db").depth == 0
