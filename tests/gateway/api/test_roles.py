"""One role rule for the API and the portal: for every role and capability both surfaces answer alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from crm_bridge.alerts import raise_alert
from crm_bridge.desk import create_ticket
from gateway.api.roles import GRANTS, Capability, Role, allowed, capabilities_of
from gateway.usecases import MONEY_FIELDS
from tests.gateway.api.world import PASSWORD, World, token_for

USERS = ("admin", "eng", "mgr-a", "cust-acme")  # one of each role; all of them see acme


@dataclass
class Objects:
    """An alert and a ticket of acme made for this module, so the checks below change nothing others rely on."""

    alert: int
    ticket: int


@pytest.fixture(scope="module")
def objects(world: World) -> Objects:
    now = datetime.now(UTC)
    with world.gw.db() as s:
        a = raise_alert(s, key="roles:acme", type="threshold", severity="warning", customer_code="acme",
                        meter_code="acme-m1", window_start=now - timedelta(hours=1), window_end=now,
                        message="roles test", now=now)
        assert a is not None
        t = create_ticket(s, "acme", "request", "other", "roles test", now, owner_code="am-a")
        s.commit()
        return Objects(a.id, t.id)


class Portal:
    """A browser-like session: logged in through the login form, posting forms with the session's CSRF token."""

    def __init__(self, client: TestClient, username: str) -> None:
        self.c = TestClient(client.app)
        token = self.c.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
        r = self.c.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token},
                        follow_redirects=False)
        assert r.status_code == 303, r.text
        self.csrf = self.c.get("/portal/accounts").text.split('name="csrf_token" value="')[1].split('"')[0]

    def get(self, path: str) -> Any:
        return self.c.get(path, follow_redirects=False)

    def post(self, path: str, **form: str) -> Any:
        return self.c.post(path, data={"csrf_token": self.csrf, **form}, follow_redirects=False)


def api_checks(world: World, o: Objects) -> list[tuple[Capability, str, str, dict[str, Any] | None]]:
    """A route of each capability; where allowed, none may answer 403 (409: allowed, but not in this state)."""
    day, month = world.today["acme"], world.today["acme"][:7]
    c = "/api/v1/customers/acme"
    return [
        (Capability.METERED_DATA, "GET", f"{c}/day-curve?date={day}", None),
        (Capability.METERED_DATA, "GET", f"{c}/month?month={month}", None),
        (Capability.METERED_DATA, "GET", f"{c}/export?start={day}&end={day}", None),
        (Capability.METERED_DATA, "GET", "/api/v1/alerts", None),
        (Capability.MONEY, "GET", f"{c}/advice", None),
        (Capability.MONEY, "GET", f"{c}/services?month={month}", None),
        (Capability.REPORTS, "GET", f"{c}/report?month={month}", None),
        (Capability.CONTRACTS, "GET", f"{c}/contract", None),
        (Capability.TICKETS, "GET", "/api/v1/tickets", None),
        (Capability.TICKETS, "GET", f"/api/v1/tickets/{o.ticket}", None),
        (Capability.TICKETS, "POST", "/api/v1/tickets", {"customer": "acme", "kind": "nonsense", "category": "x",
                                                        "title": "x"}),
        (Capability.TICKET_DESK, "POST", f"/api/v1/tickets/{o.ticket}/transition", {"to": "resolved"}),
        (Capability.TICKET_DESK, "POST", f"/api/v1/alerts/{o.alert}/ticket", None),
        (Capability.ALERT_ACKNOWLEDGE, "POST", f"/api/v1/alerts/{o.alert}/acknowledge", None),
        (Capability.ALERT_RESOLVE, "POST", f"/api/v1/alerts/{o.alert}/resolve", None),
        (Capability.CUSTOMER_FILE, "GET", f"{c}/file", None),
        (Capability.CUSTOMER_FILE, "GET", "/api/v1/portfolio", None),
        (Capability.TARIFFS, "GET", "/api/v1/tariffs", None),
        (Capability.DEVICES, "GET", "/api/v1/devices", None),
        (Capability.USERS, "GET", "/api/v1/users", None),
    ]


def portal_checks(world: World, o: Objects) -> list[tuple[Capability, str, str, dict[str, str]]]:
    day, month = world.today["acme"], world.today["acme"][:7]
    c = "/portal/c/acme"
    return [
        (Capability.METERED_DATA, "GET", f"{c}/day?date={day}", {}),
        (Capability.METERED_DATA, "GET", f"{c}/month?month={month}", {}),
        (Capability.METERED_DATA, "GET", f"{c}/alerts", {}),
        (Capability.METERED_DATA, "GET", f"{c}/downloads", {}),
        (Capability.METERED_DATA, "GET", "/portal/accounts", {}),
        (Capability.MONEY, "GET", f"{c}/advice", {}),
        (Capability.TICKETS, "GET", f"{c}/requests", {}),
        (Capability.TICKETS, "GET", f"{c}/requests/{o.ticket}", {}),
        # An invalid kind: refused (403) before the form is read, or rejected (422) after; nothing is opened.
        (Capability.TICKETS, "POST", f"{c}/requests", {"kind": "nonsense", "category": "x", "title": "x"}),
        (Capability.TICKETS, "POST", f"{c}/requests/{o.ticket}/rate", {"satisfaction": "5"}),
        (Capability.TICKET_DESK, "GET", "/portal/queue", {}),
        (Capability.TICKET_DESK, "POST", f"/portal/queue/{o.ticket}/move", {"to": "resolved"}),
        (Capability.ALERT_ACKNOWLEDGE, "POST", f"{c}/alerts/{o.alert}/ack", {}),
    ]


