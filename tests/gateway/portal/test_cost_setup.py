"""The cost-allocation setup page on the real gateway: a manager's cost centre, formula, fixed-shares rule and budgets
reach the API and the costs page; bad values come back beside their field in zh and en and store nothing; the
capabilities, the customer scope and the CSRF token hold as on the API; names are text.

beta (manager mgr-b) is set up here: no other portal test gives beta cost centres or budgets.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from html import unescape
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway.auth.models import AuditEvent
from gateway.portal import i18n
from tests.gateway.portal.conftest import clear_cost_setup
from tests.gateway.portal.test_csp import WATCH, violations
from tests.gateway.portal.test_languages import client_for
from tests.gateway.portal.test_portal import login

EVIL = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'
SETUP = "/portal/c/beta/setup"


def _csrf(html: str) -> str:
    return html.split('name="csrf_token" value="')[1].split('"')[0]


def _post(c: httpx.Client, path: str, token: str, lang: str = "en", **data: str) -> httpx.Response:
    return c.post(f"{SETUP}/{path}?lang={lang}", data={"csrf_token": token, **data})


def _error(html: str, ident: str) -> str:
    """The text of the error shown beside the field `ident` (form-field)."""
    marker = f'id="{ident}-error">'
    assert marker in html, f"no error beside {ident}"
    return unescape(html.split(marker)[1].split("</")[0])


def _stored(c: httpx.Client) -> dict[str, Any]:
    """What the API returns for beta: cost centres, rule versions, budgets."""
    return {"centres": c.get("/api/v1/customers/beta/cost-centres").json(),
            "rules": c.get("/api/v1/customers/beta/allocation-rules").json(),
            "budgets": [(b["month"], b["cost_centre"], b["amount"], b["currency"])
                        for b in c.get("/api/v1/customers/beta/budgets").json()["budgets"]]}


@pytest.fixture(scope="module")
def beta_setup(portal, portal_world) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Through the portal as beta's manager: two cost centres (one named hostile), a formula, a 70/30 rule, budgets."""
    clear_cost_setup(portal_world, "beta")
    month = portal_world.today["beta"][:7]
    with client_for(portal.url, "mgr-b") as c:
        token = _csrf(c.get(f"{SETUP}?lang=en").text)
        answers = [
            _post(c, "centres", token, code="PRESS", name="Press shop", kind="line"),
            _post(c, "centres", token, code="OFFICE", name=EVIL, kind="cost_centre"),
            _post(c, "formulas", token, code="PRESS", formula="beta-m1", valid_from="2020-01-01"),
            _post(c, "rules", token, rule="fixed", valid_from="2020-01-01", **{"share.PRESS": "0.7",
                  "share.OFFICE": "0.3", "element.basic_charge": "600100", "company_code": "1000"}),
            _post(c, "budgets", token, month=month, cost_centre="", amount="12345.67", currency="CNY"),
            _post(c, "budgets", token, month=month, cost_centre="PRESS", amount="5000", currency="CNY"),
            _post(c, "budgets", token, month=month, cost_centre="PRESS", remove="1"),
        ]
        for r in answers:
            assert r.status_code == 303, r.text[:500]
            assert r.headers["location"].startswith(f"{SETUP}?saved="), r.text[:500]
        made = {"month": month, "token": token, "api": _stored(c), "page": c.get(f"{SETUP}?lang=en").text,
                "costs": c.get(f"/portal/c/beta/costs?month={month}&lang=en").text}
    yield made
    clear_cost_setup(portal_world, "beta")


