"""SIGTERM at any moment of `run` and `demo`: exit code 0, never a traceback; the stats line once the pipeline ran.

Each test waits for an observable moment (the handler installed, a file made, a line printed), then signals.
"""

from __future__ import annotations

import json
import signal
import socket
import sys

import pytest

from tests.gateway.procs import Proc, handles_sigterm

EXE = [sys.executable, "-m", "gateway.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp_path) -> str:
    """A Modbus device nobody answers for, so nothing is ever polled; the API on a free port."""
    path = tmp_path / "gateway.toml"
    path.write_text(
        '[gateway]\ndata_dir = "state"\nenvironment = "development"\n\n[api]\nport = 0\n\n'
        f'[[devices]]\ntype = "modbus"\nname = "d1"\nhost = "127.0.0.1"\nport = {_free_port()}\nunit = 1\n'
        'profile = "generic"\ninterval_s = 5\n'
    )
    return str(path)


def _stop(proc: Proc, when, what: str) -> tuple[int, str, str]:
    try:
        proc.wait_for(when, what)
        return proc.finish(signal.SIGTERM)
    finally:
        proc.kill()


def _clean(code: int, err: str) -> None:
    assert code == 0, err
    assert "Traceback" not in err


def test_run_sigterm_during_imports_exits_0_without_a_traceback(tmp_path):
    proc = Proc([*EXE, "run", "--config", _config(tmp_path)])
    code, out, err = _stop(proc, lambda: handles_sigterm(proc.pid), "its SIGTERM handler")
    _clean(code, err)
    assert "SIGTERM during start-up" in err
    assert out == ""  # nothing ran, so there are no stats to print
    assert not (tmp_path / "state").exists()  # it stopped before opening anything


def test_run_sigterm_while_opening_its_stores_exits_0_without_a_traceback(tmp_path):
    proc = Proc([*EXE, "run", "--config", _config(tmp_path)])
    code, out, err = _stop(proc, (tmp_path / "state" / "outbox.db").exists, "the outbox file")
    _clean(code, err)
    if out:  # it got as far as running: then it flushed and said so
        assert json.loads(out.splitlines()[-1])["outbox_depth"] == 0
    else:
        assert "SIGTERM during start-up" in err


def test_run_sigterm_once_running_flushes_and_prints_its_stats(tmp_path):
    proc = Proc([*EXE, "run", "--config", _config(tmp_path)])
    code, out, err = _stop(proc, lambda: any("running" in line for line in proc.err), "the 'running' line")
    _clean(code, err)
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["outbox_depth"] == 0
    assert "stopping: collectors, API, scheduler" in err


def test_demo_sigterm_during_imports_exits_0_without_a_traceback(tmp_path):
    proc = Proc([*EXE, "demo", "--port", "0", "--data-dir", str(tmp_path / "demo")])
    code, out, err = _stop(proc, lambda: handles_sigterm(proc.pid), "its SIGTERM handler")
    _clean(code, err)
    assert out == ""


def test_demo_sigterm_while_backfilling_exits_0_without_a_traceback(tmp_path):
    proc = Proc([*EXE, "demo", "--port", "0", "--data-dir", str(tmp_path / "demo")])
    code, _, err = _stop(proc, (tmp_path / "demo" / "timeseries.db").exists, "the embedded store file")
    _clean(code, err)


@pytest.mark.slow
def test_demo_sigterm_once_ready_prints_its_summary(tmp_path):
    proc = Proc([*EXE, "demo", "--port", "0", "--data-dir", str(tmp_path / "demo")])
    code, out, err = _stop(proc, lambda: bool(proc.out), "the portal line")
    _clean(code, err)
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert "portal_url" in lines[0]
    assert lines[-1]["outbox_depth"] == 0
