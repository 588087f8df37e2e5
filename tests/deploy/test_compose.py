"""deploy/docker-compose.yml and deploy/Dockerfile: validated by Debian's docker-compose (no engine runs here)."""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gateway.cli import app
from tests.deploy.conftest import DEPLOY, REPO, tool
from tests.gateway.api.world import RunningApi, build_world

COMPOSE = DEPLOY / "docker-compose.yml"
SERVICES = {"gateway-collector", "gateway-api", "influxdb", "postgres", "prometheus", "grafana"}


def compose_config(env: dict[str, str]) -> tuple[dict, str]:
    """`docker-compose config` of the file in an environment holding only `env` (and PATH): (parsed, stderr)."""
    result = subprocess.run([tool("docker-compose", "docker-compose"), "-f", str(COMPOSE), "config"],
                            capture_output=True, text=True, env={"PATH": os.environ["PATH"], **env}, check=False,
                            cwd=REPO)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout), result.stderr


def test_validates_with_no_variable_set():
    cfg, stderr = compose_config({})
    assert "WARNING" not in stderr  # "The X variable is not set. Defaulting to a blank string."
    assert set(cfg["services"]) == SERVICES
    assert "version" not in yaml.safe_load(COMPOSE.read_text())  # obsolete in the Compose Specification
    for name, service in cfg["services"].items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert service["restart"] == "unless-stopped", name
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"


def test_one_value_of_each_secret_reaches_every_service_that_needs_it():
    env = {"INFLUX_TOKEN": "tok-123", "POSTGRES_PASSWORD": "pw-456", "GATEWAY_SECRET_KEY": "s" * 32,
           "GRAFANA_ADMIN_PASSWORD": "gr-789", "GATEWAY_PORT": "18080"}
    services = compose_config(env)[0]["services"]
    influx, grafana, pg = services["influxdb"]["environment"], services["grafana"]["environment"], \
        services["postgres"]["environment"]
    assert influx["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"] == grafana["INFLUX_TOKEN"] == "tok-123"
    assert pg["POSTGRES_PASSWORD"] == grafana["POSTGRES_PASSWORD"] == "pw-456"
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == "gr-789"
    for name in ("gateway-collector", "gateway-api"):
        gw = services[name]["environment"]
        assert gw["INFLUX_TOKEN"] == "tok-123"
        assert gw["GATEWAY_SECRET_KEY"] == "s" * 32
        assert gw["GATEWAY_DATABASE_URL"] == "postgresql+psycopg://gateway:pw-456@postgres:5432/gateway"
        assert services[name]["depends_on"] == {"influxdb": {"condition": "service_healthy"},
                                                "postgres": {"condition": "service_healthy"}}
    api_ports = services["gateway-api"]["ports"]
    assert any("18080" in str(p) for p in api_ports), api_ports
    assert "ports" not in services["gateway-collector"]  # scraped and checked on the compose network only


def _mounts(service: dict) -> list[tuple[Path, str]]:
    out = []
    for v in service.get("volumes", []):
        source, target = (v["source"], v["target"]) if isinstance(v, dict) else v.split(":")[:2]
        if source.startswith("/"):
            out.append((Path(source), target))
    return out


def test_every_mounted_file_exists_and_the_gateway_configs_pass_check_config(monkeypatch):
    services = compose_config({})[0]["services"]
    for name, service in services.items():
        for source, _ in _mounts(service):
            assert source.exists(), f"{name} mounts {source}, which is not in the repository"
    for name in ("gateway-collector", "gateway-api"):
        service = services[name]
        (config,) = [s for s, t in _mounts(service) if t == "/etc/energy-gateway/gateway.toml"]
        assert service["command"] == ["run", "--config", "/etc/energy-gateway/gateway.toml"]
        for key, value in service["environment"].items():
            monkeypatch.setenv(key, value)
        result = CliRunner().invoke(app, ["check-config", "--config", str(config)])
        assert result.exit_code == 0, result.output
        text = config.read_text()
        # The data folder is the service's volume and the API listens where the healthcheck and ports look.
        assert 'data_dir = "/var/lib/energy-gateway"' in text
        targets = [v["target"] if isinstance(v, dict) else v.split(":")[1] for v in service["volumes"]]
        assert "/var/lib/energy-gateway" in targets
        assert 'host = "0.0.0.0"\nport = 8080' in text
        assert "http://127.0.0.1:8080/health" in " ".join(service["healthcheck"]["test"])
    collector = (DEPLOY / "docker" / "collector.toml").read_text()
    api = (DEPLOY / "docker" / "api.toml").read_text()
    assert "run_scheduler = false" in collector
    assert "run_scheduler = true" in api
    assert "[[devices]]" in collector
    assert "[[devices]]" in api  # the API role knows the meters and devices ...
    assert tomllib.loads(api)["gateway"]["collect"] is False  # ... and polls none of them


