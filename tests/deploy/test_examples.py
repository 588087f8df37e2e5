"""deploy/examples/: every example passes `energy-gateway check-config` with the secrets template's variables and
fails naming them without; the fleet has exactly one scheduler and shares one store and one registry."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY, REPO

EXAMPLES = DEPLOY / "examples"
CONFIGS = sorted([*EXAMPLES.glob("*.toml"), *EXAMPLES.glob("fleet/*.toml"), *(DEPLOY / "docker").glob("*.toml")])
TEMPLATE = EXAMPLES / "secrets.env.example"
EXE = [sys.executable, "-m", "gateway.cli"]


def template() -> dict[str, str]:
    """The template's variables, each empty one given a stand-in value of the length a real one would have."""
    out = {}
    for line in TEMPLATE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, line
            out[key] = value or "x" * 32
    return out


def named_variables(config: dict) -> set[str]:
    """Every environment variable a config needs: its `*_env` values, and the API key when the API is on."""
    api = config.get("api", {})
    names = _env_values(config)
    if api.get("enabled", True) and config.get("gateway", {}).get("environment", "production") == "production":
        names.add(api.get("secret_key_env", "GATEWAY_SECRET_KEY"))
    return names


def _env_values(node: object) -> set[str]:
    if isinstance(node, dict):
        names = {v for k, v in node.items() if k.endswith("_env") and isinstance(v, str) and v}
        return names.union(*(_env_values(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_env_values(v) for v in node))
    return set()


def check_config(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in template()}
    return subprocess.run([*EXE, "check-config", "--config", str(path)], capture_output=True, text=True,
                          env={**base, **env}, cwd=REPO, check=False)


def test_the_examples_are_all_there():
    assert {p.relative_to(DEPLOY).as_posix() for p in CONFIGS} >= {
        "examples/plant-embedded.toml", "examples/plant-central-influx.toml", "examples/fleet/plant-a.toml",
        "examples/fleet/plant-b.toml", "examples/fleet/central-scheduler.toml", "examples/fleet/central-api.toml",
        "docker/collector.toml", "docker/api.toml"}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.relative_to(DEPLOY).as_posix() for p in CONFIGS])
def test_example_passes_check_config_with_the_secrets_template(path):
    result = check_config(path, template())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{path}: OK (")


@pytest.mark.parametrize("path", CONFIGS, ids=[p.relative_to(DEPLOY).as_posix() for p in CONFIGS])
def test_example_without_its_secrets_names_each_missing_one(path):
    needed = named_variables(tomllib.loads(path.read_text()))
    assert needed
    result = check_config(path, {})
    assert result.returncode == 1
    for name in needed:
        assert name in result.stderr, f"{name} missing from:\n{result.stderr}"


def test_the_template_holds_every_variable_the_examples_name_and_no_secret():
    names = set(template())
    for path in CONFIGS:
        missing = named_variables(tomllib.loads(path.read_text())) - names
        assert not missing, f"{path.name} names {missing}, which the secrets template lacks"
    for line in TEMPLATE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            value = line.partition("=")[2]
            assert value == "" or "CHANGE-ME" in value, f"the template holds a value: {line}"


def _fleet() -> dict[str, dict]:
    return {p.stem: tomllib.loads(p.read_text()) for p in sorted((EXAMPLES / "fleet").glob("*.toml"))}


def test_fleet_has_exactly_one_scheduler_and_shares_one_store_and_registry():
    fleet = _fleet()
    assert set(fleet) == {"plant-a", "plant-b", "central-scheduler", "central-api"}
    schedulers = [name for name, cfg in fleet.items() if cfg["gateway"].get("run_scheduler", True)]
    assert schedulers == ["central-scheduler"]
    assert len({repr(sorted(cfg["store"].items())) for cfg in fleet.values()}) == 1
    assert {cfg["store"]["type"] for cfg in fleet.values()} == {"influxdb"}
    assert {cfg["store"]["api"] for cfg in fleet.values()} == {"v2"}
    assert {cfg["database"]["url_env"] for cfg in fleet.values()} == {"GATEWAY_DATABASE_URL"}


def test_fleet_plants_poll_their_own_devices_and_the_central_site_knows_them_all_but_polls_none():
    fleet = _fleet()
    plants = {name: {d["name"] for d in cfg.get("devices", [])} for name, cfg in fleet.items()}
    assert plants["plant-a"]
    assert plants["plant-b"]
    assert not plants["plant-a"] & plants["plant-b"]
    assert plants["central-scheduler"] == plants["central-api"] == plants["plant-a"] | plants["plant-b"]
    assert all(fleet[n]["gateway"]["collect"] is False for n in ("central-scheduler", "central-api"))
    names = {cfg["gateway"]["name"] for cfg in fleet.values()}
    assert len(names) == len(fleet)  # each process tells itself apart in logs and metrics
    central_customers = {c["id"] for c in fleet["central-scheduler"]["customers"]}
    plant_customers = {c["id"] for n in ("plant-a", "plant-b") for c in fleet[n]["customers"]}
    assert central_customers == plant_customers  # the portal serves every plant's customers


def test_collector_role_examples_write_where_the_collector_unit_lets_them():
    unit = (DEPLOY / "systemd" / "energy-gateway-collector.service").read_text()
    assert "StateDirectory=energy-gateway/collector" in unit
    for path in (EXAMPLES / "plant-central-influx.toml", EXAMPLES / "fleet" / "plant-a.toml",
                 EXAMPLES / "fleet" / "plant-b.toml"):
        cfg = tomllib.loads(path.read_text())
        assert cfg["gateway"]["data_dir"] == "/var/lib/energy-gateway/collector", path.name
        assert cfg["gateway"]["run_scheduler"] is False, path.name
    api_unit = (DEPLOY / "systemd" / "energy-gateway-api.service").read_text()
    assert "StateDirectory=energy-gateway/api" in api_unit
    for name in ("central-scheduler", "central-api"):
        assert _fleet()[name]["gateway"]["data_dir"] == "/var/lib/energy-gateway/api"
