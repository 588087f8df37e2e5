"""Start-up of the command line: lazy sub-commands, one line (never a traceback) for an environment problem."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from gateway.cli import SUBAPPS, app
from gateway.config import load_config
from gateway.runtime import open_registry

EXE = [sys.executable, "-m", "gateway.cli"]
DEV = '[gateway]\ndata_dir = "state"\nenvironment = "development"\n'


def _loaded_after(argv: list[str], modules: tuple[str, ...]) -> list[str]:
    """Which of `modules` a fresh interpreter has imported after running `energy-gateway ARGV`."""
    code = (
        "import json, sys\n"
        "from gateway.cli import main\n"
        f"sys.argv = ['energy-gateway', *{argv!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(json.dumps([m for m in {modules!r} if m in sys.modules]), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return json.loads(proc.stderr.strip().splitlines()[-1])


def test_help_imports_none_of_the_heavy_modules():
    heavy = ("pandas", "numpy", "asyncua", "pymodbus", "fastapi", "uvicorn", "sqlalchemy", "statsmodels",
             "gateway.config", "gateway.cli.users", "gateway.cli.forecast")
    assert _loaded_after(["--help"], heavy) == []


def test_check_config_imports_no_web_database_or_forecasting_stack(tmp_path):
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(DEV)
    heavy = ("fastapi", "uvicorn", "sqlalchemy", "alembic", "statsmodels", "apscheduler", "gateway.runtime")
    assert _loaded_after(["check-config", "--config", str(cfg)], heavy) == []


@pytest.mark.parametrize("argv", [["--help"], *([name, "--help"] for name in [*SUBAPPS, "run", "demo", "collect",
                                                                              "check-config"])])
def test_every_command_answers_help(argv):
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    if argv == ["--help"]:
        assert all(name in result.output for name in SUBAPPS)


def test_a_sub_app_that_fails_to_import_says_so(monkeypatch):
    monkeypatch.setitem(SUBAPPS, "broken", ("tests.gateway.no_such_module", "A sub-app whose module is missing."))
    listing = CliRunner().invoke(app, ["--help"])
    assert listing.exit_code == 0
    assert "broken" in listing.output
    result = CliRunner().invoke(app, ["broken", "--help"])
    assert isinstance(result.exception, ModuleNotFoundError)  # not hidden as "No such command"


def test_an_unknown_command_suggests_among_the_lazy_ones():
    result = CliRunner().invoke(app, ["user"])
    assert result.exit_code == 2
    assert "Did you mean 'users'?" in result.output
    assert _loaded_after(["user"], ("gateway.cli.users",)) == []  # suggested without importing it


def _run(tmp_path, text: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(text)
    return subprocess.run([*EXE, "run", "--config", str(cfg)], capture_output=True, text=True, timeout=120)


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_with_the_api_port_taken_says_so_in_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _one_line(_run(tmp_path, DEV + f"[api]\nport = {port}\n"))
    assert line == f"cannot listen on the API address 127.0.0.1:{port}: Address already in use"


def test_run_with_a_database_that_refuses_says_so_in_one_line(tmp_path):
    url = f"postgresql+psycopg://gw:hunter2@127.0.0.1:{_free_port()}/gw"
    line = _one_line(_run(tmp_path, DEV + f'[api]\nenabled = false\n[database]\nurl = "{url}"\n'))
    assert line.startswith("cannot open or migrate the registry database postgresql+psycopg://gw:***@127.0.0.1:")
    assert "hunter2" not in line


def test_run_with_a_registry_it_cannot_migrate_says_so_in_one_line(tmp_path):
    (tmp_path / "state").mkdir()
    with sqlite3.connect(tmp_path / "state" / "gateway.db") as db:
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        db.execute("INSERT INTO alembic_version VALUES ('9999_from_the_future')")
    line = _one_line(_run(tmp_path, DEV + "[api]\nenabled = false\n"))
    assert line.endswith("gateway.db: Can't locate revision identified by '9999_from_the_future'")


def test_run_with_an_outbox_that_is_not_a_database_says_so_in_one_line(tmp_path):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "outbox.db").write_text("not SQLite " * 100)
    line = _one_line(_run(tmp_path, DEV + "[api]\nenabled = false\n"))
    assert line == f"cannot open the outbox {tmp_path / 'state' / 'outbox.db'}: file is not a database"


def test_run_with_a_data_folder_it_cannot_make_says_so_in_one_line(tmp_path):
    line = _one_line(_run(tmp_path, '[gateway]\ndata_dir = "/proc/energy-gateway-test"\nenvironment = '
                                    '"development"\n[api]\nenabled = false\n'))
    assert line.startswith("cannot create the data folder /proc/energy-gateway-test: ")


def test_the_registry_makes_its_data_folder_on_first_use(tmp_path, monkeypatch):
    cfg_path = tmp_path / "gateway.toml"
    cfg_path.write_text('[gateway]\ndata_dir = "not/yet/there"\nenvironment = "development"\n')
    cfg = load_config(cfg_path, environ={})
    assert not cfg.gateway.data_dir.exists()
    open_registry(cfg, {})
    assert (tmp_path / "not" / "yet" / "there" / "gateway.db").is_file()

    monkeypatch.setenv("NEW_PW", "a-long-enough-password")
    cfg_path.write_text('[gateway]\ndata_dir = "fresh"\nenvironment = "development"\n')
    result = CliRunner().invoke(app, ["users", "add", "--config", str(cfg_path), "ops", "--role", "engineer",
                                      "--password-env", "NEW_PW"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "fresh" / "gateway.db").is_file()


def test_python_m_runs_the_command_line_and_importing_its_main_module_does_not(monkeypatch, capsys):
    import importlib
    import runpy

    monkeypatch.setattr(sys, "argv", ["energy-gateway", "--help"])
    monkeypatch.delitem(sys.modules, "gateway.cli.__main__", raising=False)
    importlib.import_module("gateway.cli.__main__")  # a doc tool or a test collector imports it: nothing runs
    assert capsys.readouterr().out == ""
    del sys.modules["gateway.cli.__main__"]
    with pytest.raises(SystemExit) as done:
        runpy.run_module("gateway.cli", run_name="__main__")  # what `python -m gateway.cli` does
    assert done.value.code == 0
    assert "Usage:" in capsys.readouterr().out
