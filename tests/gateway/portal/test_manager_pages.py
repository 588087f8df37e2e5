"""The account manager's workspace in headless Chromium: the portfolio and an account's page.

The portfolio sorts and filters on the server and shows the one month bill's figures (the same digits as the month
API); the account page adds a contact and an inspection through its forms, and a tier override is refused without a
reason and kept with one. Manager B can neither open manager A's account page nor post its forms.

These tests change the registry (contacts, inspections, tiers), so they run on a world of their own rather than the
portal tests' shared one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.gateway.api.world import RunningApi, World, build_world
from tests.gateway.portal.test_languages import client_for
from tests.gateway.portal.test_portal import login


@pytest.fixture(scope="module")
def mgr_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    os.environ.setdefault("GATEWAY_SECRET_KEY", "test-secret-key-0123456789abcdef")
    return build_world(tmp_path_factory.mktemp("managerworld"))


@pytest.fixture(scope="module")
def mgr_portal(mgr_world: World) -> Iterator[RunningApi]:
    from gateway.usecases.portfolio import portfolio_cache

    with RunningApi(mgr_world.gw) as api:
        # Every figure on the first load, however slow the machine (a page waits only seconds for them otherwise).
        portfolio_cache(api.server.config.app.state.usecases).SYNC_BUDGET_S = 3600.0
        yield api


def _rows(page) -> list[str]:  # type: ignore[no-untyped-def]
    return page.eval_on_selector_all("#portfolio tbody tr[data-customer]", "rs => rs.map(r => r.dataset.customer)")


def _attr(page, customer: str, name: str) -> str:  # type: ignore[no-untyped-def]
    return page.get_attribute(f"#portfolio tr[data-customer='{customer}']", name) or ""


def test_the_portfolio_sorts_filters_and_shows_the_month_bill(page, mgr_portal, mgr_world):
    login(page, mgr_portal.url, "mgr-a")
    page.goto(f"{mgr_portal.url}/portal/accounts?lang=en")
    page.wait_for_selector("#portfolio[data-computing='0']")
    assert sorted(_rows(page)) == ["acme", "gamma"], "manager A's accounts, and only those"
    assert page.inner_text("#portfolio-count") == "2 of 2 accounts"
    row = page.locator("#portfolio tr[data-customer='acme']")
    assert row.locator(".alerts .sev-warning").inner_text() == "Warning 1", "the world's open warning for acme"

    # Sorting: a click on the header sorts ascending, a second click descending (server-side: the URL says so).
    page.click("#sort-kwh")
    page.wait_for_url("**sort=kwh**order=asc**")
    up = _rows(page)
    kwh = {c: float(_attr(page, c, "data-kwh")) for c in up}
    assert up == sorted(kwh, key=kwh.__getitem__)
    page.click("#sort-kwh")
    page.wait_for_url("**order=desc**")
    assert _rows(page) == up[::-1]
    assert kwh["gamma"] > kwh["acme"], "gamma's meter is the larger of the two (peak 3000 against 1000 kW)"

    # Filtering keeps the sort and narrows the rows; the tier filter finds no tiered account in a fresh world.
    page.fill("#filter-q", "gam")
    page.click("#filter-apply")
    page.wait_for_url("**q=gam**")
    assert _rows(page) == ["gamma"]
    assert page.inner_text("#portfolio-count") == "1 of 2 accounts"
    page.fill("#filter-q", "")
    page.select_option("#filter-tier", "A")
    page.click("#filter-apply")
    page.wait_for_url("**tier=A**")
    assert _rows(page) == []
    assert page.is_visible("#portfolio-empty")
    page.click("#filter-clear")
    page.wait_for_url("**/portal/accounts")

    # The figures are the month API's (the one month bill), to the digit, this month and the month before.
    page.goto(f"{mgr_portal.url}/portal/accounts?lang=en")
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    compared = 0
    for first, kwh_attr, bill_attr in ((today.replace(day=1), "data-kwh", "data-bill"),
                                       ((today.replace(day=1) - timedelta(days=1)).replace(day=1),
                                        "data-last-month-kwh", "data-last-month-bill")):
        r = page.request.get(f"{mgr_portal.url}/api/v1/customers/acme/month?month={first:%Y-%m}")
        if r.status == 404:  # no data in that month (just after the 1st, or the history does not reach it)
            assert _attr(page, "acme", kwh_attr) == ""
            continue
        assert r.status == 200, r.text()
        view = r.json()
        assert float(_attr(page, "acme", kwh_attr)) == view["kwh"]
        assert float(_attr(page, "acme", bill_attr)) == view["total"]
        compared += 1
    assert compared >= 1, "the world's ten days of history reach this month or the one before"
    shown = row.locator(".bill").inner_text()
    assert shown.startswith("CN¥"), shown
    assert shown.replace("CN¥", "").replace(",", "").isdigit(), shown

    page.goto(f"{mgr_portal.url}/portal/accounts?lang=zh")
    assert page.locator("#portfolio thead th").first.inner_text().startswith("客户")
    assert page.locator("#portfolio tr[data-customer='acme'] .bill").inner_text().startswith("¥")


def test_the_account_page_adds_a_contact_and_an_inspection_and_overrides_the_tier(page, mgr_portal, mgr_world):
    login(page, mgr_portal.url, "mgr-a")
    page.goto(f"{mgr_portal.url}/portal/accounts/gamma?lang=en")
    assert page.inner_text("#account-name").startswith("Gamma Works")
    assert page.get_attribute("#link-day", "href") == "/portal/c/gamma/day"
    assert page.get_attribute("#link-month", "href") == "/portal/c/gamma/month"
    assert page.locator("#contract-list tr[data-contract]").count() == 1, "the world's one contract version"

    # A contact: a bad e-mail comes back next to its field (422), with what was typed kept; then a good one.
    page.fill("#contact_new-name", "Li Wei")
    page.fill("#contact_new-email", "li.wei-at-gamma")
    page.click("#contact_new-submit")
    page.wait_for_selector("#contact_new-email-error")
    assert page.inner_text("#contact_new-email-error") == "Not in the expected form."
    assert page.input_value("#contact_new-name") == "Li Wei"
    page.fill("#contact_new-email", "li.wei@gamma.example")
    page.fill("#contact_new-phone", "+86 20 0000 0000")
    page.click("#contact_new-submit")
    page.wait_for_selector("#account-saved")
    contact = page.locator("#contact-list tr[data-contact]")
    assert contact.count() == 1
    assert contact.locator("input[name=email]").input_value() == "li.wei@gamma.example"

    # Equipment, then an inspection with its next due date already past: the row is flagged overdue.
    page.fill("#equipment_new-name", "Main transformer T1")
    page.fill("#equipment_new-rating", "4000")
    page.fill("#equipment_new-rating_unit", "kVA")
    page.click("#equipment_new-submit")
    page.wait_for_selector("#equipment-list tr[data-equipment]")
    eq = page.get_attribute("#equipment-list tr[data-equipment]", "data-equipment")
    today = date.today()
    page.fill(f"#inspection_{eq}-on", (today - timedelta(days=400)).isoformat())
    page.fill(f"#inspection_{eq}-next_due", (today - timedelta(days=430)).isoformat())
    page.click(f"#inspection_{eq}-submit")
    page.wait_for_selector(f"#inspection_{eq}-next_due-error")
    assert page.inner_text(f"#inspection_{eq}-next_due-error") == "The next inspection must come after this one."
    page.fill(f"#inspection_{eq}-next_due", (today - timedelta(days=35)).isoformat())
    page.fill(f"#inspection_{eq}-result", "ok")
    page.click(f"#inspection_{eq}-submit")
    page.wait_for_selector("#account-saved")
    eq_row = page.locator(f"#equipment-list tr[data-equipment='{eq}']")
    assert eq_row.locator(".inspections li").count() == 1
    assert eq_row.get_attribute("class") == "overdue"
    assert eq_row.locator(".next-due .overdue-flag").inner_text() == "overdue"

    # The tier: an override without a reason is refused next to the field, in the reader's language.
    page.goto(f"{mgr_portal.url}/portal/accounts/gamma?lang=zh")
    page.select_option("#tier-tier", "A")
    page.click("#tier-submit")
    page.wait_for_selector("#tier-reason-error")
    assert page.inner_text("#tier-reason-error") == "请填写变更原因。"
    assert page.locator("#tier-history .new-tier").count() == 0, "nothing changed"
    page.fill("#tier-reason", "strategic: new rolling mill in 2027")
    page.click("#tier-submit")
    page.wait_for_selector("#account-saved")
    assert page.inner_text("#tier-effective") == "A"
    assert page.locator("#tier-history .new-tier").first.inner_text() == "A"
    assert page.locator("#tier-history .reason").first.inner_text() == "人工设定：strategic: new rolling mill in 2027"

    # The portfolio shows the new tier and its change; the audit log has who did it.
    page.goto(f"{mgr_portal.url}/portal/accounts?lang=en&tier=A")
    assert _rows(page) == ["gamma"]
    assert page.locator("#portfolio tr[data-customer='gamma'] .tier-change").inner_text().startswith("C → A")
    from sqlalchemy import select

    from gateway.auth.models import AuditEvent

    with mgr_world.gw.db() as s:
        actions = [(a.actor, a.action) for a in s.scalars(select(AuditEvent).where(
            AuditEvent.target.in_(["customer:gamma", f"equipment:{eq}"])))]
    assert ("mgr-a", "tier.override") in actions
    assert ("mgr-a", "registry.inspection.add") in actions


def _csrf(c: httpx.Client) -> str:
    return c.get("/portal/password").text.split('name="csrf_token" value="')[1].split('"')[0]


def test_manager_b_cannot_open_or_change_manager_a_accounts(mgr_portal, mgr_world):
    with client_for(mgr_portal.url, "mgr-b") as b:
        csrf = _csrf(b)
        assert b.get("/portal/accounts/beta").status_code == 200, "its own account"
        assert b.get("/portal/accounts/acme").status_code == 404
        posts = {"/portal/accounts/acme/contacts": {"name": "Intruder"},
                 "/portal/accounts/acme/equipment": {"kind": "motor", "name": "M9"},
                 "/portal/accounts/acme/interactions": {"channel": "visit", "summary": "was here"},
                 "/portal/accounts/acme/tier": {"tier": "C", "reason": "because"}}
        for path, data in posts.items():
            r = b.post(path, data={"csrf_token": csrf, **data})
            assert r.status_code == 404, (path, r.status_code)
        portfolio = b.get("/portal/accounts").text
        assert 'data-customer="beta"' in portfolio
        assert 'data-customer="acme"' not in portfolio
    with client_for(mgr_portal.url, "eng") as eng:
        assert eng.get("/portal/accounts/acme").status_code == 403, "engineers keep no customer files"
    with client_for(mgr_portal.url, "mgr-a") as a:
        page = a.get("/portal/accounts/acme").text
        assert "Intruder" not in page
        assert "was here" not in page
        assert 'id="tier-override"' not in page


def test_a_new_contract_version_keeps_the_history(mgr_portal):
    with client_for(mgr_portal.url, "mgr-a") as a:
        csrf = _csrf(a)
        terms = {"csrf_token": csrf, "transformer_kva": "4000", "contract_demand_kw": "1000",
                 "basic_charge_mode": "contract", "pf_standard": "0.90", "tariff_id": "guangdong-1-10kv"}
        first = date.today().replace(day=1)
        r = a.post("/portal/accounts/acme/contracts?lang=en", data={**terms, "valid_from": first.isoformat()})
        assert r.status_code == 422
        assert ('id="contract_new-contract_demand_kw-error">Below the floor of 40 % of the capacity (transformer kVA '
                'plus HV motors).<') in r.text, "1000 kW is below 40 % of 4000 kVA"
        r = a.post("/portal/accounts/acme/contracts?lang=en", data={**terms, "valid_from": first.isoformat(),
                                                                     "contract_demand_kw": "1800"})
        assert r.status_code == 303, r.text
        r = a.post("/portal/accounts/acme/contracts?lang=zh", data={**terms, "valid_from": first.isoformat(),
                                                                     "contract_demand_kw": "1900"})
        assert r.status_code == 422
        assert 'id="contract_new-valid_from-error">已有版本在此日期或之后生效。<' in r.text
        page = a.get("/portal/accounts/acme").text
    rows = page.split('<table id="contract-list">')[1].split("</table>")[0].count("data-contract=")
    assert rows == 2, "the new version and the one it closed"
    assert f"<td>{first.isoformat()}</td>" in page, "the old version ends the day the new one starts"


def test_a_visit_shows_on_the_portfolio_and_a_contact_is_changed_then_retired(mgr_portal):
    with client_for(mgr_portal.url, "mgr-a") as a:
        csrf = _csrf(a)
        r = a.post("/portal/accounts/acme/interactions?lang=en", data={"csrf_token": csrf, "channel": "visit",
                                                                       "summary": " "})
        assert r.status_code == 422
        assert 'id="interaction_new-summary-error">Required.<' in r.text
        r = a.post("/portal/accounts/acme/interactions", data={"csrf_token": csrf, "channel": "visit",
                                                               "summary": "Walked the rolling mill with Li"})
        assert r.status_code == 303
        row = a.get("/portal/accounts?lang=en&q=acme").text.split('data-customer="acme"')[1].split("</tr>")[0]
        assert '<td class="num visit">0 days ago</td>' in row
        r = a.post("/portal/accounts/acme/contacts", data={"csrf_token": csrf, "name": "Wang Fang", "role": "energy"})
        assert r.status_code == 303
        page = a.get("/portal/accounts/acme").text
        contact = page.split('<tr data-contact="')[1].split('"')[0]
        r = a.post(f"/portal/accounts/acme/contacts/{contact}?lang=en",
                   data={"csrf_token": csrf, "name": "", "role": "energy"})
        assert r.status_code == 422
        assert f'id="contact_{contact}-name-error">Required.<' in r.text, "a contact keeps a name"
        r = a.post(f"/portal/accounts/acme/contacts/{contact}",
                   data={"csrf_token": csrf, "name": "Wang Fang", "phone": "+86 21 1234 5678", "role": "energy"})
        assert r.status_code == 303
        assert 'value="+86 21 1234 5678"' in a.get("/portal/accounts/acme").text
        r = a.post(f"/portal/accounts/acme/contacts/{contact}",
                   data={"csrf_token": csrf, "name": "Wang Fang", "retire": "1"})
        assert r.status_code == 303
        assert f'<tr data-contact="{contact}"' not in a.get("/portal/accounts/acme").text, "retired: off the list"