def test_a_managers_setup_reaches_the_api_and_the_costs_page_and_names_are_text(beta_setup, portal_world):
    api = beta_setup["api"]
    centres = {c["code"]: c for c in api["centres"]}
    assert centres["PRESS"]["kind"] == "line"
    assert [(f["formula"], f["valid_from"], f["valid_to"]) for f in centres["PRESS"]["formulas"]] == [
        ("beta-m1", "2020-01-01", None)]
    assert centres["OFFICE"]["name"] == EVIL
    [rule] = api["rules"]
    assert rule["rule"] == "fixed"
    assert {k: Decimal(v) for k, v in rule["shares"].items()} == {"PRESS": Decimal("0.7"), "OFFICE": Decimal("0.3")}
    assert (rule["company_code"], rule["cost_elements"]) == ("1000", {"basic_charge": "600100"})
    assert api["budgets"] == [(beta_setup["month"], None, "12345.67", "CNY")], \
        "two budgets set, the cost centre's removed, the account's kept"
    costs = beta_setup["costs"]
    assert "PRESS 70.0%" in costs
    assert "OFFICE 30.0%" in costs, "the costs page shows the new split"
    assert 'id="costs-setup" href="/portal/c/beta/setup"' in costs
    for html in (costs, beta_setup["page"]):
        assert EVIL not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = beta_setup["page"]
    assert '<tr data-centre="PRESS">' in page
    assert "<code>beta-m1</code>" in page
    assert 'id="setup-meters"' in page
    assert '<code class="meter">beta-m1</code>' in page
    assert 'data-amount="12345.67"' in page
    with portal_world.gw.db() as s:
        actions = list(s.scalars(select(AuditEvent.action).where(AuditEvent.actor == "mgr-b",
                                                                 AuditEvent.target == "customer:beta")))
    assert sorted(set(actions)) == ["allocation.cost_centre", "allocation.formula", "allocation.rule",
                                    "performance.budget"]
    assert actions.count("performance.budget") == 3


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_bad_values_come_back_beside_their_field_in_the_readers_language_and_store_nothing(portal, beta_setup, lang):
    month = beta_setup["month"]

    def said(key: str, **values: str) -> str:
        return i18n.text(key, lang, **values)

    with client_for(portal.url, "mgr-b") as c:
        token = _csrf(c.get(SETUP).text)
        before = _stored(c)
        cases = [  # (form, fields, [(field id, expected message)])
            ("centres", {"code": "bad code", "name": "", "kind": "line"},
             [("centre-code", said("cs_err_code")), ("centre-name", said("cs_err_name"))]),
            ("centres", {"code": "UNMETERED", "name": "x", "kind": "line"},
             [("centre-code", said("cs_err_code_reserved"))]),
            ("formulas", {"code": "PRESS", "formula": "beta-m1 +", "valid_from": "2021-13-01"},
             [("formula-formula", said("cs_err_formula")), ("formula-valid_from", said("cs_err_valid_from"))]),
            ("formulas", {"code": "PRESS", "formula": "beta-m1 - acme-m1", "valid_from": "2021-01-01"},
             [("formula-formula", said("cs_err_meter", meter="acme-m1"))]),
            ("formulas", {"code": "PRESS", "formula": "beta-m1", "valid_from": "2019-01-01"},
             [("formula-valid_from", said("cs_err_not_after", date="2020-01-01"))]),
            ("rules", {"rule": "fixed", "valid_from": "2021-01-01", "share.PRESS": "0.5", "share.OFFICE": "0.4"},
             [("rule-shares", said("cs_err_shares_sum", total="0.9"))]),
            ("rules", {"rule": "fixed", "valid_from": "2021-01-01", "share.PRESS": "x", "company_code": "C<1>"},
             [("rule-shares", said("cs_err_share")), ("rule-company_code", said("cs_err_company_code"))]),
            ("budgets", {"month": "2026-13", "amount": "10"}, [("budget-month", said("cs_err_month"))]),
            ("budgets", {"month": "13/2026", "amount": "-5", "currency": EVIL},
             [("budget-month", said("cs_err_month")), ("budget-amount", said("cs_err_amount")),
              ("budget-currency", said("cs_err_currency"))]),
            ("budgets", {"month": month, "amount": "1.005", "cost_centre": "NOPE"},
             [("budget-amount", said("cs_err_amount"))]),
            ("budgets", {"month": month, "amount": "10", "cost_centre": "NOPE"},
             [("budget-cost_centre", said("cs_err_budget_centre"))]),
            ("budgets", {"month": "2030-01", "cost_centre": "PRESS", "remove": "1"},
             [("budget_remove-month", said("cs_err_budget_none"))]),
        ]
        for form, fields, expected in cases:
            r = _post(c, form, token, lang, **fields)
            assert r.status_code == 422, (form, fields, r.status_code, r.text[:300])
            assert 'id="setup-invalid"' in r.text
            for ident, message in expected:
                assert _error(r.text, ident) == message, (form, fields)
            assert EVIL not in r.text, "what was typed comes back as text"
        assert _stored(c) == before, "nothing stored"


