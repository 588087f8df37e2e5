"""An engineer limited to named sites reaches only those sites' data: sites, series, meters, devices, customers;
everything else answers 404 as for an id that does not exist. The limit changes at once, and is audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from gateway.auth import AuthError
from gateway.auth.models import AuditEvent
from tests.gateway.api.world import PASSWORD, World, token_for


@pytest.fixture(scope="module")
def limited(world: World) -> str:
    from gateway.web import auth_service

    auth_service(world.gw).add_user("eng-acme", PASSWORD, "engineer", sites=["acme-site"], actor="test")
    return "eng-acme"


def _get(client: TestClient, user: str, url: str) -> Any:
    return client.get(url, headers=token_for(client, user))


@pytest.mark.parametrize(("url", "status"), [
    ("/api/v1/sites/acme-site", 200),
    ("/api/v1/sites/beta-site", 404),
    ("/api/v1/meters/acme-m1", 200),
    ("/api/v1/meters/gamma-m1", 404),
    ("/api/v1/devices/acme-dev", 200),
    ("/api/v1/devices/acme-dev/points", 200),
    ("/api/v1/devices/beta-dev", 404),
    ("/api/v1/devices/beta-dev/live", 404),
    ("/api/v1/customers/acme", 200),
    ("/api/v1/customers/beta", 404),
    ("/api/v1/customers/gamma/day-curve", 404),
])
def test_a_limited_engineer_reaches_its_sites_only(client: TestClient, limited: str, url: str, status: int) -> None:
    r = _get(client, limited, url)
    assert r.status_code == status, r.text
    if status == 404:
        assert r.json()["error"]["code"] == "not_found"


def test_series_of_its_site_and_not_of_another(client: TestClient, world: World, limited: str) -> None:
    day = world.today["acme"]
    q = f"?start={day}&end={day}&freq=1h"
    assert _get(client, limited, f"/api/v1/sites/acme-site/series{q}").status_code == 200
    assert _get(client, limited, f"/api/v1/sites/beta-site/series{q}").status_code == 404
    assert _get(client, limited, f"/api/v1/meters/beta-m1/series{q}").status_code == 404


def test_lists_show_the_customers_owning_its_sites(client: TestClient, limited: str) -> None:
    customers = _get(client, limited, "/api/v1/customers").json()["items"]
    assert [c["id"] for c in customers] == ["acme"]
    sites = _get(client, limited, "/api/v1/sites").json()["items"]
    assert [s["id"] for s in sites] == ["acme-site"]
    me = _get(client, limited, "/api/v1/auth/me").json()
    assert me["customers"] == ["acme"]


def test_meter_device_and_health_lists_hold_its_sites_only(client: TestClient, limited: str) -> None:
    meters = {m["id"] for m in _get(client, limited, "/api/v1/meters?limit=500").json()["items"]}
    assert meters
    assert all(m.startswith("acme-") for m in meters)
    devices = [d["name"] for d in _get(client, limited, "/api/v1/devices").json()["items"]]
    assert devices == ["acme-dev"]
    assert {h["device"] for h in _get(client, limited, "/api/v1/devices/health").json()} <= {"acme-dev"}
    everyone = {d["name"] for d in _get(client, "eng", "/api/v1/devices").json()["items"]}
    assert {"acme-dev", "beta-dev", "gamma-dev"} <= everyone


def test_the_device_tools_are_refused_to_a_limited_engineer(client: TestClient, limited: str) -> None:
    r = client.post("/api/v1/devices/probe", headers=token_for(client, limited),
                    json={"host": "127.0.0.1", "port": 1, "unit": 1, "address": 0, "count": 1})
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "limited_to_sites"
    r = _get(client, limited, "/api/v1/devices/opcua/browse?url=opc.tcp://127.0.0.1:1")
    assert r.status_code == 403, r.text


def test_an_engineer_without_sites_still_sees_every_site(client: TestClient) -> None:
    assert _get(client, "eng", "/api/v1/sites/beta-site").status_code == 200
    assert _get(client, "eng", "/api/v1/devices/gamma-dev").status_code == 200


def test_changing_the_sites_takes_effect_at_once_and_is_audited(client: TestClient, world: World) -> None:
    from gateway.web import auth_service

    auth = auth_service(world.gw)
    auth.add_user("eng-move", PASSWORD, "engineer", sites=["acme-site"], actor="test")
    headers = token_for(client, "eng-move")
    assert client.get("/api/v1/sites/beta-site", headers=headers).status_code == 404
    auth.set_sites("eng-move", ["beta-site"], actor="admin")
    assert client.get("/api/v1/sites/beta-site", headers=headers).status_code == 200
    assert client.get("/api/v1/sites/acme-site", headers=headers).status_code == 404
    assert auth.sites_of("eng-move") == ["beta-site"]
    auth.set_sites("eng-move", [], actor="admin")
    assert client.get("/api/v1/sites/acme-site", headers=headers).status_code == 200, "no sites: no limit"
    with world.gw.db() as s:
        details = list(s.scalars(select(AuditEvent.detail).where(AuditEvent.action == "user.sites",
                                                                 AuditEvent.target == "eng-move")
                                 .order_by(AuditEvent.id)))
    assert details == ["beta-site", "(every site)"]


def test_unknown_sites_and_sites_for_other_roles_are_refused(world: World) -> None:
    from gateway.web import auth_service

    auth = auth_service(world.gw)
    with pytest.raises(AuthError, match="unknown site 'nowhere'"):
        auth.add_user("eng-nowhere", PASSWORD, "engineer", sites=["nowhere"])
    with pytest.raises(AuthError, match="only engineers are limited to sites, not customer"):
        auth.add_user("cust-site", PASSWORD, "customer", customer="acme", sites=["acme-site"])
    with pytest.raises(AuthError, match="only engineers"):
        auth.set_sites("cust-acme", ["acme-site"])
    assert "eng-nowhere" not in {u.username for u in auth.list_users()}


def test_the_cli_adds_and_changes_an_engineers_sites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from gateway.cli import app as cli

    cfg = tmp_path / "gateway.toml"
    cfg.write_text(f'[gateway]\ndata_dir = "{tmp_path / "state"}"\nenvironment = "development"\n'
                   '[[customers]]\nid = "plant"\nname = "Plant"\n'
                   '[[sites]]\nid = "plant-1"\ncustomer = "plant"\n[[sites]]\nid = "plant-2"\ncustomer = "plant"\n')
    monkeypatch.setenv("ENG_PW", PASSWORD)
    runner = CliRunner()
    r = runner.invoke(cli, ["users", "add", "--config", str(cfg), "eng-1", "--role", "engineer",
                            "--site", "plant-1", "--site", "plant-2", "--password-env", "ENG_PW"])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["sites"] == ["plant-1", "plant-2"]
    r = runner.invoke(cli, ["users", "sites", "--config", str(cfg), "eng-1", "--set", "plant-2"])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout) == {"username": "eng-1", "sites": ["plant-2"]}
    r = runner.invoke(cli, ["users", "sites", "--config", str(cfg), "eng-1", "--set", "plant-9"])
    assert r.exit_code == 2
    assert "unknown site 'plant-9'" in r.stderr
    r = runner.invoke(cli, ["users", "list", "--config", str(cfg)])
    assert [json.loads(line)["sites"] for line in r.stdout.splitlines()] == [["plant-2"]]
