"""deploy/systemd/: each unit passes `systemd-analyze verify`, is hardened (`systemd-analyze security`), checks its
config before starting, and stops with SIGTERM and time enough to flush the outbox."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY, tool

UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
INSTALLED = "/opt/energy-gateway/.venv/bin/energy-gateway"


@pytest.fixture
def units_here(tmp_path: Path) -> list[Path]:
    """Copies of the units whose commands point at this checkout's energy-gateway (verify checks they exist)."""
    here = shutil.which("energy-gateway", path=str(Path(sys.executable).parent))
    assert here is not None
    copies = []
    for unit in UNITS:
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text().replace(INSTALLED, here))
        copies.append(copy)
    return copies


def test_the_two_roles_and_the_single_process_have_units():
    assert [u.name for u in UNITS] == ["energy-gateway-api.service", "energy-gateway-collector.service",
                                       "energy-gateway.service"]


def test_units_verify_without_a_warning(units_here):
    for unit in units_here:
        result = subprocess.run([tool("systemd-analyze", "systemd"), "verify", str(unit)], capture_output=True,
                                text=True, check=False)
        assert result.returncode == 0, result.stderr
        assert result.stderr.strip() == "", result.stderr  # an unknown key or a misplaced one is only a warning


def test_units_are_hardened(units_here):
    for unit in units_here:
        result = subprocess.run([tool("systemd-analyze", "systemd"), "security", "--offline=true", "--no-pager",
                                 str(unit)], capture_output=True, text=True, check=False)
        found = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", result.stdout)
        assert found, result.stdout + result.stderr
        # systemd's scale: 0 (locked down) to 10 (unprotected); a plain unit scores 9.6 "UNSAFE".
        assert float(found.group(1)) <= 2.0, f"{unit.name}: {found.group(0)}"


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_unit_checks_its_config_runs_unprivileged_and_stops_gently(unit):
    text = unit.read_text()
    (start,) = re.findall(r"^ExecStart=(.+)$", text, re.M)
    (pre,) = re.findall(r"^ExecStartPre=(.+)$", text, re.M)
    config = start.split("--config ")[1]
    assert start == f"{INSTALLED} run --config {config}"
    assert pre == f"{INSTALLED} check-config --config {config}"
    assert "User=energy-gateway" in text
    assert "EnvironmentFile=/etc/energy-gateway/secrets.env" in text
    assert "KillSignal=SIGTERM" in text
    assert int(re.search(r"^TimeoutStopSec=(\d+)$", text, re.M).group(1)) >= 60  # the outbox flush gets 30 s + 10 s
    state = re.search(r"^StateDirectory=(\S+)$", text, re.M).group(1)
    assert re.search(rf"^WorkingDirectory=/var/lib/{re.escape(state)}$", text, re.M)