def test_capabilities_scope_and_the_csrf_token_hold_as_on_the_api(portal, beta_setup):
    month = beta_setup["month"]
    budget = {"month": month, "amount": "1", "currency": "CNY"}
    with client_for(portal.url, "cust-beta") as c:  # the customer's own energy manager: money, not the file
        token = _csrf(c.get(SETUP).text)
        page = c.get(f"{SETUP}?lang=en").text
        assert 'id="budget"' in page
        assert 'id="centre"' not in page
        assert 'id="rule-form"' not in page
        assert _post(c, "centres", token, code="X1", name="x").status_code == 403
        assert _post(c, "rules", token, rule="kwh", valid_from="2030-01-01").status_code == 403
        assert c.get("/portal/c/acme/setup").status_code == 404, "another customer's page"
        assert c.post("/portal/c/acme/setup/budgets", data={"csrf_token": token, **budget}).status_code == 404
        assert _post(c, "budgets", "wrong", **budget).status_code == 403
        assert c.post(f"{SETUP}/budgets", data=budget).status_code == 403, "no CSRF token"
    with client_for(portal.url, "eng") as c:  # metered data only: the lists, no money, no forms
        token = _csrf(c.get(SETUP).text)
        page = c.get(SETUP).text
        assert 'id="centre-list"' in page
        assert 'id="budget-list"' not in page
        assert 'id="centre"' not in page
        assert _post(c, "budgets", token, **budget).status_code == 403
        assert _post(c, "formulas", token, code="PRESS", formula="beta-m1", valid_from="2030-01-01").status_code == 403
    with client_for(portal.url, "mgr-a") as c:  # a manager of other accounts
        token = _csrf(c.get("/portal/c/acme/setup").text)
        assert _post(c, "centres", token, code="X1", name="x").status_code == 404
    with client_for(portal.url, "mgr-b") as c:
        assert _stored(c) == beta_setup["api"], "none of the refused posts stored anything"
        assert 'id="budgets-setup" href="/portal/c/beta/setup#budgets"' in c.get("/portal/c/beta/performance").text


def test_in_the_browser_a_bad_formula_is_named_beside_its_field_and_a_budget_is_set(page, portal, beta_setup):
    """The one browser check: the forms post from Chromium under the CSP (the CSRF token rides along)."""
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    page.add_init_script(WATCH)
    login(page, portal.url, "mgr-b")
    page.goto(f"{portal.url}{SETUP}?lang=en")
    page.select_option("#formula-code", "PRESS")
    page.fill("#formula-formula", "beta-m1 - nosuch-m9")
    page.fill("#formula-valid_from", "2021-01-01")
    page.click("#formula-submit")
    assert page.inner_text("#formula-formula-error") == i18n.text("cs_err_meter", "en", meter="nosuch-m9")
    assert page.input_value("#formula-formula") == "beta-m1 - nosuch-m9", "what was typed stays"
    page.fill("#budget-month", "2030-01")
    page.select_option("#budget-cost_centre", "OFFICE")
    page.fill("#budget-amount", "250.50")
    page.click("#budget-submit")
    page.wait_for_selector("#setup-saved")
    assert page.get_attribute('#budget-list tr[data-month="2030-01"][data-centre="OFFICE"] .amount',
                              "data-amount") == "250.50"
    assert violations(page, console) == []
    page.click('#budget-list tr[data-month="2030-01"] .budget-remove')
    page.wait_for_selector("#setup-saved")
    assert page.locator('#budget-list tr[data-month="2030-01"]').count() == 0
