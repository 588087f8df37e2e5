"""The cost-centre page on the real gateway: it shows the API view's figures (read back from the HTML), in zh and
en, to the customer's own users only, and kWh without money to an engineer."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from html import unescape

import pytest

from gateway.portal import i18n
from gateway.portal.units import cash, q
from gateway.usecases import allocation as uc_alloc
from gateway.usecases.allocation import CostCentreIn, FormulaIn, RuleIn
from gateway.usecases.figures import UseCases
from gateway.usecases.performance import Performance
from tests.gateway.portal.conftest import clear_cost_setup
from tests.gateway.portal.test_languages import client_for

PAGE = "/portal/c/beta/costs/PRESS"


def _attr(html: str, ident: str, attr: str) -> str:
    m = re.search(rf'id="{ident}"[^>]*\b{attr}="([^"]*)"', html)
    assert m, f"no {ident} with {attr}"
    return unescape(m.group(1))


@pytest.fixture(scope="module")
def beta_month(portal_world) -> Iterator[str]:
    """beta: a press metered by beta-m1 and an office, shared 80/20, with two days' output of the line PRESS."""
    clear_cost_setup(portal_world, "beta")
    gw = portal_world.gw
    v = UseCases(gw)
    last = date.fromisoformat(portal_world.today["beta"])
    with gw.db() as s:
        uc_alloc.put_cost_centre(s, "beta", "PRESS", CostCentreIn(name="Press <b>shop</b>", kind="line"))
        uc_alloc.add_formula(v, s, "beta", "PRESS", FormulaIn(formula="beta-m1", valid_from=date(2020, 1, 1)))
        uc_alloc.put_cost_centre(s, "beta", "OFFICE", CostCentreIn(name="Offices"))
        uc_alloc.add_rule(s, "beta", RuleIn(rule="fixed", valid_from=date(2020, 1, 1),
                                            shares={"PRESS": Decimal("0.8"), "OFFICE": Decimal("0.2")}))
        days = [d for d in (last, last - timedelta(days=1)) if d.month == last.month]
        csv = "date,output,unit,line\n" + "".join(f"{d},{50 + i},t,PRESS\n" for i, d in enumerate(days))
        Performance(v, s).upload("test", "beta", csv.encode(), "actual")
    yield f"{last:%Y-%m}"
    clear_cost_setup(portal_world, "beta")


def test_the_page_shows_the_apis_figures_to_its_own_customer_and_kwh_without_money(portal, beta_month):
    with client_for(portal.url, "mgr-b") as c:
        api = c.get(f"/api/v1/customers/beta/cost-centres/PRESS/view?month={beta_month}").json()
        r = c.get(f"{PAGE}?month={beta_month}&lang=en")
        assert r.status_code == 200, r.text[:500]
        html = r.text
        line = api["share"]["line"]
        assert Decimal(_attr(html, "cc-share-total", "data-total")) == Decimal(line["total"])
        assert cash(line["total"], "CNY", "en") in html
        shown = html.split('id="cc-share-kwh">')[1].split("<")[0]
        assert shown == q(line["kwh"], "kWh", "en")
        amounts = dict(re.findall(r'data-element="([^"]*)" data-amount="([^"]*)"', html))
        assert {k: Decimal(a) for k, a in amounts.items()} == {m["element"]: Decimal(m["amount"])
                                                                for m in line["money"]}
        assert float(_attr(html, "cc-curve-kwh", "data-kwh")) == pytest.approx(api["curve"]["kwh"], abs=1e-3)
        assert html.split('id="measured-count">')[1].split("<")[0] == q(api["curve"]["counts"]["measured"])
        sec_days = {d["day"]: d for d in api["sec"]["days"] if d["output"] is not None}
        assert sec_days, "the uploaded output of the line"
        for day, d in sec_days.items():
            cell = re.search(rf'data-day="{day}" data-sec="([^"]*)"', html).group(1)
            assert cell == ("" if d["sec"] is None else str(d["sec"])), "SEC is the use case's"
        month_sec = api["sec"]["month"]["sec"]
        assert _attr(html, "cc-month-sec", "data-sec") == ("" if month_sec is None else str(month_sec))
        assert int(_attr(html, "cc-month-sec", "data-excluded")) == api["sec"]["month"]["excluded_days"]
        assert "baseline needs at least" in html
        assert _attr(html, "cc-budget", "data-projected") == (api["budget"]["projected"] or "")
        assert 'id="range-chart-data"' in html
        assert not {k for k, _ in i18n.MISSING if k.startswith(("cc_", "ep_"))}, "every text in the catalogue"
        assert "Press <b>shop</b>" not in html, "names are text"
        assert "Press &lt;b&gt;shop&lt;/b&gt;" in html
        zh = c.get(f"{PAGE}?month={beta_month}&lang=zh").text
        assert "成本中心 PRESS" in zh
        assert cash(line["total"], "CNY", "zh") in zh
        costs = c.get(f"/portal/c/beta/costs?month={beta_month}&lang=en").text
        assert f'href="{PAGE}?month={beta_month}"' in costs, "each row of the costs table links to its page"
        week = c.get(f"{PAGE}?month={beta_month}&range=week&lang=en")
        assert week.status_code == 200
        assert 'data-range="week"' in week.text
    with client_for(portal.url, "eng") as c:
        html = c.get(f"{PAGE}?month={beta_month}&lang=en").text
        assert 'id="cc-share-kwh"' in html, "kWh for an engineer"
        assert 'id="cc-share-total"' not in html, "no money"
        assert 'id="cc-budget"' not in html
        assert " CNY" not in html
    with client_for(portal.url, "cust-acme") as c:
        assert c.get(PAGE).status_code == 404, "another customer's page"
    with client_for(portal.url, "cust-beta") as c:
        assert c.get(f"{PAGE}?lang=en").status_code == 200
        missing = c.get("/portal/c/beta/costs/NOPE")
        assert missing.status_code == 404
        bad = c.get(PAGE, params={"month": "<script>"})
        assert bad.status_code == 422
        assert "<script>" not in bad.text


def hostile_page(hostile, cid: str) -> str:
    """For test_escaping: a cost centre of `cid` named with the hostile text (made once) and its page's path."""
    from tests.gateway.portal.hostile import HOSTILE

    gw = hostile.gw
    with gw.db() as s:
        if not any(c.code == "HOSTILE-1" for c in uc_alloc.cost_centres(s, cid)):
            uc_alloc.put_cost_centre(s, cid, "HOSTILE-1", CostCentreIn(name=HOSTILE[:200]))
            uc_alloc.add_formula(UseCases(gw), s, cid, "HOSTILE-1", FormulaIn(formula=f"{cid}-m1",
                                                                              valid_from=date(2020, 1, 1)))
    return f"/portal/c/{cid}/costs/HOSTILE-1?month={hostile.today[cid][:7]}"
