"""The notifications API on a real gateway: records, dead letters and replay for admins, own preferences.

The replay goes to a real webhook receiver that fails, then recovers; other roles get 403.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from crm_bridge.alerts import raise_alert
from crm_bridge.registry.models import AccountManager, Customer, ManagerAssignment
from gateway.config import load_config
from gateway.jobs import register_jobs
from gateway.notifications import install_notifications
from gateway.runtime import Gateway
from tests.crm_bridge.notify.receivers import HttpReceiver

PASSWORD = "correct-horse-battery"  # noqa: S105 - test users only
SECRET = "crm-hook-secret"


def _config(data_dir: Path, hook_url: str) -> str:
    return f"""
[gateway]
data_dir = "{data_dir}"
environment = "development"
run_scheduler = false

[api]
host = "127.0.0.1"
port = 0
warm_days = 0

[[customers]]
id = "acme"
name = "Acme Works"

[[customers]]
id = "beta"
language = "en"

[notify.channels.crm]
type = "webhook"
url = "{hook_url}"
secret_env = "CRM_SECRET"
events = ["alert.opened"]

[notify.channels.mail]
type = "email"
host = "127.0.0.1"
port = 9
security = "none"
sender = "alerts@utility.example"

[notify.retry]
attempts = 2
backoff_s = 0
"""


class Api:
    def __init__(self, gw: Gateway, client: TestClient, rx: HttpReceiver) -> None:
        self.gw, self.client, self.rx = gw, client, rx

    def login(self, username: str) -> dict[str, str]:
        r = self.client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    # The receiver refuses the first two deliveries (both attempts), then takes everything.
    with HttpReceiver("webhook", SECRET, script=[(503, None), (503, None)]) as rx:
        (tmp_path / "gateway.toml").write_text(_config(tmp_path / "state", rx.url))
        environ = {**os.environ, "CRM_SECRET": SECRET}  # check-config refuses a channel whose secret is not set
        gw = Gateway.from_config(load_config(tmp_path / "gateway.toml", environ=environ))
        install_notifications(gw, environ=environ)
        register_jobs(gw)
        from gateway.api.routers import notifications
        from gateway.web import auth_service, create_app

        with gw.db() as s:
            m = AccountManager(code="am-a", name="Wang", email="wang@utility.example")
            s.add(m)
            s.flush()
            s.add(ManagerAssignment(manager_id=m.id, customer_id=s.scalars(
                select(Customer.id).where(Customer.code == "acme")).one()))
            s.commit()
        auth = auth_service(gw)
        for username, role, customer, manager in (("admin", "admin", None, None), ("eng", "engineer", None, None),
                                                  ("mgr-a", "account_manager", None, "am-a"),
                                                  ("cust-acme", "customer", "acme", None)):
            auth.add_user(username, PASSWORD, role, customer=customer, manager=manager)
        app = create_app(gw)
        if not any(getattr(r, "path", "").startswith("/api/v1/notifications") for r in app.routes):
            app.include_router(notifications.router)  # until gateway/web.py registers it
        yield Api(gw, TestClient(app), rx)


def _alert(api: Api, key: str) -> None:
    now = datetime.now(UTC)
    with api.gw.db() as s:
        raise_alert(s, key=key, type="demand_watch", severity="critical", customer_code="acme", meter_code=None,
                    window_start=now, window_end=now, message="acme: 6,694 kW projected", now=now)
        s.commit()


def test_admin_lists_records_replays_a_dead_letter_and_the_receiver_gets_it(api: Api) -> None:
    admin = api.login("admin")
    _alert(api, "a1")
    api.gw.scheduler.run_now("notify_send")
    api.gw.scheduler.run_now("notify_send")  # second and last attempt (no backoff in this config)
    r = api.client.get("/api/v1/notifications", params={"channel": "crm"}, headers=admin)
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["total"] == 1
    [rec] = page["items"]
    assert (rec["event"], rec["recipient"], rec["status"], rec["attempts"]) == (
        "alert.opened", "channel:crm", "failed", 2)
    assert "HTTP 503" in rec["error"]
    failed_mail = api.client.get("/api/v1/notifications", params={"status": "failed", "channel": "mail"},
                                 headers=admin).json()
    # The manager (the registry's address, port 9 refuses) and the customer (no address) fail, each with its reason.
    reasons = {i["recipient"]: i["error"] for i in failed_mail["items"]}
    assert reasons["cust-acme"] == "user cust-acme has no e-mail address (set it in the notification preferences)"
    assert "SMTP 127.0.0.1:9" in reasons["mgr-a"]

    letters = api.client.get("/api/v1/notifications/dead-letters", headers=admin).json()
    crm = [d for d in letters["items"] if d["notification_id"] == rec["id"]]
    assert len(crm) == 1
    assert crm[0]["url"] == api.rx.url
    assert crm[0]["replays"] == []
    dl = crm[0]["id"]
    r = api.client.post(f"/api/v1/notifications/dead-letters/{dl}/replay", headers=admin)
    assert r.status_code == 202, r.text
    replay_id = r.json()["notification_id"]
    again = api.client.post(f"/api/v1/notifications/dead-letters/{dl}/replay", headers=admin)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "not_replayable"
    api.gw.scheduler.run_now("notify_send")
    hits = api.rx.wait_for(3)
    assert hits[-1].signed_ok
    assert hits[-1].json()["event"] == "alert.opened"
    [replayed] = api.client.get("/api/v1/notifications", params={"channel": "crm", "status": "delivered"},
                                headers=admin).json()["items"]
    assert replayed["id"] == replay_id
    assert replayed["replay_of"] == dl
    letters = api.client.get("/api/v1/notifications/dead-letters", headers=admin).json()
    assert next(d for d in letters["items"] if d["id"] == dl)["replays"] == [replay_id]
    assert api.client.post("/api/v1/notifications/dead-letters/999999/replay", headers=admin).status_code == 404


@pytest.mark.parametrize("username", ["eng", "mgr-a", "cust-acme"])
def test_only_admins_see_records_and_dead_letters(api: Api, username: str) -> None:
    headers = api.login(username)
    assert api.client.get("/api/v1/notifications", headers=headers).status_code == 403
    assert api.client.get("/api/v1/notifications/dead-letters", headers=headers).status_code == 403
    assert api.client.post("/api/v1/notifications/dead-letters/1/replay", headers=headers).status_code == 403
    assert api.client.get("/api/v1/notifications").status_code == 401


def test_a_user_sets_its_own_preferences_and_they_take_effect(api: Api) -> None:
    headers = api.login("cust-acme")
    r = api.client.get("/api/v1/notifications/preferences", headers=headers)
    assert r.status_code == 200
    body = r.json()
    assert body["events"] is None
    assert body["effective_events"] == [
        "alert.opened", "alert.resolved", "threshold.crossed", "report.ready"]
    assert "alert.escalated" not in body["available_events"]  # internal to the utility
    assert body["effective_channels"] == ["mail"]
    assert body["available_channels"] == ["crm", "mail"]
    new: dict[str, Any] = {"email": "ops@acme.example", "events": ["alert.resolved"], "quiet_hours": "22:00-07:00",
                           "timezone": "Asia/Shanghai", "digest": False}
    r = api.client.put("/api/v1/notifications/preferences", json=new, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["quiet_hours"] == "22:00-07:00"
    assert r.json()["effective_events"] == ["alert.resolved"]
    assert api.client.get("/api/v1/notifications/preferences", headers=headers).json()["email"] == "ops@acme.example"
    _alert(api, "a2")  # alert.opened: no longer wanted by cust-acme
    admin = api.login("admin")
    items = api.client.get("/api/v1/notifications", params={"recipient": "cust-acme"}, headers=admin).json()
    assert items["total"] == 0
    # Another user's settings are its own.
    mgr = api.client.get("/api/v1/notifications/preferences", headers=api.login("mgr-a")).json()
    assert mgr["email"] is None
    assert "alert.escalated" in mgr["effective_events"]


@pytest.mark.parametrize(("body", "field"), [
    ({"events": ["alert.escalated"]}, "events[0]"),
    ({"events": ["nope"]}, "events[0]"),
    ({"channels": ["sms"]}, "channels[0]"),
    ({"quiet_hours": "22-7"}, "quiet_hours"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
])
def test_bad_preferences_are_refused_naming_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    r = api.client.put("/api/v1/notifications/preferences", json=body, headers=api.login("cust-acme"))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["message"].startswith(field)


def test_unknown_keys_and_bad_addresses_are_refused(api: Api) -> None:
    headers = api.login("mgr-a")
    assert api.client.put("/api/v1/notifications/preferences", json={"emial": "x@y.z"},
                          headers=headers).status_code == 422
    assert api.client.put("/api/v1/notifications/preferences", json={"email": "not an address"},
                          headers=headers).status_code == 422


def test_no_5xx_and_answers_match_the_spec_under_fuzzing(api: Api) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import response_schema_conformance

    _alert(api, "fuzz")
    api.gw.scheduler.run_now("notify_send")
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    operations = [r.ok() for r in schema.get_all_operations()]
    ours = [op for op in operations if op.path.startswith("/api/v1/notifications")]
    assert len(ours) == 5
    headers = [api.login(u) for u in ("admin", "cust-acme")]
    calls = 0
    for op in ours:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=op.as_strategy(mode))
            @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                      database=None)
            def run(case: schemathesis.Case) -> None:
                nonlocal calls
                for h in headers:
                    response = case.call(headers={**(case.headers or {}), **h})
                    calls += 1
                    assert response.status_code < 500, (
                        f"{case.method} {case.formatted_path} {case.query} {case.body!r}: {response.status_code} "
                        f"{response.text[:300]}")
                    if response.status_code >= 400:
                        assert "error" in response.json()
                    case.validate_response(response, checks=[response_schema_conformance])

            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, f"{op.method} {op.path}: no valid request"
    assert calls >= 2 * len(ours)
