"""`energy-gateway jobs list|run`: the registered jobs, their last runs (also from another process) and next runs."""

from __future__ import annotations

import json
import logging
import signal
import socket
import sys
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from gateway import logs
from gateway.cli.jobs import app
from gateway.scheduler import read_state
from tests.gateway.procs import Proc

EXE = [sys.executable, "-m", "gateway.cli"]
JOBS = {"outbox_expire", "alerts", "forecast", "tiering"}


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The command sets up logging in this process (onto the runner's stderr): put back what was there."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for name in logs._applied:
        logging.getLogger(name).setLevel(logging.NOTSET)
    logs._applied.clear()
    root.handlers[:] = handlers
    root.setLevel(level)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp_path, run_scheduler: bool = True) -> str:
    path = tmp_path / "gateway.toml"
    path.write_text(
        f'[gateway]\ndata_dir = "state"\nenvironment = "development"\nrun_scheduler = {str(run_scheduler).lower()}\n'
        f'\n[api]\nport = {_free_port()}\nwarm_days = 0\n\n'
        '[[customers]]\nid = "c1"\nname = "C1"\n\n[[sites]]\nid = "s1"\ncustomer = "c1"\n'
    )
    return str(path)


def _jobs(config: str) -> dict[str, dict]:
    result = CliRunner().invoke(app, ["list", "--config", config, "--json"])
    assert result.exit_code == 0, result.output
    return {row["name"]: row for row in map(json.loads, result.stdout.splitlines())}


def test_list_shows_every_job_never_run_and_not_scheduled_without_a_running_scheduler(tmp_path):
    jobs = _jobs(_config(tmp_path))
    assert set(jobs) >= JOBS
    assert jobs["forecast"]["schedule"] == "cron hour=21 minute=30 timezone=Asia/Shanghai"  # its customers' clock
    assert jobs["outbox_expire"]["schedule"] == "interval minutes=5"
    assert all(j["last_run"] is None and j["next_run"] is None and not j["scheduled"] for j in jobs.values())
    table = CliRunner().invoke(app, ["list", "--config", _config(tmp_path)])
    assert table.exit_code == 0, table.output
    assert "outbox_expire" in table.stdout
    assert "No scheduler is running" in table.stdout


def test_run_runs_the_job_now_and_list_shows_its_last_run(tmp_path):
    config = _config(tmp_path)
    result = CliRunner().invoke(app, ["run", "outbox_expire", "--config", config])
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.splitlines()[-1])
    assert line["job"] == "outbox_expire"
    assert line["outcome"] == "ok"
    jobs = _jobs(config)
    assert jobs["outbox_expire"]["last_outcome"] == "ok"
    assert jobs["outbox_expire"]["last_run"] is not None
    assert jobs["alerts"]["last_run"] is None  # only the job that ran


def test_run_of_an_unknown_job_names_the_jobs_and_exits_2(tmp_path):
    result = CliRunner().invoke(app, ["run", "no-such-job", "--config", _config(tmp_path)])
    assert result.exit_code == 2
    assert "no job 'no-such-job'" in result.stderr
    assert "outbox_expire" in result.stderr


def test_a_process_without_the_scheduler_role_says_so(tmp_path):
    result = CliRunner().invoke(app, ["list", "--config", _config(tmp_path, run_scheduler=False)])
    assert result.exit_code == 0, result.output
    assert "run_scheduler = false" in result.stdout


def test_list_shows_next_runs_while_the_gateway_runs_and_keeps_a_manual_run(tmp_path):
    config = _config(tmp_path)
    state = tmp_path / "state" / "jobs.json"
    proc = Proc([*EXE, "run", "--config", config])
    try:
        proc.wait_for(lambda: read_state(state).get("scheduler", {}).get("running", False), "the scheduler's state")
        jobs = _jobs(config)
        assert all(jobs[name]["scheduled"] and jobs[name]["next_run"] for name in JOBS), jobs
        result = CliRunner().invoke(app, ["run", "outbox_expire", "--config", config])
        assert result.exit_code == 0, result.output
        assert _jobs(config)["outbox_expire"]["last_outcome"] == "ok"
        code, _, err = proc.finish(signal.SIGTERM)
        assert code == 0, err
    finally:
        proc.kill()
    after = _jobs(config)
    assert not after["forecast"]["scheduled"]  # the scheduler has stopped: no next run is promised
    assert after["outbox_expire"]["last_run"] is not None  # the manual run outlives the scheduler's last write
