"""deploy/dev.sh: the demo start says what it installs, and a second start skips the install while pyproject.toml is
unchanged. Run on a copy of the script in a small real project (a real virtualenv, pip and package index)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY

PYPROJECT = """[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "tiny-gateway"
version = "{version}"

[project.optional-dependencies]
dask = []
test = []

[project.scripts]
energy-gateway = "tiny_gateway:main"

[tool.setuptools]
py-modules = ["tiny_gateway"]
"""
MODULE = 'import sys\n\n\ndef main():\n    print("tiny-gateway", " ".join(sys.argv[1:]))\n'


def test_syntax():
    assert subprocess.run(["bash", "-n", str(DEPLOY / "dev.sh")], check=False).returncode == 0


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "deploy").mkdir()
    shutil.copy(DEPLOY / "dev.sh", tmp_path / "deploy" / "dev.sh")
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.format(version="0.1.0"))
    (tmp_path / "tiny_gateway.py").write_text(MODULE)
    # The project's virtualenv, made from this interpreter's base Python as `python3 -m venv` would.
    subprocess.run([sys._base_executable, "-m", "venv", str(tmp_path / ".venv")], check=True)  # type: ignore[attr-defined]
    return tmp_path


def _demo(project: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    result = subprocess.run(["bash", "deploy/dev.sh", "demo", "--duration", "5"], cwd=project, env=env,
                            capture_output=True, text=True, check=False, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == "tiny-gateway demo --duration 5"
    return result


def test_demo_installs_with_progress_then_skips_until_pyproject_changes(project):
    first = _demo(project)
    assert "[dev.sh] installing energy-gateway[dask]" in first.stderr
    assert "Successfully installed" in first.stdout  # pip's own lines are shown, not silenced
    assert "[dev.sh] starting the demo" in first.stderr

    second = _demo(project)
    assert "[dev.sh] dependencies are up to date" in second.stderr
    assert "[dev.sh] installing" not in second.stderr
    assert "Successfully installed" not in second.stdout

    (project / "pyproject.toml").write_text(PYPROJECT.format(version="0.2.0"))
    third = _demo(project)
    assert "[dev.sh] installing energy-gateway[dask]" in third.stderr
    assert "tiny-gateway-0.2.0" in third.stdout
