"""Energy performance through the API on the real gateway: production uploads (CSV, XLSX, refused files), the
performance view read back against the month view, CO2 by the account's region, scope, budgets and their alert."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from crm_bridge.alerts import AlertSettings, evaluate_alerts
from crm_bridge.registry.models import Alert
from tests.gateway.api.world import CUSTOMERS, token_for

C = "/api/v1/customers/acme"


def _csv(rows: list[tuple[date, float]]) -> bytes:
    return ("date,output,unit,line\n" + "".join(f"{d},{o},t,L1\n" for d, o in rows)).encode()


def _xlsx(rows: list[tuple[date, float]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(["日期", "产量", "单位", "产线"])
    for d, o in rows:
        ws.append([d, o, "t", "L1"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _upload(client, headers, data: bytes, name: str, **params: str):
    return client.post(f"{C}/production", headers=headers, params=params, files={"file": (name, data)})


def test_upload_csv_and_xlsx_and_read_sec_back_from_the_month_figures(client, world):
    cust = token_for(client, "cust-acme")
    last = date.fromisoformat(world.today["acme"])
    d0, d1, d2 = last - timedelta(days=2), last - timedelta(days=1), last
    r = _upload(client, cust, _csv([(d0, 100), (d1, 120)]), "plan.csv")
    assert r.status_code == 201, r.text
    assert (r.json()["rows"], r.json()["replaced_rows"], r.json()["unit"]) == (2, 0, "t")
    r = _upload(client, cust, _xlsx([(d1, 200), (d2, 250)]), "plan.xlsx")  # d1 again: replaces it
    assert r.status_code == 201, r.text
    assert (r.json()["rows"], r.json()["replaced_rows"]) == (2, 1)
    r = client.get(f"{C}/performance", headers=cust, params={"from": f"{d0:%Y-%m}", "to": f"{d2:%Y-%m}"})
    assert r.status_code == 200, r.text
    perf = r.json()
    days = {d["day"]: d for d in perf["days"]}
    daily = {}
    for month in sorted({f"{d:%Y-%m}" for d in (d0, d1, d2)}):
        view = client.get(f"{C}/month", headers=cust, params={"month": month}).json()
        daily |= {x["day"]: x["kwh"] for x in view["daily"]}
    for d, out in ((d0, 100), (d1, 200), (d2, 250)):
        got = days[d.isoformat()]
        assert got["output"] == out
        assert got["complete"], got
        assert got["kwh"] == daily[d.isoformat()], "the day's energy is the month view's"
        assert got["sec"] == pytest.approx(daily[d.isoformat()] / out, rel=1e-3)
    assert perf["unit"] == "t"
    assert any(x["line"] == "L1" for x in perf["lines"])
    assert perf["baseline"]["valid"] is False
    assert "at least 12" in perf["baseline"]["reason"]
    this = perf["months"][-1]
    assert this["in_model"] is False
    assert this["excluded_because"]
    assert this["co2"]["kg"] is None, "no region: said, never 0"
    assert "region" in this["co2"]["note"]
    mgr = token_for(client, "mgr-a")
    r = client.put(f"{C}/performance/settings", headers=mgr, json={"grid_region": "CN-GRID-SOUTH"})
    assert r.status_code == 200, r.text
    assert client.put(f"{C}/performance/settings", headers=cust,
                      json={"grid_region": "CN-GRID-SOUTH"}).status_code == 403
    perf = client.get(f"{C}/performance", headers=cust, params={"from": f"{d2:%Y-%m}", "to": f"{d2:%Y-%m}"}).json()
    month = perf["months"][-1]
    assert month["co2"]["factor_kg_per_kwh"] == 0.3869
    assert month["co2"]["factor_year"] == 2022
    assert month["co2"]["kg"] == pytest.approx(month["kwh"] * 0.3869, rel=1e-3)
    assert perf["advice"] == []
    assert perf["currency"] == "CNY"
    assert perf["next_month"]["note"].startswith("the plan covers 0 days")
    nxt = date.fromisoformat(perf["next_month"]["month"] + "-01")
    plan = [(nxt + timedelta(days=i), 10) for i in range(40) if (nxt + timedelta(days=i)).month == nxt.month]
    r = _upload(client, cust, _csv(plan), "plan.csv", kind="plan")
    assert r.status_code == 201, r.text
    perf = client.get(f"{C}/performance", headers=cust, params={"from": f"{d2:%Y-%m}", "to": f"{d2:%Y-%m}"}).json()
    assert perf["next_month"]["planned_output"] == 10 * len(plan), "next month's output from the uploaded plan"
    assert perf["next_month"]["kwh"] is None, "no adequate baseline: no kWh promised from the plan"
    assert "at least 12" in perf["next_month"]["note"]
    assert _upload(client, cust, _csv(plan), "plan.csv").status_code == 422, "actuals may not lie ahead"
    eng = client.get(f"{C}/performance", headers=token_for(client, "eng"),
                     params={"from": f"{d2:%Y-%m}", "to": f"{d2:%Y-%m}"}).json()
    assert (eng["advice"], eng["currency"], eng["next_month"]["cost"]) == (None, None, None), "no money"


def test_a_bad_file_is_422_with_every_row_in_the_readers_language_and_stores_nothing(client, world):
    cust = token_for(client, "cust-gamma")
    last = date.fromisoformat(world.today["gamma"])
    bad = f"date,output,unit\n{last},50,t\n{last:%Y}-02-30,1,t\n{last - timedelta(days=1)},x<script>,t\n".encode()
    r = client.post("/api/v1/customers/gamma/production", headers=cust, params={"lang": "en"},
                    files={"file": ("p.csv", bad)})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_file"
    assert err["detail"]["count"] == 2
    rows = [(e["row"], e["column"], e["code"]) for e in err["detail"]["errors"]]
    assert rows == [(3, "date", "bad_date"), (4, "output", "not_a_number")]
    assert err["detail"]["errors"][1]["message"] == 'Row 4, column output: "x<script>" is not a number.'
    r = client.post("/api/v1/customers/gamma/production", headers={**cust, "Accept-Language": "zh-CN"},
                    files={"file": ("p.csv", bad)})
    assert r.json()["error"]["detail"]["errors"][0]["message"].startswith("第 3 行，date 列")
    assert "未保存" in r.json()["error"]["message"]
    perf = client.get("/api/v1/customers/gamma/performance", headers=cust,
                      params={"from": f"{last:%Y-%m}", "to": f"{last:%Y-%m}"}).json()
    assert all(d["output"] is None for d in perf["days"]), "nothing of a refused file is stored"


def test_foreign_customers_and_roles_are_refused(client):
    beta = token_for(client, "cust-beta")
    assert _upload(client, beta, _csv([(date(2026, 1, 1), 1)]), "p.csv").status_code == 404
    assert client.get(f"{C}/performance", headers=beta).status_code == 404
    assert client.get(f"{C}/budgets", headers=beta).status_code == 404
    assert client.put(f"{C}/budgets", headers=beta, json={"budgets": []}).status_code == 404
    assert client.get(f"{C}/budgets", headers=token_for(client, "eng")).status_code == 403


def test_budget_over_the_projection_raises_one_alert(client, world):
    tz = ZoneInfo(CUSTOMERS["acme"])
    now = datetime.now(UTC)
    if now.astimezone(tz).day == 1 and now.astimezone(tz).hour < 2:
        now -= timedelta(hours=3)  # a month just begun has hardly an interval to project from
    month = f"{now.astimezone(tz):%Y-%m}"
    cust = token_for(client, "cust-acme")
    high = {"budgets": [{"month": month, "amount": "99999999.99"}, {"month": month, "cost_centre": "press",
                                                                     "amount": 10}]}
    r = client.put(f"{C}/budgets", headers=cust, json=high)
    assert r.status_code == 200, r.text
    body = r.json()["budgets"]
    assert [(b["cost_centre"], b["amount"]) for b in body] == [(None, "99999999.99"), ("press", "10.00")]
    assert body[0]["basis"] == "projection"
    assert body[0]["over"] is False
    assert body[1]["projected_bill"] is None
    assert body[1]["note"]
    all_day = AlertSettings(delivery_start=time(0, 0), delivery_end=time(23, 59, 59, 999999))

    def budget_alerts() -> list[Alert]:
        with world.gw.db() as s:
            evaluate_alerts(s, world.gw.query, now, all_day)
            return list(s.scalars(select(Alert).where(Alert.customer_code == "acme",
                                                      Alert.type == "budget_exceeded")))

    assert budget_alerts() == []
    low = {"budgets": [{"month": month, "amount": "1.00", "currency": "CNY"}]}
    r = client.put(f"{C}/budgets", headers=cust, json=low)
    assert r.json()["budgets"][0]["over"] is True
    [alert] = budget_alerts()
    assert alert.message.startswith("acme: forecast bill ")
    assert "exceeds the budget 1 CNY" in alert.message
    assert len(budget_alerts()) == 1, "once a month"
    items = client.get("/api/v1/alerts", headers=cust, params={"customer": "acme"}).json()["items"]
    assert any(a["type"] == "budget_exceeded" and a["message_key"] == "alert_budget_exceeded" for a in items)
    audit = client.get("/api/v1/audit?limit=50", headers=token_for(client, "admin")).json()["items"]
    assert any(a["action"] == "performance.budgets" and '"1.00"' in a["detail"] for a in audit), "budgets audited"
    bad = client.put(f"{C}/budgets", headers=cust, json={"budgets": [{"month": month, "amount": "1.001"}]})
    assert bad.status_code == 422
    assert "amount" in bad.json()["error"]["message"]
