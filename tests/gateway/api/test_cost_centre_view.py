"""A cost centre's view over the API on the real gateway: its bill share is the allocation's line to the cent, its
curve adds up to the allocation's kWh, SEC per line leaves out days not measured, its budget projection is the
account's projection x its share so far, and the budget alert fires once naming it (zh and en)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from crm_bridge.alerts import AlertSettings, evaluate_alerts
from crm_bridge.registry.models import Alert, AlertText
from gateway.portal.i18n import alert_message
from gateway.usecases import allocation as uc_alloc
from gateway.usecases.allocation import CostCentreIn, FormulaIn, RuleIn
from gateway.usecases.cost_centre_view import Series, sec_of
from gateway.usecases.figures import UseCases
from tests.gateway.api.world import CUSTOMERS, token_for

BASE = "/api/v1/customers/beta"
VIEW = f"{BASE}/cost-centres/PRESS/view"
_TOKENS: dict[str, dict[str, str]] = {}


def login(client, user: str) -> dict[str, str]:
    if user not in _TOKENS:
        _TOKENS[user] = token_for(client, user)
    return _TOKENS[user]


@pytest.fixture(scope="module")
def beta_month(world) -> str:
    """beta: a press metered by beta-m1 and an office without a meter, fixed shares 80/20; its last full day's month."""
    gw = world.gw
    with gw.db() as s:
        uc_alloc.put_cost_centre(s, "beta", "PRESS", CostCentreIn(name="Press shop", kind="line"))
        uc_alloc.add_formula(UseCases(gw), s, "beta", "PRESS", FormulaIn(formula="beta-m1",
                                                                         valid_from=date(2020, 1, 1)))
        uc_alloc.put_cost_centre(s, "beta", "OFFICE", CostCentreIn(name="Offices"))
        uc_alloc.add_rule(s, "beta", RuleIn(rule="fixed", valid_from=date(2020, 1, 1),
                                            shares={"PRESS": Decimal("0.8"), "OFFICE": Decimal("0.2")}))
    return world.today["beta"][:7]


def test_the_share_is_the_allocations_line_and_the_curve_adds_up_to_its_kwh(client, beta_month) -> None:
    mgr = login(client, "mgr-b")
    a = client.get(f"{BASE}/allocation", params={"month": beta_month}, headers=mgr).json()
    line = next(x for x in a["lines"] if x["code"] == "PRESS")
    r = client.get(VIEW, params={"month": beta_month, "range": "month"}, headers=mgr)
    assert r.status_code == 200, r.text
    view = r.json()
    share = view["share"]["line"]
    assert Decimal(share["total"]) == Decimal(line["total"]) != 0, "to the cent, the allocation's own line"
    assert [(m["element"], Decimal(m["amount"])) for m in share["money"]] == \
        [(m["element"], Decimal(m["amount"])) for m in line["money"]]
    assert view["share"]["bill_total"] == a["total"]
    assert Decimal(view["share"]["share_of_total"]) == (Decimal(line["total"]) / Decimal(a["total"])).quantize(
        Decimal("0.0001"))
    assert view["month_energy"]["kwh"] == pytest.approx(line["kwh"], abs=1e-3)
    points = view["curve"]["intervals"]
    assert sum(p["kwh"] for p in points if p["kwh"] is not None) == pytest.approx(line["kwh"], abs=1e-3)
    got = {s: sum(p["status"] == s for p in points) for s in ("measured", "estimated", "pending", "missing")}
    assert got == view["curve"]["counts"] == view["month_energy"]["counts"]
    assert got["pending"] + got["missing"] > 0, "intervals not reached yet or before the history: no energy, said so"
    assert all(p["kwh"] is None and p["kw"] is None for p in points if p["status"] in ("missing", "pending"))
    assert all(p["kw"] == pytest.approx(p["kwh"] * 4, abs=1e-3) for p in points if p["kwh"] is not None)
    day = client.get(VIEW, params={"month": beta_month, "range": "day", "date": view["month"] + "-01"},
                     headers=mgr).json()["curve"]
    assert len(day["intervals"]) in (92, 96, 100)
    assert day["first"] == day["last"] == view["month"] + "-01"


