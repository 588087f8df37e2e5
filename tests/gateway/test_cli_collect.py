"""`energy-gateway collect --once`: one poll of every configured point as JSON lines, tagged, nothing stored."""

from __future__ import annotations

import json
import subprocess
import sys


def test_collect_once_prints_json_lines(tmp_path):
    sim = subprocess.Popen([sys.executable, "-m", "collectors.sim.modbus_server", "--meters", "2", "--profile",
                            "sdm630"], stdout=subprocess.PIPE, text=True)
    try:
        port = json.loads(sim.stdout.readline())["ports"][0]
        cfg = tmp_path / "gateway.toml"
        cfg.write_text(
            '[gateway]\nenvironment = "development"\n\n[[customers]]\nid = "c1"\n\n[[sites]]\nid = "s1"\n'
            'customer = "c1"\n\n[[meters]]\nid = "m1"\nsite = "s1"\ndevice = "d1"\n\n'
            f'[[devices]]\ntype = "modbus"\nname = "d1"\nhost = "127.0.0.1"\nport = {port}\nunit = 1\n'
            'profile = "sdm630"\n\n'
            f'[[devices]]\ntype = "modbus"\nname = "d9"\nhost = "127.0.0.1"\nport = {port}\nunit = 9\n'
            'profile = "sdm630"\ntimeout_s = 0.3\nretries = 0\n'
        )
        out = subprocess.run([sys.executable, "-m", "gateway.cli", "collect", "--config", str(cfg), "--once"],
                             capture_output=True, text=True, timeout=60)
    finally:
        sim.terminate()
        sim.wait(10)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    d1 = [r for r in rows if r["device"] == "d1"]
    d9 = [r for r in rows if r["device"] == "d9"]
    assert len(d1) == 13
    assert all(r["quality"] == "good" and r["value"] is not None for r in d1)
    assert {r["meter"] for r in d1} == {"m1"}
    assert {r["customer"] for r in d1} == {"c1"}
    power = next(r for r in d1 if r["point"] == "active_power_kw")
    assert power["unit"] == "kW"
    assert 0 < power["value"] < 10_000
    assert power["source_ts"].endswith("+00:00")
    # A unit nobody answers for: explicit offline signal, no numbers.
    assert d9
    assert all(r["quality"] == "comm_lost" and r["value"] is None for r in d9)
    assert not (tmp_path / "var").exists()  # nothing was stored: no data dir was even made
