"""Planning over the API on the real gateway: week and month forecasts, the purchase view, and their guards."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from tests.gateway.api.world import CUSTOMERS, token_for

BASE = "/api/v1/customers"


def _next_month(today: date) -> date:
    return (today.replace(day=1) + timedelta(days=32)).replace(day=1)


def test_week_and_month_forecasts(client) -> None:
    r = client.get(f"{BASE}/acme/forecast", params={"horizon": "week"}, headers=token_for(client, "eng"))
    assert r.status_code == 200, r.text
    week = r.json()
    tomorrow = datetime.now(ZoneInfo(CUSTOMERS["acme"])).date() + timedelta(days=1)
    assert week["origin"].startswith(tomorrow.isoformat())
    assert week["horizon"] == "week"
    assert len(week["intervals"]) == 7 * 96  # Shanghai keeps no summer time
    assert week["history"]["plan"] is False
    assert week["history"]["pending_intervals"] > 0
    for row in week["intervals"]:
        assert row["lower95"] <= row["lower80"] <= row["upper80"] <= row["upper95"]
        assert row["forecast"] >= 0
    r = client.get(f"{BASE}/acme/forecast", params={"horizon": "month"}, headers=token_for(client, "cust-acme"))
    assert r.status_code == 200, r.text
    month = r.json()
    assert month["month"] == f"{_next_month(tomorrow - timedelta(days=1)):%Y-%m}"  # tomorrow a 1st: that month
    assert month["days"][0]["day"] == month["month"] + "-01"
    assert all(d["energy_kwh_lower95"] <= d["energy_kwh_lower80"] <= d["energy_kwh_upper80"]
               <= d["energy_kwh_upper95"] for d in month["days"])
    assert all(d["peak_kw"] > 0 for d in month["days"])


def test_purchase_view_adds_up(client) -> None:
    r = client.get(f"{BASE}/acme/purchase", headers=token_for(client, "mgr-a"))
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["currency"] == "CNY"
    assert p["customer"] == "acme"
    assert {b["band"] for b in p["bands"]} >= {"peak", "valley"}
    for key in ("kwh", "cost", "cost_low80", "cost_high95"):
        assert sum(Decimal(b[key]) for b in p["bands"]) == Decimal(p["total"][key])
    assert Decimal(p["total"]["cost_low95"]) <= Decimal(p["total"]["cost"]) <= Decimal(p["total"]["cost_high95"])
    assert Decimal(p["total"]["cost"]) == Decimal(p["total"]["cost"]).quantize(Decimal("0.01"))


def test_guards_and_bad_input(client) -> None:
    assert client.get(f"{BASE}/beta/forecast", headers=token_for(client, "cust-acme")).status_code == 404
    assert client.get(f"{BASE}/acme/purchase", headers=token_for(client, "mgr-b")).status_code == 404
    assert client.get(f"{BASE}/acme/purchase", headers=token_for(client, "eng")).status_code == 403  # no money
    assert client.get(f"{BASE}/acme/forecast").status_code == 401
    admin = token_for(client, "admin")
    r = client.get(f"{BASE}/acme/forecast", params={"horizon": "year"}, headers=admin)
    assert r.status_code == 422
    assert "horizon" in r.text
    r = client.get(f"{BASE}/acme/purchase", params={"month": "2020-01"}, headers=admin)
    assert r.status_code == 422
    assert r.json()["error"]["detail"]["where"] == "month"
    assert "is not ahead" in r.json()["error"]["message"]
    r = client.get(f"{BASE}/acme/purchase", params={"month": "2099-12"}, headers=admin)
    assert r.status_code == 422
    assert "more than 3 months ahead" in r.json()["error"]["message"]
    r = client.get(f"{BASE}/acme/purchase", params={"month": "2026-13"}, headers=admin)
    assert r.status_code == 422
    r = client.get(f"{BASE}/acme/purchase", params={"month": "<script>"}, headers=admin)
    assert r.status_code == 422
    assert r.json()["error"]["message"].startswith("query.month")
