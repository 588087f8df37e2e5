"""`energy-gateway opcua gui`: the desktop browser under Xvfb against real servers on loopback, and its refusals.

The window runs in a child process (`python -m tests.collectors.opcua.test_gui OUT ARGS...`): the child makes the
Qt application, starts a watcher on Qt's loop and then runs the command line itself, `energy-gateway opcua gui
ARGS`. The watcher polls the window until the meter's nodes are in its tree, screenshots it and notes what it shows
in OUT/state.json, then closes it, which ends the command.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from PIL import Image
from typer.testing import CliRunner

from collectors.sim.load import LoadModel
from collectors.sim.opcua_server import OpcUaPlantSimulator, SimOpcUaMeter
from gateway.cli import app
from tests.gateway.cli.checks import assert_one_line_failure

ROOT = Path(__file__).resolve().parents[3]
INSTALL = "pip install 'energy-gateway[gui]'"
METER_PATH = "Root/Objects/Plant/meter1/active_power_kw"
CHILD_LIMIT_S = 240  # a hang guard for the child, not a speed check


@pytest.fixture(scope="module")
def xvfb(tmp_path_factory: pytest.TempPathFactory):
    """An X server of our own on a free display number, ready when it has written that number.

    Its display (":N"), or why there is none: the tests that need it fail with that reason (in the test, not in
    its set-up, so the run counts a failure).
    """
    exe = shutil.which("Xvfb")
    if exe is None:
        yield "Xvfb is not installed: apt-get install xvfb (bash deploy/dev.sh test installs it)"
        return
    log = tmp_path_factory.mktemp("xvfb") / "xvfb.log"
    read, write = os.pipe()
    with log.open("wb") as err:
        proc = subprocess.Popen([exe, "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                                pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=err)
    os.close(write)
    with os.fdopen(read) as ready:
        number = ready.readline().strip()  # EOF (empty) when Xvfb exits without starting
    try:
        yield f":{number}" if number else f"Xvfb did not start: {log.read_text(errors='replace')}"
    finally:
        proc.terminate()
        proc.wait(20)


def gui_env(display: str, home: Path, language: str = "C.UTF-8", **extra: str) -> dict[str, str]:
    """The child's environment: our display, Qt on X, its settings in a throwaway home, a chosen language."""
    if not display.startswith(":"):
        pytest.fail(display)
    env = {k: v for k, v in os.environ.items() if k not in {"WAYLAND_DISPLAY", "LANGUAGE", "LC_MESSAGES"}}
    runtime = home / "run"
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    env.update(DISPLAY=display, QT_QPA_PLATFORM="xcb", HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_RUNTIME_DIR=str(runtime), LANG=language, LC_ALL=language, **extra)
    return env


def _outputs(out: Path) -> tuple[BinaryIO, BinaryIO]:
    out.mkdir(parents=True, exist_ok=True)
    return (out / "stdout.txt").open("wb"), (out / "stderr.txt").open("wb")


def _said(out: Path, name: str) -> str:
    return (out / name).read_text(encoding="utf-8", errors="replace")