def test_every_capability_has_its_roles_and_the_admin_holds_all():
    assert set(GRANTS) == set(Capability)
    assert capabilities_of("admin") == frozenset(Capability)
    assert capabilities_of("nobody") == frozenset()
    assert capabilities_of("engineer") == {Capability.METERED_DATA, Capability.DEVICES, Capability.TARIFFS,
                                           Capability.ALERT_RESOLVE}


@pytest.mark.parametrize("username", USERS)
def test_the_api_and_the_portal_refuse_exactly_what_the_role_lacks(client, world, objects, username):
    role = world.logins[username]["role"]
    headers = token_for(client, username)
    wrong = []
    for capability, method, url, body in api_checks(world, objects):
        r = client.request(method, url, headers=headers, json=body)
        if (r.status_code == 403) == allowed(role, capability) or r.status_code in (401, 404, 500):
            wrong.append(f"API {method} {url} ({capability.value}) -> {r.status_code}: {r.text[:200]}")
    portal = Portal(client, username)
    for capability, method, url, form in portal_checks(world, objects):
        r = portal.get(url) if method == "GET" else portal.post(url, **form)
        if (r.status_code == 403) == allowed(role, capability) or r.status_code in (401, 404, 500):
            wrong.append(f"portal {method} {url} ({capability.value}) -> {r.status_code}: {r.text[:200]}")
    assert not wrong, f"{username} ({role}):\n" + "\n".join(wrong)


@pytest.mark.parametrize("username", USERS)
def test_pages_show_only_links_and_forms_the_role_may_use(client, world, objects, username):
    role = world.logins[username]["role"]
    portal = Portal(client, username)
    day = portal.get(f"/portal/c/acme/day?date={world.today['acme']}").text
    assert ('id="nav-advice"' in day) == allowed(role, Capability.MONEY)
    assert ('id="nav-requests"' in day) == allowed(role, Capability.TICKETS)
    assert ('id="nav-queue"' in day) == allowed(role, Capability.TICKET_DESK)
    for always in ("nav-day", "nav-month", "nav-alerts", "nav-downloads"):
        assert f'id="{always}"' in day
    downloads = portal.get("/portal/c/acme/downloads").text
    assert ('id="dl-report"' in downloads) == allowed(role, Capability.REPORTS)
    assert 'id="dl-csv"' in downloads
    with world.gw.db() as s:
        now = datetime.now(UTC)
        a = raise_alert(s, key=f"roles:form:{username}", type="threshold", severity="warning", customer_code="acme",
                        meter_code="acme-m1", window_start=now - timedelta(hours=1), window_end=now,
                        message="an open alert", now=now)
        assert a is not None
        s.commit()
        aid = a.id
    alerts = portal.get("/portal/c/acme/alerts").text
    assert (f'/alerts/{aid}/ack"' in alerts) == allowed(role, Capability.ALERT_ACKNOWLEDGE)


@pytest.mark.parametrize("username", USERS)
def test_month_money_is_shown_on_both_surfaces_or_on_neither(client, world, username):
    role = world.logins[username]["role"]
    month = world.today["acme"][:7]
    view = client.get(f"/api/v1/customers/acme/month?month={month}", headers=token_for(client, username)).json()
    page = Portal(client, username).get(f"/portal/c/acme/month?month={month}").text
    assert all(view[k] for k in ("kwh", "peak_kw", "pf", "load_factor", "daily")), "the metered figures"
    assert all(f'id="{x}"' in page for x in ("month-kwh", "month-peak"))
    money_on_page = [x for x in ('id="tou"', 'id="basic"', "CNY") if x in page]
    if allowed(role, Capability.MONEY):
        assert all(view[k] is not None for k in MONEY_FIELDS)
        assert money_on_page == ['id="tou"', 'id="basic"', "CNY"]
    else:
        assert not set(MONEY_FIELDS) & view.keys(), "no money in the API's month view"
        assert money_on_page == []


def test_the_engineer_reads_every_customers_curve_but_no_tickets(client, world):
    headers = token_for(client, "eng")
    for cid in world.today:
        r = client.get(f"/api/v1/customers/{cid}/day-curve", params={"date": world.today[cid]}, headers=headers)
        assert r.status_code == 200
        assert len(r.json()["points"]) == 96
    for method, url in (("GET", "/api/v1/tickets"), ("GET", f"/api/v1/tickets/{world.tickets['beta']}"),
                        ("POST", "/api/v1/tickets")):
        r = client.request(method, url, headers=headers,
                           json={"customer": "beta", "category": "billing", "title": "x"} if method == "POST" else None)
        assert r.status_code == 403, url
        assert r.json()["error"]["code"] == "forbidden"
    portal = Portal(client, "eng")
    assert portal.get(f"/portal/c/beta/day?date={world.today['beta']}").status_code == 200
    assert portal.get("/portal/c/beta/requests").status_code == 403
    assert portal.get(f"/portal/c/beta/requests/{world.tickets['beta']}").status_code == 403
    assert portal.get("/portal/queue").status_code == 403
    r = portal.post("/portal/c/beta/requests", kind="request", category="billing", title="opened in beta's name")
    assert r.status_code == 403
    assert "opened in beta's name" not in str(client.get("/api/v1/tickets", params={"customer": "beta"},
                                                          headers=token_for(client, "mgr-b")).json())


def test_roles_are_the_users_roles():
    from gateway.auth import ROLES

    assert set(Role) == set(ROLES)
    assert all(set(roles) <= set(Role) for roles in GRANTS.values())
