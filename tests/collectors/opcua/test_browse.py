"""`energy-gateway opcua browse` against the simulator run as its own process (python -m ...opcua_server)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from gateway.cli import app


@pytest.fixture(scope="module")
def sim_process():
    proc = subprocess.Popen([sys.executable, "-m", "collectors.sim.opcua_server", "--meters", "2"],
                            stdout=subprocess.PIPE, text=True)
    try:
        yield json.loads(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(20)


def test_browse_lists_meters_with_paths_ids_and_values(sim_process):
    r = CliRunner().invoke(app, ["opcua", "browse", sim_process["url"], "--depth", "3", "--json"])
    assert r.exit_code == 0, r.output
    nodes = [json.loads(line) for line in r.output.splitlines()]
    power = [n for n in nodes if n["browse_name"] == "active_power_kw"]
    assert {n["browse_path"] for n in power} == {"0:Objects/2:Plant/2:meter1/2:active_power_kw",
                                                 "0:Objects/2:Plant/2:meter2/2:active_power_kw"}
    assert {n["node_id"] for n in power} == {sim_process["nodes"]["meter1"]["active_power_kw"],
                                             sim_process["nodes"]["meter2"]["active_power_kw"]}
    assert all(n["value"] > 0 and n["class"] == "Variable" for n in power)
    text = CliRunner().invoke(app, ["opcua", "browse", sim_process["url"], "--depth", "2"])
    assert "meter1" in text.output


def test_browse_of_an_unreachable_server_says_so():
    r = CliRunner().invoke(app, ["opcua", "browse", "opc.tcp://127.0.0.1:1/"])
    assert r.exit_code == 1
    assert "cannot connect to opc.tcp://127.0.0.1:1/" in r.output
    r = CliRunner().invoke(app, ["opcua", "browse", "http://x"])
    assert r.exit_code == 2
