"""Config reload on SIGHUP while a real `energy-gateway run` polls real Modbus servers, and the `collect = false` role.

A device is added, one's point changed and one removed: the untouched device polls on without a gap longer than two
intervals, and everything collected is stored. A config that does not validate is refused with its key path and
changes nothing.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import sqlite3
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.reload import config_path_of_process, group_devices
from tests.gateway.procs import Proc

EXE = [sys.executable, "-m", "gateway.cli"]
INTERVAL_S = 1.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sim_ports() -> Iterator[list[int]]:
    """Three Modbus TCP servers of two meters (units 1 and 2) each, in their own process."""
    sim = Proc([sys.executable, "-m", "collectors.sim.modbus_server", "--servers", "3", "--meters", "2"])
    try:
        sim.wait_for_line('"ports"', stream="out")
        yield [int(p) for p in json.loads(sim.out[0])["ports"]]
    finally:
        if sim.popen.poll() is None:
            sim.finish(signal.SIGTERM, timeout=30)
        sim.kill()


def _device(name: str, port: int, unit: int, points: str = "") -> str:
    body = points or 'profile = "generic"\n'
    return (f'[[meters]]\nid = "m-{name}"\nsite = "s1"\ndevice = "{name}"\n\n'
            f'[[devices]]\ntype = "modbus"\nname = "{name}"\nhost = "127.0.0.1"\nport = {port}\nunit = {unit}\n'
            f'interval_s = {INTERVAL_S}\n{body}\n')


def _point(name: str, scale: float = 1.0) -> str:
    return (f'[[devices.points]]\nname = "{name}"\naddress = 0\nkind = "holding"\ntype = "float32"\n'
            f'scale = {scale}\n')


def _write(path: Path, devices: str, api_port: int = 0, collect: bool = True) -> None:
    path.write_text(
        f'[gateway]\ndata_dir = "state"\nenvironment = "development"\nrun_scheduler = false\n'
        f'collect = {str(collect).lower()}\n\n[api]\nport = {api_port}\nwarm_days = 0\n\n'
        '[[customers]]\nid = "c1"\nname = "C1"\n\n[[sites]]\nid = "s1"\ncustomer = "c1"\n\n' + devices)


def _times(db: Path, device: str, point: str) -> list[int]:
    """Source times (ns) of one device's point in the embedded store, in order."""
    if not db.exists():
        return []
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
            return [r[0] for r in conn.execute(
                "SELECT ts FROM samples JOIN series ON series.id = samples.series_id "
                "WHERE device = ? AND point = ? ORDER BY ts", (device, point))]
    except sqlite3.OperationalError:  # the file is there, its tables not yet
        return []


def _reloads(proc: Proc, what: str) -> int:
    return sum(what in line for line in proc.err)