async def run_child(args: list[str], env: dict[str, str], out: Path) -> tuple[int, str, str]:
    """Run `python ARGS` from the repository root; (exit code, stdout, stderr)."""
    so, se = _outputs(out)
    with so, se:
        proc = await asyncio.create_subprocess_exec(sys.executable, *args, cwd=ROOT, env=env, stdout=so, stderr=se,
                                                    stdin=asyncio.subprocess.DEVNULL)
        try:
            code = await asyncio.wait_for(proc.wait(), CHILD_LIMIT_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            pytest.fail(f"the child did not end: {_said(out, 'stderr.txt')[-3000:]}")
    return code, _said(out, "stdout.txt"), _said(out, "stderr.txt")


async def open_gui(args: list[str], env: dict[str, str], out: Path) -> dict[str, Any]:
    """`energy-gateway opcua gui ARGS` watched until it shows the meter; what the window showed."""
    code, stdout, stderr = await run_child(["-m", "tests.collectors.opcua.test_gui", str(out), *args], env, out)
    assert code == 0, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    state: dict[str, Any] = json.loads(_said(out, "state.json"))
    assert "error" not in state, state.get("error")
    assert_screenshot(out / "gui.png")
    return state


def assert_screenshot(png: Path) -> None:
    """A real picture of a window: a PNG of window size with text and icons in it, not one flat colour."""
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as image:
        assert image.width >= 600, image.size
        assert image.height >= 400, image.size
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None
    assert len(colours) >= 32, f"{len(colours)} colours: the screenshot is blank"
    assert max(n for n, _ in colours) < 0.95 * image.width * image.height, "one colour covers the screenshot"


def simulator(**kw: Any) -> OpcUaPlantSimulator:
    # period_s: the values stay as made, nothing writes while the window browses
    return OpcUaPlantSimulator([SimOpcUaMeter("meter1", LoadModel(peak_kw=500.0, seed=7))], period_s=3600, **kw)


async def test_the_window_shows_the_servers_address_space(xvfb, tmp_path):
    sim = simulator()
    await sim.start()
    try:
        state = await open_gui([sim.url, "--data-dir", str(tmp_path / "var")], gui_env(xvfb, tmp_path / "home"),
                               tmp_path / "out")
    finally:
        await sim.stop()
    assert METER_PATH in state["tree"]
    assert {"Root/Objects/Server", "Root/Objects/Plant/meter1/voltage_ll_v"} <= set(state["tree"])
    assert state["selected"] == "active_power_kw"
    port = sim.url.split(":")[2].split("/")[0]
    assert state["title"] == f"energy-gateway: browse-127.0.0.1-{port} at {sim.url} (no security, anonymous)"
    assert (state["addresses"], state["editable"]) == ([sim.url], False)
    assert state["options_enabled"] == [False, False]  # the dialogs that would change security and login
    assert state["security"] == ["http://opcfoundation.org/UA/SecurityPolicy#None", "None_"]


def _gateway_toml(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(f"""\
[gateway]
environment = "development"
data_dir = "var"

[[devices]]
type = "opcua"
name = "meter-hall"
url = "{url}"
security_policy = "Basic256Sha256"
security_mode = "SignAndEncrypt"
username = "reader"
password_env = "GUI_TEST_PW"
timeout_s = 3

[[devices.nodes]]
point = "active_power_kw"
browse_path = "0:Objects/2:Plant/2:meter1/2:active_power_kw"

[[devices]]
type = "modbus"
name = "incomer-1"
host = "127.0.0.1"
port = 5020
profile = "sdm630"
""", encoding="utf-8")
    return path


def _sha(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


async def test_a_secure_device_opens_with_the_collectors_certificate_pin_and_login(xvfb, tmp_path, server_certs):
    cert, key = server_certs["a"]
    sim = simulator(certificate=cert, private_key=key, users={"reader": "s3cret-pw"}, secure_only=True)
    await sim.start()
    config = _gateway_toml(tmp_path, sim.url)
    env = gui_env(xvfb, tmp_path / "home", "zh_CN.UTF-8", GUI_TEST_PW="s3cret-pw")
    try:
        state = await open_gui(["--device", "meter-hall", "--config", str(config)], env, tmp_path / "out")
        # A server that now shows another certificate than the one pinned is refused before any window.
        pki = tmp_path / "var" / "opcua" / "pki"
        (pki / "trusted" / "meter-hall.der").write_bytes(server_certs["b"][0].read_bytes())
        refused = await run_child(["-m", "gateway.cli", "opcua", "gui", "--device", "meter-hall", "--config",
                                   str(config)], env, tmp_path / "refused")
        env["GUI_TEST_PW"] = "wrong"
        (pki / "trusted" / "meter-hall.der").write_bytes(cert.read_bytes())
        wrong = await run_child(["-m", "gateway.cli", "opcua", "gui", "--config", str(config)], env,
                                tmp_path / "wrong")
    finally:
        await sim.stop()
    assert METER_PATH in state["tree"]
    assert state["security"] == ["http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256", "SignAndEncrypt"]
    # The collector's certificate and pin, under the gateway's data_dir, named after the device.
    assert state["own_cert"] == _sha((pki / "own" / "meter-hall-cert.der").read_bytes())
    assert state["server_cert"] == _sha(cert.read_bytes())
    assert state["title"] == (f"energy-gateway：设备 meter-hall，{sim.url}"
                              "（Basic256Sha256/SignAndEncrypt，用户 'reader'）")
    assert_one_line_failure(refused, code=1, tool="opcua gui", expected="the server certificate of")
    assert_one_line_failure(wrong, code=1, tool="opcua gui", expected="refused user 'reader'")


def _sitecustomize(folder: Path, hidden: str) -> Path:
    """A site hook that makes `hidden` look not installed, as in an install without the extra."""
    folder.mkdir(parents=True)
    (folder / "sitecustomize.py").write_text(f"""\
import sys


class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == {hidden!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _NotInstalled())
""", encoding="utf-8")
    return folder


@pytest.mark.parametrize("hidden", ["PyQt5", "uaclient"])
async def test_without_the_extra_it_says_what_to_install(tmp_path, hidden):
    env = {**os.environ, "PYTHONPATH": str(_sitecustomize(tmp_path / "site", hidden))}
    env.pop("DISPLAY", None)
    result = await run_child(["-m", "gateway.cli", "opcua", "gui", "opc.tcp://127.0.0.1:4840/"], env, tmp_path / "a")
    assert_one_line_failure(result, code=1, tool="opcua gui", expected=INSTALL)
    assert f"no module {hidden!r}" in result[2]
    code, out, err = await run_child(["-m", "gateway.cli", "opcua", "gui", "--help"], env, tmp_path / "help")
    assert code == 0, err
    assert "energy-gateway[gui]" in out


def test_the_gateway_does_not_load_qt_until_a_window_is_asked_for():
    probe = ("import sys, gateway.cli, gateway.cli.opcua, collectors.opcua, collectors.opcua.gui\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in {'PyQt5', 'uaclient', 'uawidgets'}))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Any]]:
    """Every connection the command tries, refused at once: bad input must not get this far."""
    tried: list[tuple[Any, Any]] = []

    async def refuse(self: Any, protocol_factory: Any, host: Any = None, port: Any = None, **kwargs: Any) -> Any:
        tried.append((host, port))
        raise ConnectionRefusedError(111, "refused by the test")

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "create_connection", refuse)
    return tried


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return _gateway_toml(tmp_path, "opc.tcp://127.0.0.1:4840/plant/")


def _gui(*args: str, **env: str | None) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, ["opcua", "gui", *args], env={"QT_QPA_PLATFORM": "offscreen", **env})
    return r.exit_code, r.stdout, r.stderr


@pytest.mark.parametrize(("args", "expected"), [
    pytest.param(["http://plc:4840/"], "is not an opc.tcp://host[:port][/path] URL", id="http"),
    pytest.param(["opc.tcp://127.0.0.1:0/"], "port 0 is not in 1..65535", id="port-0"),
    pytest.param(["opc.tcp://plc/", "--security-policy", "Basic256Sha256"], "needs security_mode", id="no-mode"),
    pytest.param(["opc.tcp://plc/", "--username", "reader"], "needs password_env", id="user-without-password"),
    pytest.param(["--device", "nope"], "--device: no device 'nope' in ", id="unknown-device"),
    pytest.param(["--device", "incomer-1"], "'incomer-1' is a modbus device, not OPC UA (OPC UA devices: meter-hall)",
                 id="modbus-device"),
    pytest.param(["opc.tcp://plc/", "--device", "meter-hall"], "give a URL or --device", id="url-and-device"),
    pytest.param(["--device", "meter-hall", "--username", "x"], "--username goes with a URL", id="device-and-login"),
    pytest.param(["--device", "meter-hall", "--data-dir", "x"], "--data-dir goes with a URL", id="device-and-dir"),
    pytest.param(["--bogus"], "No such option", id="unknown-option"),
])
def test_bad_input_is_one_line_and_exit_2_without_connecting(connects, config, args, expected):
    if "--device" in args and not any(a.startswith("opc.tcp") for a in args):
        args = [*args, "--config", str(config)]
    assert_one_line_failure(_gui(*args), code=2, tool="opcua gui", expected=expected)
    assert connects == []


def test_a_missing_config_no_display_and_an_unreachable_server_are_exit_1(connects, tmp_path, config):
    missing = tmp_path / "nowhere.toml"
    assert_one_line_failure(_gui("--device", "meter-hall", "--config", str(missing)), code=1, tool="opcua gui",
                            expected=f"{missing}: file not found")
    assert_one_line_failure(_gui("--config", str(config), DISPLAY=None, WAYLAND_DISPLAY=None, QT_QPA_PLATFORM=None),
                            code=1, tool="opcua gui", expected="no display to open the window on")
    assert_one_line_failure(_gui("--config", str(config), GUI_TEST_PW=None), code=1, tool="opcua gui",
                            expected="environment variable GUI_TEST_PW (the password of user 'reader') is not set")
    assert connects == []
    assert_one_line_failure(_gui("opc.tcp://127.0.0.1:4841/plant"), code=1, tool="opcua gui",
                            expected="cannot connect to opc.tcp://127.0.0.1:4841/plant")
    assert connects == [("127.0.0.1", 4841)]


def _tree(model: Any, item: Any, path: str, out: list[str]) -> None:
    for row in range(item.rowCount()):
        child = item.child(row, 0)
        here = f"{path}/{child.text()}"
        out.append(here)
        _tree(model, child, here, out)


def _drive(out: Path, args: list[str]) -> None:
    """In the child: the command line, with a watcher on Qt's loop that records the window once it shows the meter."""
    from PyQt5.QtCore import Qt, QTimer
    from PyQt5.QtWidgets import QApplication

    qt = QApplication([sys.argv[0]])  # the command uses the application it finds

    def look() -> None:
        from uaclient.mainwindow import Window

        window = next((w for w in qt.topLevelWidgets() if isinstance(w, Window) and w.isVisible()), None)
        if window is None:
            return
        if window.uaclient.client is None:
            logged = window.ui.logTextEdit.toPlainText()
            if " - ERROR - " in logged:  # Connect failed: the window logs why in its pane
                watcher.stop()
                (out / "state.json").write_text(json.dumps({"error": logged}), encoding="utf-8")
                window.close()
            return
        model, view = window.tree_ui.model, window.ui.treeView
        found = None
        for step in ("Objects", "Plant", "meter1", "active_power_kw"):
            found = model.match(model.index(0, 0), Qt.DisplayRole, step, 1, Qt.MatchExactly | Qt.MatchRecursive)
            if not found:
                return  # the tree fetches children as it expands them: look again on the next tick
            view.setExpanded(found[0], True)
        watcher.stop()
        view.setCurrentIndex(found[0])  # its attributes fill the attribute pane
        qt.processEvents()
        window.grab().save(str(out / "gui.png"), "PNG")
        shown: list[str] = []
        root = model.item(0, 0)
        _tree(model, root, root.text(), shown)
        policy = window.uaclient.client.aio_obj.security_policy
        combo = window.ui.addrComboBox
        state = {"tree": shown, "selected": window.tree_ui.get_current_node().read_browse_name().Name,
                 "title": window.windowTitle(), "addresses": [combo.itemText(i) for i in range(combo.count())],
                 "editable": combo.isEditable(),
                 "options_enabled": [window.ui.connectOptionButton.isEnabled(),
                                     window.ui.actionClient_Application_Certificate.isEnabled()],
                 "security": [policy.URI, policy.Mode.name],
                 "own_cert": _sha(policy.host_certificate) if policy.host_certificate else None,
                 "server_cert": _sha(policy.peer_certificate) if policy.peer_certificate else None}
        (out / "state.json").write_text(json.dumps(state, ensure_ascii=False), encoding="utf-8")
        window.close()

    watcher = QTimer()
    watcher.timeout.connect(look)
    watcher.start(100)
    sys.argv = ["energy-gateway", "opcua", "gui", *args]
    from gateway.cli import main

    main()


if __name__ == "__main__":
    _drive(Path(sys.argv[1]), sys.argv[2:])
