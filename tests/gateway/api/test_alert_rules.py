"""A customer's own alert limits through the API.

Read, replace, validation naming the field, scope, and the alerts job firing a threshold alert on a crossed limit.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.gateway.api.world import World, token_for


@pytest.fixture(scope="module")
def rules_client(world: World) -> TestClient:
    # gateway/web.py includes the router once the lead adds it there; until then the test includes it itself.
    from gateway.api.routers import alert_rules
    from gateway.web import create_app

    app = create_app(world.gw)
    if not any(getattr(r, "path", "") == "/api/v1/customers/{customer_id}/alert-rules" for r in app.routes):
        app.include_router(alert_rules.router)
    return TestClient(app)


def test_a_customer_sets_reads_and_replaces_its_limits(rules_client):
    c = rules_client
    cust = token_for(c, "cust-gamma")
    assert c.get("/api/v1/customers/gamma/alert-rules", headers=cust).json()["rules"] == []
    body = {"rules": [{"kw_demand": 2500, "daily_kwh": 40000}, {"site": "gamma-site", "pf_floor": 0.92,
                                                                 "bill_to_date": 800000}]}
    r = c.put("/api/v1/customers/gamma/alert-rules", headers=cust, json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["updated_by"] == "cust-gamma"
    assert got["rules"] == [
        {"site": None, "kw_demand": 2500.0, "daily_kwh": 40000.0, "pf_floor": None, "bill_to_date": None},
        {"site": "gamma-site", "kw_demand": None, "daily_kwh": None, "pf_floor": 0.92, "bill_to_date": 800000.0}]
    mgr = token_for(c, "mgr-a")
    assert c.get("/api/v1/customers/gamma/alert-rules", headers=mgr).json()["rules"] == got["rules"]
    r = c.put("/api/v1/customers/gamma/alert-rules", headers=mgr, json={"rules": [{"kw_demand": 3000}]})
    assert [x["kw_demand"] for x in r.json()["rules"]] == [3000.0], "replaced, not added"


@pytest.mark.parametrize(("rules", "where"), [
    ([{"kw_demand": -5}], "rules.0.kw_demand"),
    ([{"pf_floor": 1.2}], "rules.0.pf_floor"),
    ([{"daily_kwh": "lots"}], "rules.0.daily_kwh"),
    ([{"kw_demand": 1, "colour": "red"}], "rules.0.colour"),
    ([{"site": "acme-site", "kw_demand": 1}], "rules.0.site"),
    ([{"kw_demand": 1}, {"daily_kwh": 5}], "rules.1.site"),
])
def test_a_bad_limit_is_422_naming_the_field(rules_client, rules, where):
    cust = token_for(rules_client, "cust-gamma")
    r = rules_client.put("/api/v1/customers/gamma/alert-rules", headers=cust, json={"rules": rules})
    assert r.status_code == 422, r.text
    assert where in r.json()["error"]["message"]


def test_other_customers_and_roles(rules_client):
    c = rules_client
    assert c.get("/api/v1/customers/gamma/alert-rules", headers=token_for(c, "cust-beta")).status_code == 404
    assert c.put("/api/v1/customers/gamma/alert-rules", headers=token_for(c, "eng"),
                 json={"rules": []}).status_code == 403


def test_the_alerts_job_fires_on_a_crossed_own_limit(rules_client, world):
    from gateway.jobs import alerts_job

    cust = token_for(rules_client, "cust-beta")
    r = rules_client.put("/api/v1/customers/beta/alert-rules", headers=cust, json={"rules": [{"kw_demand": 1}]})
    assert r.status_code == 200
    alerts_job(world.gw)
    items = rules_client.get("/api/v1/alerts", headers=cust, params={"customer": "beta"}).json()["items"]
    mine = [a for a in items if a["type"] == "threshold_kw"]
    assert len(mine) == 1, [a["type"] for a in items]
    assert mine[0]["message_key"] == "alert_threshold_kw"
    assert "exceeds your limit of 1.0 kW" in mine[0]["message"]
