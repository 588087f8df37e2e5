"""Malformed gateway.toml cases: `energy-gateway check-config` output is compared with a golden file per case.

Each folder under config_cases/ holds gateway.toml, expected.txt and optionally env (KEY=VALUE lines). Run with
UPDATE_GOLDENS=1 to rewrite expected.txt after an intended change, then review the diff. The environment is explicit:
every variable the case's gateway.toml names (`*_env` keys) is removed first, then `env` sets what the case needs.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app

CASES = sorted(p for p in (Path(__file__).parent / "config_cases").iterdir() if p.is_dir())
GOOD_ENV = {"GATEWAY_SECRET_KEY": "k" * 32}


def _env(case: Path) -> dict[str, str]:
    env = dict(GOOD_ENV)
    extra = case / "env"
    if extra.exists():
        for line in extra.read_text().splitlines():
            key, _, value = line.partition("=")
            env[key] = value
    return env


def _named_variables(node: object) -> set[str]:
    """Every environment variable a config names: the values of its `*_env` keys, at any depth."""
    if isinstance(node, dict):
        names = {v for k, v in node.items() if k.endswith("_env") and isinstance(v, str) and v}
        return names.union(*(_named_variables(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_named_variables(v) for v in node))
    return set()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_config_golden(case, monkeypatch):
    monkeypatch.chdir(case)
    try:
        named = _named_variables(tomllib.loads((case / "gateway.toml").read_text()))
    except tomllib.TOMLDecodeError:
        named = set()
    for key in {"GATEWAY_SECRET_KEY", "PLANT1_SECRET"} | named:
        monkeypatch.delenv(key, raising=False)
    for key, value in _env(case).items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(app, ["check-config", "--config", "gateway.toml"])
    assert result.exit_code == 1, result.output
    golden = case / "expected.txt"
    if os.environ.get("UPDATE_GOLDENS") == "1":
        golden.write_text(result.stderr)
    assert result.stderr == golden.read_text()
    assert "gateway.toml" in result.stderr


def test_at_least_ten_cases():
    assert len(CASES) >= 10


def test_valid_config_passes(tmp_path, monkeypatch):
    monkeypatch.setenv("GATEWAY_SECRET_KEY", "k" * 32)
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(
        '[[customers]]\nid = "acme"\ntimezone = "Europe/Berlin"\n\n[[sites]]\nid = "north"\ncustomer = "acme"\n'
    )
    result = CliRunner().invoke(app, ["check-config", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "OK (1 customers, 1 sites, 0 meters, 0 devices, store embedded)" in result.stdout
