"""The energy-accounting pages (cost centres, performance with the production upload, purchase) on the real gateway:
their figures are the use cases' own, scope and money hold, bad files answer with every row, names are text."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from html import unescape

import pytest

from gateway.portal.units import cash, q
from gateway.usecases import allocation as uc_alloc
from gateway.usecases.allocation import CostCentreIn, FormulaIn, RuleIn
from gateway.usecases.figures import UseCases
from gateway.usecases.performance import Performance
from tests.gateway.portal.test_csp import WATCH, violations
from tests.gateway.portal.test_languages import client_for
from tests.gateway.portal.test_portal import login

EVIL = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'


def _csrf(html: str) -> str:
    return html.split('name="csrf_token" value="')[1].split('"')[0]


def _attr(html: str, ident: str, attr: str) -> str:
    m = re.search(rf'id="{ident}"[^>]*\b{attr}="([^"]*)"', html)
    assert m, f"no {ident} with {attr}"
    return unescape(m.group(1))


@pytest.fixture(scope="module")
def gamma_month(portal_world) -> date:
    """gamma with a metered line and an office whose name is hostile, shared 60/40; the month of its last full day."""
    gw = portal_world.gw
    v = UseCases(gw)
    with gw.db() as s:
        uc_alloc.put_cost_centre(s, "gamma", "L1", CostCentreIn(name="Line 1", kind="line"))
        uc_alloc.add_formula(v, s, "gamma", "L1", FormulaIn(formula="gamma-m1", valid_from=date(2020, 1, 1)))
        uc_alloc.put_cost_centre(s, "gamma", "OFF", CostCentreIn(name=EVIL))
        uc_alloc.add_rule(s, "gamma", RuleIn(rule="fixed", valid_from=date(2020, 1, 1),
                                             shares={"L1": Decimal("0.6"), "OFF": Decimal("0.4")}))
    return date.fromisoformat(portal_world.today["gamma"]).replace(day=1)


def test_the_costs_table_adds_up_to_the_allocations_bill_total_and_names_are_text(portal, portal_world, gamma_month):
    month = f"{gamma_month:%Y-%m}"
    a = uc_alloc.allocation(UseCases(portal_world.gw), "gamma", gamma_month)
    with client_for(portal.url, "mgr-a") as c:
        r = c.get(f"/portal/c/gamma/costs?month={month}&lang=en")
        assert r.status_code == 200, r.text
        html = r.text
        assert Decimal(_attr(html, "costs-total", "data-total")) == a.total
        assert cash(a.total, a.currency, "en") in html
        assert sum(line.total for line in a.lines) == a.total
        assert 'data-code="UNMETERED"' in html
        assert "Unmetered energy and losses" in html
        assert "fixed shares" in html
        assert "OFF 40.0%" in html
        assert EVIL not in html, "a cost centre's name is text"
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert f"/api/v1/customers/gamma/allocation?month={month}&amp;format=xlsx" in html
        assert 'id="costs-chart-data"' in html
        gaps = html.split('id="costs-export-gaps">')[1].split("</p>")[0]  # what SAP would refuse, named
        assert all(element in gaps for element in a.unmapped_elements)
        assert a.unmapped_elements
        assert ("company code" in gaps) == (not a.company_code)
        export = c.get(f"/api/v1/customers/gamma/allocation?month={month}&format=csv")
        assert export.status_code == 200, "the link's file"
        assert export.content.startswith(b"\xef\xbb\xbf")
        assert c.get("/portal/c/acme/costs?lang=zh").text.count("客户经理") >= 1, "no cost centres: who sets them up"
    with client_for(portal.url, "eng") as c:
        html = c.get(f"/portal/c/gamma/costs?month={month}&lang=en").text
        assert 'id="costs-kwh"' in html
        assert "Unmetered" in html
        assert 'id="costs-total"' not in html, "no money"
        assert " CNY" not in html
        assert "allocation?month" not in html
    with client_for(portal.url, "cust-beta") as c:
        assert c.get(f"/portal/c/gamma/costs?month={month}").status_code == 404
        assert c.get("/portal/c/gamma/costs?month=<script>").status_code == 404
    with client_for(portal.url, "cust-gamma") as c:
        for bad in ("2026-13", "<script>", "x" * 7):
            r = c.get("/portal/c/gamma/costs", params={"month": bad})
            assert r.status_code == 422, bad
            assert "<script>" not in r.text


def test_the_upload_shows_every_bad_row_then_stores_a_good_file_and_the_sec_is_the_use_cases(portal, portal_world):
    last = date.fromisoformat(portal_world.today["acme"])
    days = [last - timedelta(days=i) for i in range(3)]
    with client_for(portal.url, "cust-acme") as c:
        token = _csrf(c.get("/portal/c/acme/performance?lang=en").text)
        bad = f"date,output,unit\n{last},50,t\n{last:%Y}-02-30,1,t\n{days[1]},x<script>,t\n".encode()
        r = c.post("/portal/c/acme/performance/production", data={"csrf_token": token, "kind": "actual"},
                   files={"file": ("<b>evil</b>.csv", bad)})
        assert r.status_code == 422, r.text[:500]
        errors = re.findall(r'<li class="upload-error" data-row="(\d*)" data-column="([^"]*)">([^<]*)</li>', r.text)
        assert [(row, col) for row, col, _ in errors] == [("3", "date"), ("4", "output")]
        assert unescape(errors[1][2]) == 'Row 4, column output: "x<script>" is not a number.'
        assert "<b>evil</b>" not in r.text
        assert "&lt;b&gt;evil&lt;/b&gt;.csv" in r.text
        assert c.post("/portal/c/acme/performance/production", data={"csrf_token": "wrong"},
                      files={"file": ("p.csv", bad)}).status_code == 403
        good = ("date,output,unit\n" + "".join(f"{d},{100 + 10 * i},t\n" for i, d in enumerate(days))).encode()
        r = c.post("/portal/c/acme/performance/production", data={"csrf_token": token, "kind": "actual"},
                   files={"file": ("good.csv", good)})
        assert r.status_code == 200, r.text[:500]
        assert "3 rows for 3 days stored" in unescape(r.text.split('id="upload-ok"')[1].split("</p>")[0])
        html = c.get(f"/portal/c/acme/performance?to={last:%Y-%m}&lang=en").text
    with portal_world.gw.db() as s:
        perf = Performance(UseCases(portal_world.gw), s).performance("acme", last.replace(day=1), last.replace(day=1),
                                                                     True)
    month = perf["months"][-1]
    assert month["sec"] is not None
    cell = html.split(f'data-month="{month["month"]}"')[1].split("</tr>")[0]
    assert re.search(r'data-sec="([^"]*)"', cell).group(1) == str(month["sec"]), "SEC is the use case's"
    assert q(month["kwh"], "kWh", "en") in cell
    assert 'id="baseline-verdict">Not adequate' in html
    assert "baseline needs at least" in html
    assert 'id="no-budget"' in html, "money: the budget part for the customer"
    with client_for(portal.url, "eng") as c:
        html = c.get("/portal/c/acme/performance").text
        future = c.get("/portal/c/acme/performance?to=2099-01&lang=en")
        assert future.status_code == 200
        assert "2099-01 has not begun" in future.text
        assert 'id="perf-months"' in html
        assert 'id="no-budget"' not in html
        assert 'id="budgets"' not in html
    with client_for(portal.url, "cust-beta") as c:
        assert c.get("/portal/c/acme/performance").status_code == 404
        token = _csrf(c.get("/portal/c/beta/performance").text)
        assert c.post("/portal/c/acme/performance/production", data={"csrf_token": token},
                      files={"file": ("p.csv", b"x")}).status_code == 404


def test_the_purchase_page_is_the_purchase_views(portal, portal_world):
    with client_for(portal.url, "mgr-a") as c:
        html = c.get("/portal/c/acme/purchase?lang=en").text
        api = c.get("/api/v1/customers/acme/purchase")
        if api.status_code == 200:
            view = api.json()
            total = html.split('data-band="total"')[1].split("</tr>")[0]
            assert q(Decimal(view["total"]["kwh"]), "kWh", "en") in total
            assert cash(view["total"]["cost"], view["currency"], "en") in total
        else:  # not enough history for a month ahead: the page says so instead of figures
            assert 'id="purchase-reason"' in html
        assert c.get("/portal/c/acme/purchase?month=2020-01&lang=en").text.count('id="purchase-reason"') == 1
    with client_for(portal.url, "eng") as c:
        html = c.get("/portal/c/acme/purchase").text
        assert " CNY" not in html
    with client_for(portal.url, "cust-beta") as c:
        assert c.get("/portal/c/acme/purchase").status_code == 404


def test_the_cost_centre_chart_draws_under_the_csp(page, portal, gamma_month):
    """The one browser check: static/portal.js draws the server-built share chart, one bar per line."""
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    page.add_init_script(WATCH)
    login(page, portal.url, "mgr-a")
    page.goto(f"{portal.url}/portal/c/gamma/costs?month={gamma_month:%Y-%m}")
    page.wait_for_selector("#costs-chart[data-ready='1']")
    assert page.evaluate("document.getElementById('costs-chart').data[0].x") == ["L1", "OFF", "UNMETERED"]
    assert violations(page, console) == []