def test_scope_money_and_bad_input(client, beta_month) -> None:
    assert client.get(VIEW, headers=login(client, "cust-acme")).status_code == 404, "another customer's"
    assert client.get(VIEW, headers=login(client, "mgr-a")).status_code == 404
    eng = client.get(VIEW, params={"month": beta_month}, headers=login(client, "eng"))
    assert eng.status_code == 200, eng.text
    body = eng.json()
    assert body["budget"] is None
    assert body["share"]["line"]["money"] is None
    assert body["share"]["line"]["total"] is None
    assert body["share"]["bill_total"] is None
    assert body["share"]["currency"] is None
    assert body["share"]["line"]["kwh"] > 0, "kWh without money"
    cust = login(client, "cust-beta")
    r = client.get(f"{BASE}/cost-centres/NOPE/view", headers=cust)
    assert r.status_code == 404
    assert "NOPE" in r.json()["error"]["message"]
    for bad in ("2026-13", "<script>", "26-01"):
        r = client.get(VIEW, params={"month": bad}, headers=cust)
        assert r.status_code == 422, bad
        assert "month" in r.json()["error"]["message"]
    assert client.get(VIEW, params={"range": "year"}, headers=cust).status_code == 422
    r = client.get(VIEW, params={"range": "day", "date": "2026-02-30"}, headers=cust)
    assert r.status_code == 422
    assert "date" in r.json()["error"]["message"]


def test_sec_by_hand_leaves_out_the_day_with_an_estimated_interval() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    first = date(2026, 2, 1)
    index = pd.date_range(pd.Timestamp(first).tz_localize(tz), periods=3 * 96, freq="15min")
    kwh = np.full(len(index), 2.0)
    rank = np.zeros(len(index), dtype=np.int8)
    rank[96 + 40] = 1  # one estimated interval on the 2nd: its energy stays in its day, the day leaves SEC
    kwh[96 + 41] = 5.0
    output = {date(2026, 2, 1): Decimal(10), date(2026, 2, 2): Decimal(20), date(2026, 2, 3): Decimal(40),
              date(2026, 2, 5): Decimal(7)}
    days, month = sec_of(Series(index, kwh, rank, ["m"], []), output, first)
    by = {d["day"]: d for d in days}
    assert by[date(2026, 2, 1)]["sec"] == 19.2  # 96 x 2 kWh / 10
    assert by[date(2026, 2, 2)]["sec"] is None
    assert by[date(2026, 2, 2)]["kwh"] == 195.0
    assert by[date(2026, 2, 2)]["estimated_intervals"] == 1
    assert by[date(2026, 2, 3)]["sec"] == 4.8
    assert by[date(2026, 2, 5)]["kwh"] is None, "no intervals: no energy, never 0"
    assert by[date(2026, 2, 5)]["sec"] is None
    assert month == {"kwh": 384.0, "output": 50.0, "sec": 7.68, "sec_days": 2, "production_days": 4,
                     "excluded_days": 2}


def test_sec_of_the_line_comes_from_its_production_rows_and_its_own_intervals(client, world, beta_month) -> None:
    cust = login(client, "cust-beta")
    last = date.fromisoformat(world.today["beta"])
    days = [d for d in (last - timedelta(days=i) for i in range(2)) if f"{d:%Y-%m}" == beta_month]
    csv = "date,output,unit,line\n" + "".join(f"{d},{100 + i},t,PRESS\n{d},999,t,OTHER\n" for i, d in enumerate(days))
    r = client.post(f"{BASE}/production", headers=cust, files={"file": ("p.csv", csv.encode())})
    assert r.status_code == 201, r.text
    view = client.get(VIEW, params={"month": beta_month}, headers=cust).json()
    sec = view["sec"]
    assert (sec["unit"], sec["line"]) == ("t", "PRESS")
    by = {d["day"]: d for d in sec["days"]}
    points = view["curve"]["intervals"]
    for i, d in enumerate(days):
        row = by[d.isoformat()]
        assert row["output"] == 100 + i, "only the rows of the line PRESS"
        mine = [p for p in points if p["start"].startswith(d.isoformat())]
        assert row["kwh"] == pytest.approx(sum(p["kwh"] or 0 for p in mine), abs=1e-3)
        if row["complete"]:
            assert all(p["status"] == "measured" for p in mine)
            assert row["sec"] == pytest.approx(row["kwh"] / row["output"], abs=1e-4)
        else:
            assert row["sec"] is None
    assert sec["month"]["production_days"] == len(days)
    assert sec["month"]["sec_days"] + sec["month"]["excluded_days"] == len(days)
    base = sec["baseline"]
    assert base["valid"] is False
    assert "at least 12" in base["reason"], "too few months: the model says why"


