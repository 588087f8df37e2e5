"""`energy-gateway opcua browse` against the simulator run as its own process (python -m ...opcua_server)."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import threading
from typing import Any

import pytest
from asyncua import ua
from typer.testing import CliRunner

from collectors.sim.load import LoadModel
from collectors.sim.opcua_server import OpcUaPlantSimulator, SimOpcUaMeter
from gateway.cli import app
from tests.collectors.opcua.conftest import make_cert
from tests.gateway.cli.checks import assert_one_line_failure


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
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = CliRunner().invoke(app, ["opcua", "browse", "http://x"])
    assert r.exit_code == 2


def _browse(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, ["opcua", "browse", *args])
    return r.exit_code, r.stdout, r.stderr


def test_help_shows_the_url_form_instead_of_crashing_on_it():
    code, out, err = _browse("--help")
    assert code == 0, err
    assert "opc.tcp://host[:port][/path]" in out


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Any]]:
    """Every connection the browse tries, refused at once: bad input must not get this far."""
    tried: list[tuple[Any, Any]] = []

    async def refuse(self: Any, protocol_factory: Any, host: Any = None, port: Any = None, **kwargs: Any) -> Any:
        tried.append((host, port))
        raise ConnectionRefusedError(111, "refused by the test")

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "create_connection", refuse)
    return tried


@pytest.mark.parametrize(("args", "expected"), [
    pytest.param(["opc.tcp://"], "names no host", id="no-host"),
    pytest.param(["opc.tcp://:4840/"], "no host given", id="port-only"),
    pytest.param([f"opc.tcp://{'a' * 253}:4840/"], "at most 63", id="253-char-host"),
    pytest.param(["opc.tcp://\x80:4840/"], "internationalised", id="non-ascii-host"),
    pytest.param(["opc.tcp://a..b/"], "empty label", id="empty-label"),
    pytest.param(["opc.tcp://127.0.0.1:0/"], "port 0 is not in 1..65535", id="port-0"),
    pytest.param(["opc.tcp://127.0.0.1:70000/"], "port 70000 is not in 1..65535", id="port-70000"),
    pytest.param(["opc.tcp://127.0.0.1:abc/"], "not a number", id="port-text"),
    pytest.param(["opc.tcp://user:pw@plc/"], "password", id="credentials"),
    pytest.param(["opc.tcp://plc/a b"], "' '", id="space-in-path"),
    pytest.param(["http://plc:4840/"], "is not an opc.tcp://host[:port][/path] URL", id="http"),
    pytest.param(["opc.tcp://plc/", "--depth", "0"], "--depth", id="depth-0"),
    pytest.param(["opc.tcp://plc/", "--depth", "11"], "--depth", id="depth-11"),
    pytest.param([], "Missing argument 'URL'", id="no-url"),
    pytest.param(["opc.tcp://plc/", "--security-policy", "Basic128"], "--security-policy", id="unknown-policy"),
    pytest.param(["opc.tcp://plc/", "--security-policy", "Basic256Sha256"], "needs security_mode",
                 id="policy-without-mode"),
    pytest.param(["opc.tcp://plc/", "--username", "reader"], "needs password_env", id="user-without-password"),
    pytest.param(["opc.tcp://plc/", "--user-cert", "u.der"], "user_private_key", id="cert-without-key"),
])
def test_bad_input_is_one_line_and_exit_2_without_connecting(connects, args, expected):
    assert_one_line_failure(_browse(*args), code=2, tool="opcua browse", expected=expected)
    assert connects == []


def test_unreachable_server_is_one_line_and_exit_1(connects):
    code, out, err = _browse("opc.tcp://Zähler.local/plant")
    assert code == 1
    assert connects == [("xn--zhler-gra.local", 4840)]  # the IDNA form, the OPC UA default port
    assert err.startswith("opcua browse: cannot connect to opc.tcp://xn--zhler-gra.local:4840/plant")
    assert len(err.strip().splitlines()) == 1, err
    assert out == ""


class _SimThread:
    """The in-process simulator on its own loop in a thread (the CLI runs its own asyncio.run), values held still."""

    def __init__(self, **kw: Any) -> None:
        meters = [SimOpcUaMeter("meter1", LoadModel(peak_kw=500.0, seed=7))]
        # period_s: no update overwrites the values set by the test
        self.sim = OpcUaPlantSimulator(meters, period_s=3600, **kw)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(20)

    def __enter__(self) -> _SimThread:
        self.thread.start()
        self.run(self.sim.start())
        return self

    def __exit__(self, *exc: object) -> None:
        self.run(self.sim.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _no_nan(constant: str) -> None:
    raise AssertionError(f"{constant} is not JSON")


def test_nan_is_valid_json_and_uncertain_and_bad_values_carry_their_status():
    with _SimThread() as t:
        t.run(t.sim.set_quality("meter1", "power_factor", ua.StatusCode(ua.StatusCodes.Good), math.nan))
        t.run(t.sim.set_quality("meter1", "voltage_ll_v", ua.StatusCode(ua.StatusCodes.Good), -math.inf))
        t.run(t.sim.set_quality("meter1", "current_a", ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue), 12.5))
        t.run(t.sim.set_quality("meter1", "frequency_hz", ua.StatusCode(ua.StatusCodes.BadSensorFailure)))
        code, out, err = _browse(t.sim.url, "--depth", "3", "--json")
        assert code == 0, err
        nodes = {n["browse_name"]: n for n in (json.loads(line, parse_constant=_no_nan) for line in out.splitlines())}
        assert (nodes["power_factor"]["value"], nodes["power_factor"]["value_text"]) == (None, "nan")
        assert nodes["power_factor"]["status"] == "Good"
        assert (nodes["voltage_ll_v"]["value"], nodes["voltage_ll_v"]["value_text"]) == (None, "-inf")
        assert (nodes["current_a"]["value"], nodes["current_a"]["status"]) == (12.5, "UncertainLastUsableValue")
        assert (nodes["frequency_hz"]["value"], nodes["frequency_hz"]["status"]) == (None, "BadSensorFailure")
        assert nodes["active_power_kw"]["status"] == "Good"
        assert nodes["active_power_kw"]["value"] > 0
        code, out, err = _browse(t.sim.url, "--depth", "3")
        assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert lines["current_a"].endswith("= 12.5 (UncertainLastUsableValue)")
    assert lines["frequency_hz"].endswith("= None (BadSensorFailure)")
    assert lines["power_factor"].endswith("= nan")


def test_secure_only_server_is_browsed_with_the_collectors_security_options(tmp_path, monkeypatch):
    cert, key = asyncio.run(make_cert(tmp_path, "server"))
    monkeypatch.setenv("BROWSE_PW", "s3cret-pw")
    secure = ["--security-policy", "Basic256Sha256", "--security-mode", "SignAndEncrypt", "--username", "reader",
              "--password-env", "BROWSE_PW", "--data-dir", str(tmp_path / "var"), "--timeout", "3"]
    with _SimThread(certificate=cert, private_key=key, users={"reader": "s3cret-pw"}, secure_only=True) as t:
        code, out, err = _browse(t.sim.url, "--depth", "3", "--json", *secure)
        assert code == 0, err
        paths = {json.loads(line)["browse_path"] for line in out.splitlines()}
        assert "0:Objects/2:Plant/2:meter1/2:active_power_kw" in paths
        assert list((tmp_path / "var" / "opcua" / "pki" / "trusted").glob("browse-127.0.0.1-*.der"))
        code, out, err = _browse(t.sim.url, "--depth", "1")  # anonymous and unsecured: no session
        assert code == 1, out
        monkeypatch.setenv("BROWSE_PW", "wrong")
        assert_one_line_failure(_browse(t.sim.url, *secure), code=1, tool="opcua browse",
                                expected="refused user 'reader'")
