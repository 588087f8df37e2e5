"""Fixtures shared by the gateway's process tests."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest


@pytest.fixture
def modbus_sim() -> Iterator[int]:
    """A Modbus simulator process with three meters (units 1-3) on one port; its port."""
    proc = subprocess.Popen([sys.executable, "-m", "collectors.sim.modbus_server", "--meters", "3"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield json.loads(proc.stdout.readline())["ports"][0]
    finally:
        proc.terminate()
        proc.wait(10)