def test_the_budget_projection_is_the_accounts_times_the_share_and_the_alert_fires_once(client, world,
                                                                                        beta_month) -> None:
    tz = ZoneInfo(CUSTOMERS["beta"])
    now = datetime.now(UTC)
    if now.astimezone(tz).day == 1 and now.astimezone(tz).hour < 2:
        now -= timedelta(hours=3)  # a month just begun has hardly an interval to project from
    month = f"{now.astimezone(tz):%Y-%m}"
    mgr = login(client, "mgr-b")
    before = f"{(date.fromisoformat(month + '-01') - timedelta(days=1)):%Y-%m}"
    r = client.put(f"{BASE}/budgets", headers=mgr, json={"budgets": [
        {"month": before, "cost_centre": "PRESS", "amount": "1.00", "currency": "CNY"},
        {"month": month, "cost_centre": "PRESS", "amount": "0.01", "currency": "CNY"},
        {"month": month, "cost_centre": "OFFICE", "amount": "99999999.99", "currency": "CNY"}]})
    assert r.status_code == 200, r.text
    rows = {b["cost_centre"]: b for b in r.json()["budgets"] if b["month"] == month}
    [past] = [b for b in r.json()["budgets"] if b["month"] == before]
    done = client.get(f"{BASE}/allocation", params={"month": before}, headers=mgr)
    if done.status_code == 200:  # a month that is over: the cost centre's line of its allocation, to the cent
        line = next(x for x in done.json()["lines"] if x["code"] == "PRESS")
        assert (past["basis"], Decimal(past["projected_bill"])) == ("bill", Decimal(line["total"]))
    else:  # no data that month (the history is 10 days): no bill, said why
        assert (past["basis"], past["projected_bill"]) == ("none", None)
        assert past["note"]
    press = rows["PRESS"]
    assert press["basis"] == "projection"
    assert press["note"].startswith("projection: account projection x share so far ")
    assert (press["over"], rows["OFFICE"]["over"]) == (True, False)
    view = client.get(VIEW, params={"month": month}, headers=mgr).json()["budget"]
    assert view["projected"] == press["projected_bill"]
    assert view["amount"] == "0.01"
    assert view["over"] is True
    expected = (Decimal(view["account_projection"]) * Decimal(view["share"])).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert Decimal(view["projected"]) == expected, "the account's projection x the share so far, to the cent"
    assert f"{Decimal(view['share']) * 100:.1f} %" in press["note"]
    # The performance page says each basis in the reader's language, not the use case's English.
    from gateway.portal.energy_pages import reason

    assert (reason(press["note"], "zh") or "").startswith("预测："), press["note"]
    if past["basis"] == "bill":
        assert (reason(past["note"], "zh") or "").startswith("账单："), past["note"]
    all_day = AlertSettings(delivery_start=time(0, 0), delivery_end=time(23, 59, 59, 999999))

    def centre_alerts() -> list[Alert]:
        with world.gw.db() as s:
            evaluate_alerts(s, world.gw.query, now, all_day)
            return list(s.scalars(select(Alert).where(Alert.customer_code == "beta", Alert.type == "budget_exceeded")))

    [alert] = centre_alerts()
    assert "cost centre PRESS" in alert.message
    assert "exceeds its budget 0.01 CNY" in alert.message
    assert len(centre_alerts()) == 1, "once a month per cost centre"
    with world.gw.db() as s:
        text = s.scalar(select(AlertText).where(AlertText.alert_id == alert.id))
        assert text is not None
        key, params = text.key, dict(text.params)
    assert key == "alert_budget_exceeded_centre"
    en = alert_message(key, params, alert.message, CUSTOMERS["beta"], "en")
    zh = alert_message(key, params, alert.message, CUSTOMERS["beta"], "zh")
    assert "PRESS" in en
    assert "budget" in en
    assert "PRESS" in zh
    assert "预算" in zh
    assert client.put(f"{BASE}/budgets", headers=mgr, json={"budgets": []}).status_code == 200
