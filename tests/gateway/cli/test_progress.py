"""Progress bars of the long CLI jobs: drawn on stderr in a terminal, never on stdout, quiet with --json or a pipe.

The commands run as real processes whose stderr is a pseudo-terminal and whose stdout is a pipe, the way a person
runs `energy-gateway ... > result.json` in a terminal.
"""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

import tests.gateway.api.world as world_mod
from gateway.progress import progress
from tests.forecasting.conftest import synth
from tests.gateway.cli.test_registry_cli import GOOD, _book

EXE = [sys.executable, "-m", "gateway.cli"]
ROOT = Path(__file__).resolve().parents[3]


def run_in_terminal(args: list[str], timeout: float = 300) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal and stdout on a pipe: (exit code, stdout, what the terminal showed)."""
    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TTY_INTERACTIVE", "CI")}
    env.update(TERM="xterm-256color", COLUMNS="120", LINES="40")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=terminal, stdin=subprocess.DEVNULL, cwd=ROOT,
                            env=env)
    os.close(terminal)
    shown = bytearray()

    def read_terminal() -> None:
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the process closed its end
                return
            if not chunk:
                return
            shown.extend(chunk)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    out, _ = proc.communicate(timeout=timeout)
    reader.join(30)
    os.close(controller)
    return proc.returncode, out.decode(), shown.decode(errors="replace")


# -- the helper ----------------------------------------------------------------------------------------------------

def test_a_terminal_sees_the_bar_and_its_count():
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    with progress("reports", 3, console=console) as bar:
        assert bar.shown
        for _ in bar.track(["a", "b", "c"]):
            pass
    assert "reports" in screen.getvalue()
    assert "3/3" in screen.getvalue()


@pytest.mark.parametrize(("terminal", "as_json"), [(False, False), (True, True)])
def test_quiet_without_a_terminal_or_with_json(terminal, as_json):
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=terminal, width=100)
    with progress("reports", 2, as_json=as_json, console=console) as bar:
        assert not bar.shown
        items = list(bar.track([1, 2]))
    assert items == [1, 2]
    assert screen.getvalue() == ""


def test_a_tracked_list_and_a_counting_factory_drive_the_bar():
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    with progress("import", None, console=console) as bar:
        rows = bar.tracked([(1, "x"), (2, "y")])
        assert rows == [(1, "x"), (2, "y")]
        assert len(rows) == 2
        make = bar.counting(lambda: "model")
        assert [make(), make(), make()] == ["model"] * 3
        assert [n for n, _ in rows] == [1, 2]  # iterating advances by one per item
        task = bar._progress.tasks[0]
        assert task.completed == 5


# -- the commands --------------------------------------------------------------------------------------------------

@pytest.fixture
def history(tmp_path):
    series, _ = synth(days=21, start="2026-03-02")
    path = tmp_path / "h.csv"
    pd.DataFrame({"timestamp": [t.isoformat() for t in series.index], "value": series.round(3)}).to_csv(
        path, index=False)
    return path


def _backtest(history: Path, *extra: str) -> tuple[int, str, str]:
    return run_in_terminal([*EXE, "forecast", "backtest", "--history", str(history), "--horizon", "96",
                            "--start", "2026-03-16", "--model", "seasonal_naive_1d", *extra])


def test_backtest_shows_its_bar_on_the_terminal_and_keeps_stdout_for_the_result(history):
    code, out, shown = _backtest(history)
    assert code == 0, shown
    assert "backtest" in shown
    assert "7/7" in shown  # one step per origin, 16 to 22 March
    assert out.startswith("model seasonal_naive_1d: 7 origins")
    assert "7/7" not in out


def test_backtest_json_is_clean_json_on_stdout_and_no_bar(history):
    code, out, shown = _backtest(history, "--json")
    assert code == 0, shown
    report = json.loads(out)  # the whole of stdout is the one JSON document
    assert report["overall"]["origins"] == 7
    assert "7/7" not in shown
    assert "backtest" not in shown


def test_registry_import_shows_its_bar_and_stdout_ends_with_the_json_summary(tmp_path):
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(f'[gateway]\ndata_dir = "{tmp_path / "state"}"\nenvironment = "development"\n'
                   '[[customers]]\nid = "plant"\nname = "Plant"\n')
    book = _book(tmp_path / "accounts.xlsx", GOOD)
    rows = sum(len(r) for r in GOOD.values())
    code, out, shown = run_in_terminal([*EXE, "registry", "import", "--config", str(cfg), str(book)])
    assert code == 0, shown
    assert "import" in shown
    assert f"{rows}/{rows}" in shown
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["applied"] is True
    assert f"{rows}/{rows}" not in out


@pytest.mark.slow
def test_report_batch_shows_its_bar_on_the_terminal_only(tmp_path):
    os.environ.setdefault("GATEWAY_SECRET_KEY", "test-secret-key-0123456789abcdef")
    w = world_mod.build_world(tmp_path)
    month = w.today["acme"][:7]
    out_dir = tmp_path / "reports"
    code, out, shown = run_in_terminal([*EXE, "report", "customer", "-c", str(tmp_path / "gateway.toml"), "--all",
                                        "--month", month, "--out-dir", str(out_dir), "--format", "xlsx"])
    assert code == 0, shown
    assert "reports" in shown
    assert "3/3" in shown
    assert out.strip() == f"{out_dir}: 3 reports, 0 without data"