def _dockerfile_stages(text: str) -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), split by FROM."""
    joined = re.sub(r"\\\n", " ", text)
    lines = [ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    stages: list[list[str]] = []
    for ln in lines:
        if ln.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(ln)
    return stages


def test_dockerfile_is_multi_stage_non_root_with_a_health_check():
    stages = _dockerfile_stages((DEPLOY / "Dockerfile").read_text())
    assert len(stages) >= 2
    final = stages[-1]
    users = [ln.split()[1] for ln in final if ln.upper().startswith("USER ")]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    (health,) = [ln for ln in final if ln.upper().startswith("HEALTHCHECK ")]
    assert "/health" in " ".join(final)
    assert "CMD" in health
    assert any(ln.startswith("COPY --from=build ") for ln in final)
    assert not any("pip install" in ln for ln in final), "the run stage installs nothing (no network at run time)"


def test_dockerfile_copies_only_what_exists_and_its_ignore_file_lets_through():
    stages = _dockerfile_stages((DEPLOY / "Dockerfile").read_text())
    ignore = [ln.strip() for ln in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
              if ln.strip() and not ln.startswith("#")]

    def included(path: str) -> bool:
        keep = True
        for pattern in ignore:
            negate = pattern.startswith("!")
            pat = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, pat) or path.startswith(pat + "/"):
                keep = negate
        return keep

    sources = []
    for stage in stages:
        for ln in stage:
            if ln.startswith("COPY ") and "--from=" not in ln:
                sources += ln.split()[1:-1]
    assert sources
    for src in sources:
        assert (REPO / src).exists(), src
        assert included(src), f"{src} is excluded by Dockerfile.dockerignore"
    assert not included(".venv")
    assert not included("tests")


@pytest.fixture(scope="module")
def running_api(tmp_path_factory):
    os.environ.setdefault("GATEWAY_SECRET_KEY", "test-secret-key-0123456789abcdef")
    world = build_world(tmp_path_factory.mktemp("composeworld"))
    with RunningApi(world.gw) as api:
        yield api


def test_the_health_check_commands_pass_on_a_live_gateway_and_fail_on_a_dead_one(running_api):
    # The compose healthcheck and the image's, run as written, with the URL pointed at a real gateway on loopback.
    compose = compose_config({})[0]["services"]["gateway-api"]["healthcheck"]["test"]
    assert compose[:3] == ["CMD", "python", "-c"]
    code = compose[3]
    live = code.replace("http://127.0.0.1:8080", running_api.url)
    assert subprocess.run([sys.executable, "-c", live], check=False, capture_output=True).returncode == 0
    dead = code.replace("127.0.0.1:8080", f"127.0.0.1:{_closed_port()}")
    assert subprocess.run([sys.executable, "-c", dead], check=False, capture_output=True).returncode != 0

    image = re.search(r'CMD \["python", "-c", "(.+?)"\]', (DEPLOY / "Dockerfile").read_text())
    assert image is not None
    env = {**os.environ, "GATEWAY_HEALTH_URL": running_api.url + "/health"}
    assert subprocess.run([sys.executable, "-c", image.group(1)], env=env, check=False).returncode == 0
    env["GATEWAY_HEALTH_URL"] = f"http://127.0.0.1:{_closed_port()}/health"
    assert subprocess.run([sys.executable, "-c", image.group(1)], env=env, check=False,
                          capture_output=True).returncode != 0


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nothing listens there