def test_sighup_adds_changes_and_removes_devices_while_the_others_poll_on(tmp_path, sim_ports):
    p1, p2, p3 = sim_ports
    config = tmp_path / "gateway.toml"
    db = tmp_path / "state" / "timeseries.db"
    _write(config, _device("keep", p1, 1) + _device("chg", p2, 1, _point("p_kw")) + _device("gone", p2, 2))
    proc = Proc([*EXE, "run", "--config", str(config)])
    try:
        proc.wait_for(lambda: all(_times(db, d, p) for d, p in
                                  (("keep", "active_power_kw"), ("chg", "p_kw"), ("gone", "active_power_kw"))),
                      "readings of every device")
        # The new config: `add` on a third server, `chg` reads its point in MW, `gone` is removed.
        _write(config, _device("keep", p1, 1) + _device("chg", p2, 1, _point("p_mw", 0.001)) + _device("add", p3, 1))
        proc.popen.send_signal(signal.SIGHUP)
        proc.wait_for_line("reload applied")
        applied = next(line for line in proc.err if "reload applied" in line)
        assert "added ['add'], changed ['chg'], removed ['gone']" in applied
        proc.wait_for(lambda: len(_times(db, "add", "active_power_kw")) >= 3 and _times(db, "chg", "p_mw"),
                      "readings of the added and the changed device")
        gone = len(_times(db, "gone", "active_power_kw"))
        old_point = len(_times(db, "chg", "p_kw"))

        # A config that does not validate: refused with its key path; the running one stays.
        _write(config, _device("keep", p1, 1) + _device("chg", p2, 1, 'profile = "generic"\nbogus_key = 1\n'))
        proc.popen.send_signal(signal.SIGHUP)
        proc.wait_for_line("reload refused")
        refused = next(line for line in proc.err if "reload refused" in line)
        assert "bogus_key" in "".join(proc.err[proc.err.index(refused):])
        assert "devices[1]" in "".join(proc.err[proc.err.index(refused):])
        added = len(_times(db, "add", "active_power_kw"))
        proc.wait_for(lambda: len(_times(db, "add", "active_power_kw")) >= added + 5, "the added device polling on")
        assert _reloads(proc, "reload applied") == 1
        code, out, err = proc.finish(signal.SIGTERM)
        assert code == 0, err
    finally:
        proc.kill()

    assert len(_times(db, "gone", "active_power_kw")) == gone  # removed: polled no more
    assert len(_times(db, "chg", "p_kw")) == old_point  # its old point is read no more
    keep = _times(db, "keep", "active_power_kw")
    assert len(keep) >= 8  # polled before, between and after both reloads
    gaps = [(b - a) / 1e9 for a, b in zip(keep, keep[1:], strict=False)]
    assert max(gaps) <= 2 * INTERVAL_S, gaps  # the untouched device did not notice the reloads
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["dropped"] == 0
    assert stats["outbox_depth"] == 0
    assert stats["stored"] == stats["collected"] > 0  # nothing accepted was lost
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM samples").fetchone()[0] == stats["stored"]


def test_an_api_only_process_knows_the_devices_polls_none_and_is_ready(tmp_path, sim_ports):
    config = tmp_path / "gateway.toml"
    port = _free_port()
    _write(config, _device("keep", sim_ports[0], 1), api_port=port, collect=False)
    proc = Proc([*EXE, "run", "--config", str(config)])

    def ready() -> dict | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as r:  # noqa: S310 - loopback
                return json.loads(r.read())
        except (urllib.error.URLError, ConnectionError):
            return None

    try:
        proc.wait_for(lambda: ready() is not None, "/ready answering 200")
        body = ready()
        assert body is not None
        assert body["status"] == "ready"
        assert body["checks"]["collectors"] == {"ok": True, "collect": False}
        code, out, err = proc.finish(signal.SIGTERM)
        assert code == 0, err
    finally:
        proc.kill()
    assert json.loads(out.strip().splitlines()[-1])["collected"] == 0
    assert _times(tmp_path / "state" / "timeseries.db", "keep", "active_power_kw") == []


def test_devices_on_one_connection_are_one_group_and_the_config_path_comes_from_the_command_line():
    from gateway.config import parse_config

    cfg = parse_config({"devices": [
        {"type": "modbus", "name": "a", "host": "127.0.0.1", "port": 1502, "unit": 1, "profile": "generic"},
        {"type": "modbus", "name": "b", "host": "127.0.0.1", "port": 1502, "unit": 2, "profile": "generic"},
        {"type": "modbus", "name": "c", "host": "127.0.0.1", "port": 1503, "unit": 1, "profile": "generic"},
        {"type": "opcua", "name": "d", "url": "opc.tcp://127.0.0.1:4840",
         "nodes": [{"point": "p", "node_id": "ns=2;i=5"}]},
        {"type": "opcua", "name": "e", "url": "opc.tcp://127.0.0.1:4840",
         "nodes": [{"point": "p", "node_id": "ns=2;i=6"}]},
    ]}, Path("gateway.toml"))
    groups = {key: [d.name for d in devices] for key, devices in group_devices(cfg.devices).items()}
    assert sorted(groups.values()) == [["a", "b"], ["c"], ["d", "e"]]  # by host:port, and by server URL
    assert config_path_of_process(["run", "--config", "x/g.toml"]) == Path("x/g.toml").resolve()
    assert config_path_of_process(["run", "--config=g.toml"]) == Path("g.toml").resolve()
    assert config_path_of_process(["demo", "--port", "0"]) is None
