"""Logins: argon2 hashes, bearer tokens, rate limit, disabled users, audit, and the users CLI."""

from __future__ import annotations

import json

from sqlalchemy import select
from typer.testing import CliRunner

from gateway.auth import AuditEvent, User
from gateway.cli import app as cli
from tests.gateway.api.world import PASSWORD, token_for


def test_passwords_are_argon2_hashes(world):
    with world.gw.db() as s:
        hashes = list(s.scalars(select(User.password_hash)))
    assert hashes
    assert all(h.startswith("$argon2id$") for h in hashes)
    assert all(PASSWORD not in h for h in hashes)


def test_token_flow_and_error_bodies(client):
    r = client.post("/api/v1/auth/token", data={"username": "cust-beta", "password": "wrong-password-1"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    assert client.get("/api/v1/customers").status_code == 401
    r = client.get("/api/v1/customers", headers={"Authorization": "Bearer forged.token.value"})
    assert r.status_code == 401
    assert "invalid" in r.json()["error"]["message"]
    me = client.get("/api/v1/auth/me", headers=token_for(client, "cust-beta")).json()
    assert me == {"username": "cust-beta", "role": "customer", "customer": "beta", "manager": None,
                  "customers": ["beta"]}


def test_logins_are_rate_limited_and_audited(client, world):
    auth = world.gw.auth
    auth.add_user("victim", PASSWORD, "engineer")
    for _ in range(5):
        assert client.post("/api/v1/auth/token", data={"username": "victim", "password": "guess-guess-1"}
                           ).status_code == 401
    r = client.post("/api/v1/auth/token", data={"username": "victim", "password": PASSWORD})
    assert r.status_code == 429, "even the right password is refused while the limit holds"
    assert int(r.headers["Retry-After"]) > 0
    with world.gw.db() as s:
        failed = s.scalars(select(AuditEvent).where(AuditEvent.action == "login.failed",
                                                    AuditEvent.target == "victim")).all()
    assert len(failed) == 5


def test_a_disabled_user_loses_its_tokens_at_once(client, world):
    auth = world.gw.auth
    auth.add_user("leaver", PASSWORD, "engineer")
    headers = token_for(client, "leaver")
    assert client.get("/api/v1/devices", headers=headers).status_code == 200
    auth.disable_user("leaver")
    assert client.get("/api/v1/devices", headers=headers).status_code == 401
    assert client.post("/api/v1/auth/token", data={"username": "leaver", "password": PASSWORD}).status_code == 401


def test_changes_are_audited(client, world):
    headers = token_for(client, "cust-gamma")
    r = client.post("/api/v1/tickets", headers=headers, json={"category": "metering", "title": "meter seal"})
    assert r.status_code == 201
    audit = client.get("/api/v1/audit", headers=token_for(client, "admin")).json()["items"]
    assert any(a["action"] == "ticket.open" and a["actor"] == "cust-gamma" for a in audit)
    assert client.get("/api/v1/audit", headers=headers).status_code == 403


def test_users_cli_add_list_disable(tmp_path, monkeypatch):
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(f'[gateway]\ndata_dir = "{tmp_path}"\nenvironment = "development"\n'
                   '[[customers]]\nid = "acme"\n')
    monkeypatch.setenv("NEW_PW", "a-long-enough-password")
    runner = CliRunner()
    r = runner.invoke(cli, ["users", "add", "--config", str(cfg), "ops", "--role", "engineer",
                            "--password-env", "NEW_PW"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["users", "add", "--config", str(cfg), "c1", "--role", "customer", "--customer", "nope",
                            "--password-env", "NEW_PW"])
    assert r.exit_code == 2
    assert "unknown customer 'nope'" in r.output
    r = runner.invoke(cli, ["users", "add", "--config", str(cfg), "c1", "--role", "customer", "--customer", "acme"])
    assert r.exit_code == 0
    generated = json.loads(r.output)["password"]
    assert len(generated) >= 12
    r = runner.invoke(cli, ["users", "disable", "--config", str(cfg), "ops"])
    assert r.exit_code == 0
    listing = runner.invoke(cli, ["users", "list", "--config", str(cfg)]).output
    rows = [json.loads(line) for line in listing.splitlines()]
    assert {(u["username"], u["disabled"]) for u in rows} == {("ops", True), ("c1", False)}


def test_metrics_count_requests_by_route_template_and_logins(client):
    client.get("/api/v1/customers/acme", headers=token_for(client, "cust-acme"))
    client.post("/api/v1/auth/token", data={"username": "cust-acme", "password": "not-the-password"})
    text = client.get("/metrics").text
    assert 'route="/api/v1/customers/{customer_id}"' in text
    assert 'route="/api/v1/customers/acme"' not in text
    assert 'gateway_logins_total{outcome="failure"}' in text
    assert 'gateway_logins_total{outcome="success"}' in text


def test_the_login_limit_holds_across_processes_sharing_the_database(world):
    import pytest

    from gateway.auth import AuthError, AuthService, LoginRateLimited

    first = world.gw.auth
    second = AuthService(world.gw.db, "another-process-key-0123456789")  # a second API process, same database
    first.add_user("shared-victim", PASSWORD, "engineer")
    for _ in range(5):
        with pytest.raises(AuthError):
            first.authenticate("shared-victim", "nope-nope-nope", client="10.0.0.1")
    with pytest.raises(LoginRateLimited):
        second.authenticate("shared-victim", PASSWORD, client="10.0.0.2")
