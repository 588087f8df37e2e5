"""The month view: the bill total on top, days as a chart, the comparison with other months; units everywhere."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from html import unescape

import pytest

from gateway.portal.charts import daily_chart
from gateway.portal.curve_pages import chart_labels, month_extras
from gateway.portal.units import cash, change, q
from gateway.usecases.figures import UseCases
from tests.gateway.portal.test_csp import WATCH, violations
from tests.gateway.portal.test_curve_ranges import hover, ready
from tests.gateway.portal.test_languages import client_for
from tests.gateway.portal.test_portal import login


def _first(world) -> date:
    return date.fromisoformat(world.today["acme"]).replace(day=1)


def _cell(html: str, table: str, metric: str, cls: str) -> str:
    """The text of one cell of a comparison table (`table` its id, `metric` its row, `cls` the cell's class)."""
    part = html.split(f'id="{table}"')[1].split("</table>")[0]
    row = part.split(f'data-metric="{metric}"')[1].split("</tr>")[0]
    cell = row.split(f'class="num {cls}">')[1].split("</td>")[0]
    return unescape(cell.replace('<span class="no-data">', "").replace("</span>", "")).strip()


def test_the_month_page_shows_the_total_and_the_days_chart(page, portal, portal_world):
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    page.add_init_script(WATCH)
    first = _first(portal_world)
    view = UseCases(portal_world.gw).month_view("acme", first)
    login(page, portal.url, "cust-acme")
    page.goto(f"{portal.url}/portal/c/acme/month?month={first:%Y-%m}&lang=en")
    assert page.inner_text("#month-total") == cash(view["total"], "CNY", "en")
    assert page.inner_text("#month-total").endswith(" CNY")
    chart = ready(page, "daily-chart")
    assert chart["n"] == len(view["daily"]), "every day of the month on the axis"
    assert chart["types"][-1] == "scatter"
    assert set(chart["types"][:-1]) == {"bar"}
    assert "Day: all measured" in chart["names"]
    assert chart["names"][-1] == "Peak demand of the day"
    assert page.evaluate("document.getElementById('daily-chart').data.at(-1).yaxis") == "y2", "kW on its own axis"
    last = max(i for i, d in enumerate(view["daily"]) if d["kwh"] is not None)
    label = hover(page, "daily-chart", len(chart["names"]) - 1, last)
    assert label.endswith(" kW"), label
    assert label.split("| ")[-1] == q(view["daily"][last]["peak_kw"], "kW", "en")
    assert violations(page, console) == []


def test_the_comparison_says_no_data_and_never_zero(portal, portal_world):
    first = _first(portal_world)
    v = UseCases(portal_world.gw)
    view = v.month_view("acme", first)
    before = v.month_view("acme", (first - timedelta(days=1)).replace(day=1))  # the history reaches into it
    with client_for(portal.url, "cust-acme") as c:
        html = c.get(f"/portal/c/acme/month?month={first:%Y-%m}&lang=en").text
    # The same month last year: the world's history is ten days long.
    for metric in ("energy", "peak_demand", "total"):
        assert _cell(html, "cmp-last_year", metric, "then") == "No data"
        assert _cell(html, "cmp-last_year", metric, "abs") == "–"
        assert _cell(html, "cmp-last_year", metric, "pct") == "–"
    # The month before: the use cases' figures and their change, with units.
    assert _cell(html, "cmp-prev", "energy", "then") == q(before["kwh"], "kWh", "en")
    assert _cell(html, "cmp-prev", "energy", "abs") == change(view["kwh"], before["kwh"], "kWh", "en")["abs"]
    assert _cell(html, "cmp-prev", "peak_demand", "pct") == change(view["peak_kw"], before["peak_kw"], "kW",
                                                                      "en")["pct"]
    total = _cell(html, "cmp-prev", "total", "abs")
    assert Decimal(total.split()[0].replace(",", "")) == Decimal(str(view["total"])) - Decimal(str(before["total"]))
    assert 'class="incomplete"' in html.split('id="cmp-prev"')[1].split("</tr>")[0], "November is partly covered"
    with client_for(portal.url, "cust-acme") as c:
        html = c.get(f"/portal/c/acme/month?month={first:%Y-%m}&lang=zh").text
    assert _cell(html, "cmp-last_year", "energy", "then") == "无数据"
    assert f'<b id="month-total">{cash(view["total"], "CNY", "zh")}</b>' in html


def test_no_money_without_the_money_capability(portal, portal_world):
    first = _first(portal_world)
    with client_for(portal.url, "eng") as c:
        html = c.get(f"/portal/c/acme/month?month={first:%Y-%m}&lang=en").text
    assert 'id="month-total-card"' not in html
    assert "CNY" not in html
    assert 'data-metric="total"' not in html, "no bill row in the comparison"
    assert 'data-metric="energy"' in html
    assert 'id="daily-chart-data"' in html


def test_without_a_bill_the_page_says_why_and_days_keep_their_status(portal_world):
    first = _first(portal_world)
    v = UseCases(portal_world.gw)
    view = {**v.month_view("acme", first), "total": None, "currency": None}  # as a month without a contract
    extras = month_extras(v, "acme", first, view, "en", money=True)
    assert extras["total_why"] == "cv_no_bill"
    [prev, _] = extras["comparison"]
    total = next(r for r in prev["rows"] if r["metric"] == "total")
    assert total["now"] == "–"
    assert total["abs"] is None
    assert total["pct"] is None

    days = [{"day": f"2026-11-0{k + 1}", "kwh": kwh, "peak_kw": peak, "measured_intervals": m,
             "estimated_intervals": e, "missing_intervals": x, "pending_intervals": p}
            for k, (kwh, peak, m, e, x, p) in enumerate([(100.0, 10.0, 96, 0, 0, 0), (90.0, 9.0, 94, 2, 0, 0),
                                                         (50.0, 8.0, 48, 0, 48, 0), (None, None, 0, 0, 96, 0),
                                                         (20.0, 5.0, 10, 0, 0, 86), (None, None, 0, 0, 0, 96)])]
    chart = daily_chart(days, chart_labels("en"), "en")
    bars = {t["name"]: t["y"] for t in chart["traces"] if t["type"] == "bar"}
    assert bars == {"Day: all measured": [100.0, None, None, None, None, None],
                    "Day with estimated intervals": [None, 90.0, None, None, None, None],
                    "Day with missing intervals (energy incomplete)": [None, None, 50.0, None, None, None],
                    "Day not over yet": [None, None, None, None, 20.0, None]}
    assert chart["traces"][-1]["y"] == [10.0, 9.0, 8.0, None, 5.0, None], "no peak drawn where there is none"
    assert chart["traces"][0]["customdata"][2] == "50.0 kWh (Measured 48 · Missing 48)"
    marks = [(s["name"], s["x0"], s["x1"]) for s in chart["layout"]["shapes"]]
    assert marks == [("Missing", "2026-11-03 12:00", "2026-11-04 12:00"),
                     ("Pending", "2026-11-05 12:00", "2026-11-06 12:00")]


@pytest.mark.parametrize(("value", "unit", "lang", "expected"), [
    (4322.637, "kW", "en", "4,323 kW"), (4322.637, "kW", "zh", "4,323 kW"), (87.46, "kWh", "en", "87.5 kWh"),
    (99.96, "kW", "en", "100 kW"), (12.25, "kvarh", "en", "12.2 kvarh"), (0.934, "pf", "en", "0.93"),
    (12.345, "%", "en", "12.3%"), (None, "kW", "en", "–"), (float("nan"), "kWh", "zh", "–"), (1234, "", "en", "1,234"),
])
def test_one_rule_for_units_and_precision(value, unit, lang, expected):
    assert q(value, unit, lang) == expected


def test_money_is_exact_to_the_cent_with_its_currency():
    assert cash(0.1 + 0.2, "CNY", "en") == "0.30 CNY"
    assert cash(1234567.5, "CNY", "zh") == "1,234,567.50 CNY"
    assert cash(None, "CNY", "en") == "–"
    assert change(120234.63, 167016.43, "", "en", "CNY") == {"abs": "-46,781.80 CNY", "pct": "-28.0%"}
    assert change(44058.1, None, "kWh", "en") == {"abs": None, "pct": None}, "no data is no change, never 0"
    assert change(5.0, 0.0, "kW", "en")["pct"] == "–"
