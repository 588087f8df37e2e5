"""`energy-gateway backup|restore`: a backup taken while a real gateway polls real Modbus meters loses nothing accepted
before it began, restores into a fresh folder with the same counts, and a restore refuses a running gateway's files
and a backup of another schema version."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.backup import MANIFEST, code_revision
from gateway.cli.backup import app
from tests.gateway.procs import Proc

EXE = [sys.executable, "-m", "gateway.cli"]


def _config(path: Path, data_dir: str, sim_port: int, api_port: int = 0) -> str:
    devices = "".join(
        f'[[meters]]\nid = "m{u}"\nsite = "s1"\ndevice = "d{u}"\n\n'
        f'[[devices]]\ntype = "modbus"\nname = "d{u}"\nhost = "127.0.0.1"\nport = {sim_port}\nunit = {u}\n'
        'profile = "generic"\ninterval_s = 0.1\n\n'
        for u in (1, 2)
    )
    path.write_text(
        f'[gateway]\ndata_dir = "{data_dir}"\nenvironment = "development"\nrun_scheduler = false\n\n'
        f'[api]\nport = {api_port}\nwarm_days = 0\n\n'
        '[[customers]]\nid = "c1"\nname = "C1"\n\n[[sites]]\nid = "s1"\ncustomer = "c1"\n\n' + devices
    )
    return str(path)


def _rows(db: Path, sql: str, *args: object) -> int:
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        return int(conn.execute(sql, args).fetchone()[0])


def _samples(db: Path) -> int:
    try:
        return _rows(db, "SELECT count(*) FROM samples") if db.exists() else 0
    except sqlite3.OperationalError:  # made, but its tables not yet
        return 0


@pytest.fixture
def modbus_sim() -> Iterator[int]:
    sim = Proc([sys.executable, "-m", "collectors.sim.modbus_server", "--meters", "2"])
    try:
        sim.wait_for_line('"ports"', stream="out")
        yield int(json.loads(sim.out[0])["ports"][0])
    finally:
        sim.finish(signal.SIGTERM, timeout=30) if sim.popen.poll() is None else None
        sim.kill()


@pytest.fixture
def running(tmp_path, modbus_sim) -> Iterator[tuple[str, Path, Proc]]:
    """A gateway writing readings of two meters every 0.1 s into its embedded store; its config and data folder."""
    config = _config(tmp_path / "gateway.toml", "state", modbus_sim)
    state = tmp_path / "state"
    proc = Proc([*EXE, "run", "--config", config])
    try:
        proc.wait_for(lambda: _samples(state / "timeseries.db") > 200, "readings in the store")
        yield config, state, proc
    finally:
        proc.kill()


def _invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args))


def test_backup_while_running_then_restore_into_a_fresh_folder_keeps_every_reading(tmp_path, running):
    config, state, proc = running
    began_ns = time.time_ns()
    out = tmp_path / "backup"
    result = _invoke("backup", "--config", config, "--out", str(out))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.splitlines()[-1])
    files = summary["files"]
    assert set(files) == {"store", "outbox", "registry"}
    assert summary["registry_revision"] == code_revision()
    copied = files["store"]["rows"]["samples"]
    # The gateway kept writing while and after the backup ran.
    proc.wait_for(lambda: _samples(state / "timeseries.db") > copied + 100, "readings after the backup")
    code, _, err = proc.finish(signal.SIGTERM)
    assert code == 0, err
    # Every reading accepted before the backup began is in the backup: in its store, or still in its outbox.
    accepted_before = _rows(state / "timeseries.db", "SELECT count(*) FROM samples WHERE gateway_ts < ?", began_ns)
    in_store = _rows(out / "timeseries.db", "SELECT count(*) FROM samples WHERE gateway_ts < ?", began_ns)
    assert accepted_before > 0
    assert in_store + files["outbox"]["rows"]["readings"] >= accepted_before
    assert _samples(state / "timeseries.db") > copied

    fresh = _config(tmp_path / "fresh.toml", "fresh", 1)
    result = _invoke("restore", "--config", fresh, "--from", str(out))
    assert result.exit_code == 0, result.output
    restored = json.loads(result.stdout.splitlines()[-1])["restored"]
    for role in ("store", "outbox", "registry"):
        assert restored[role]["rows"] == files[role]["rows"], role
    assert _samples(tmp_path / "fresh" / "timeseries.db") == copied
    assert _rows(tmp_path / "fresh" / "gateway.db", "SELECT count(*) FROM customer") == 1


def test_restore_refuses_the_files_of_a_running_gateway_and_leaves_them_alone(tmp_path, running):
    config, state, proc = running
    out = tmp_path / "backup"
    assert _invoke("backup", "--config", config, "--out", str(out)).exit_code == 0
    result = _invoke("restore", "--config", config, "--from", str(out))
    assert result.exit_code == 1
    assert "a gateway is running on" in result.stderr
    assert f"pid {proc.pid}" in result.stderr
    before = _samples(state / "timeseries.db")
    proc.wait_for(lambda: _samples(state / "timeseries.db") > before + 50, "the gateway still writing")
    code, _, err = proc.finish(signal.SIGTERM)
    assert code == 0, err
    result = _invoke("restore", "--config", config, "--from", str(out))  # stopped: now it may
    assert result.exit_code == 0, result.output


def test_restore_refuses_a_backup_of_another_schema_version_and_an_unfinished_one(tmp_path, running):
    config, _, _ = running
    out = tmp_path / "backup"
    assert _invoke("backup", "--config", config, "--out", str(out)).exit_code == 0
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["registry_revision"] = "r0001_initial"
    (out / MANIFEST).write_text(json.dumps(manifest))
    fresh = _config(tmp_path / "fresh.toml", "fresh", 1)
    result = _invoke("restore", "--config", fresh, "--from", str(out))
    assert result.exit_code == 1
    assert "schema version r0001_initial" in result.stderr
    assert f"this gateway's schema version is {code_revision()}" in result.stderr
    assert not (tmp_path / "fresh" / "timeseries.db").exists()

    (out / MANIFEST).unlink()
    result = _invoke("restore", "--config", fresh, "--from", str(out))
    assert result.exit_code == 1
    assert "not a backup, or one that did not finish" in result.stderr


def test_backup_refuses_a_folder_that_holds_something(tmp_path, running):
    config, _, _ = running
    out = tmp_path / "backup"
    out.mkdir()
    (out / "keep.txt").write_text("an earlier backup's notes")
    result = _invoke("backup", "--config", config, "--out", str(out))
    assert result.exit_code == 1
    assert "is not an empty folder" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
