"""Cost allocation over the API on the real gateway: it adds up to the month bill, exports parse back, scope holds."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from tests.gateway.api.world import token_for

BASE = "/api/v1/customers/gamma"
_TOKENS: dict[str, dict[str, str]] = {}


def login(client, user: str) -> dict[str, str]:
    """One login per user for the module (a login verifies an argon2 hash: not free)."""
    if user not in _TOKENS:
        _TOKENS[user] = token_for(client, user)
    return _TOKENS[user]


@pytest.fixture(scope="module")
def month(client, world) -> str:
    """gamma with two cost centres (one metered, one not) and fixed shares 70/30; the month of its last full day."""
    admin = login(client, "admin")
    assert client.put(f"{BASE}/cost-centres/1000", headers=admin,
                      json={"name": "Rolling mill", "kind": "line"}).status_code == 201
    r = client.put(f"{BASE}/cost-centres/1000", headers=admin, json={"name": "Rolling mill 1", "kind": "line"})
    assert (r.status_code, r.json()["name"]) == (200, "Rolling mill 1")
    r = client.post(f"{BASE}/cost-centres/1000/formulas", headers=admin,
                    json={"formula": "gamma-m1", "valid_from": "2020-01-01"})
    assert r.status_code == 201, r.text
    assert client.put(f"{BASE}/cost-centres/2000", headers=admin,
                      json={"name": "Offices", "kind": "cost_centre"}).status_code == 201
    r = client.post(f"{BASE}/allocation-rules", headers=admin,
                    json={"rule": "fixed", "valid_from": "2020-01-01", "shares": {"1000": "0.7", "2000": "0.3"},
                          "company_code": "1000", "cost_elements": {"basic_charge": "417100"}})
    assert r.status_code == 201, r.text
    return world.today["gamma"][:7]


def test_the_allocation_adds_up_to_the_month_bill_endpoints_total(client, month) -> None:
    admin = login(client, "admin")
    bill = client.get(f"{BASE}/month", params={"month": month}, headers=admin).json()
    r = client.get(f"{BASE}/allocation", params={"month": month}, headers=admin)
    assert r.status_code == 200, r.text
    a = r.json()
    assert Decimal(a["total"]) == Decimal(str(bill["total"]))
    assert sum(Decimal(line["total"]) for line in a["lines"]) == Decimal(a["total"])
    assert (a["rule"], a["shares"]["2000"], a["company_code"]) == ("fixed", "0.3000", "1000")
    lines = {line["code"]: line for line in a["lines"]}
    assert set(lines) == {"1000", "2000", "UNMETERED"}
    money = {m["element"]: Decimal(m["amount"]) for m in lines["2000"]["money"]}
    # the offices have no meter: no energy, 30 % of the basic charge (largest remainder: within a cent)
    assert money["energy_peak"] == 0
    assert abs(money["basic_charge"] - Decimal(str(bill["basic_charge"]["amount"])) * Decimal("0.3")) <= Decimal("0.01")
    assert lines["1000"]["kwh"] == pytest.approx(bill["kwh"], abs=0.05)  # the month view rounds to 0.1 kWh
    assert lines["1000"]["formulas"] == ["gamma-m1"]
    assert lines["1000"]["intervals"]["measured"] == bill["measured_intervals"]


def test_csv_and_xlsx_parse_back_and_add_up(client, month) -> None:
    admin = login(client, "admin")
    total = Decimal(client.get(f"{BASE}/allocation", params={"month": month}, headers=admin).json()["total"])
    r = client.get(f"{BASE}/allocation", params={"month": month, "format": "csv", "sep": "semicolon", "lang": "zh"},
                   headers=admin)
    assert r.status_code == 200, r.text
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    assert sum(Decimal(row["Amount"]) for row in rows) == total
    basic = [row for row in rows if row["CostElement"] == "417100"]
    # Only the basic charge is mapped: every other element exported is named as unmapped, and only those.
    unmapped = client.get(f"{BASE}/allocation", params={"month": month}, headers=admin).json()["unmapped_elements"]
    assert unmapped == sorted({row["CostElement"] for row in rows} - {"417100"})
    assert unmapped
    assert all(len(x) > 10 for x in unmapped)
    assert {row["CostCenter"] for row in basic} == {"1000", "2000"}
    assert all(row["CompanyCode"] == "1000" and row["Period"] == f"{int(month[5:]):03d}" for row in rows)
    assert any("基本电费" in row["Text"] for row in basic)
    r = client.get(f"{BASE}/allocation", params={"month": month, "format": "xlsx", "lang": "en"}, headers=admin)
    ws = load_workbook(io.BytesIO(r.content)).active
    header, *body = list(ws.iter_rows(values_only=True))
    assert header[5] == "Amount"
    assert sum(Decimal(str(row[5])) for row in body) == total
    assert any(str(row[9]).startswith("Energy charge") for row in body)


def test_scope_money_and_bad_input(client, month) -> None:
    assert client.get(f"{BASE}/allocation", params={"month": month},
                      headers=login(client, "mgr-b")).status_code == 404  # beta's manager: not his customer
    assert client.get(f"{BASE}/allocation", params={"month": month},
                      headers=login(client, "eng")).status_code == 403  # no money
    assert client.get(f"{BASE}/allocation", params={"month": month},
                      headers=login(client, "cust-gamma")).status_code == 200
    mgr = login(client, "mgr-a")
    for bad in ("2026-13", "2026-1", "<script>"):
        r = client.get(f"{BASE}/allocation", params={"month": bad}, headers=mgr)
        assert r.status_code == 422, bad
        assert "month" in r.json()["error"]["message"]
    r = client.post(f"{BASE}/cost-centres/1000/formulas", headers=mgr,
                    json={"formula": "gamma-m1 - acme-m1", "valid_from": "2021-01-01"})
    assert r.status_code == 422
    assert "body.formula" in r.json()["error"]["message"]
    assert "acme-m1" in r.json()["error"]["message"]
    r = client.post(f"{BASE}/cost-centres/1000/formulas", headers=mgr, json={"formula": "a + + b",
                                                                               "valid_from": "2021-01-01"})
    assert r.status_code == 422
    assert "token 3" in r.json()["error"]["message"]
    r = client.post(f"{BASE}/cost-centres/1000/formulas", headers=mgr,
                    json={"formula": "gamma-m1", "valid_from": "2019-01-01"})
    assert r.status_code == 409  # history is not rewritten
    r = client.post(f"{BASE}/allocation-rules", headers=mgr,
                    json={"rule": "fixed", "valid_from": "2030-01-01", "shares": {"1000": "0.5", "9999": "0.5"}})
    assert r.status_code == 422
    assert "body.shares.9999" in r.json()["error"]["message"]
    r = client.put(f"{BASE}/cost-centres/3000", headers=login(client, "cust-gamma"), json={"name": "x"})
    assert r.status_code == 403  # the customer reads its allocation; its account manager defines it
