"""Curve ranges (week, month, year), kW now and units on hover: one Chromium session, the rest over HTTP."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from collectors.reading import ACTIVE_POWER_KW
from gateway.portal.charts import interval_chart
from gateway.portal.curve_pages import chart_labels, live_sites, span_of
from gateway.portal.units import q
from gateway.usecases.figures import UseCases
from tests.gateway.api.world import CUSTOMERS
from tests.gateway.portal.hostile import HOSTILE
from tests.gateway.portal.test_csp import WATCH, violations
from tests.gateway.portal.test_escaping import scan
from tests.gateway.portal.test_languages import client_for
from tests.gateway.portal.test_portal import curve_points, login

HOVER_TEXT = "Array.from(document.querySelectorAll('#{0} .hoverlayer text')).map(t => t.textContent).join(' | ')"


def hover(page, target: str, curve: int, point: int) -> str:
    """The hover label plotly draws for one point of one trace, as the reader sees it."""
    page.evaluate("t => Plotly.Fx.unhover(t)", target)
    page.wait_for_function(f"({HOVER_TEXT}).length === 0".replace("{0}", target))
    page.evaluate("([t, c, p]) => Plotly.Fx.hover(t, [{curveNumber: c, pointNumber: p}])", [target, curve, point])
    page.wait_for_function(f"({HOVER_TEXT}).length > 0".replace("{0}", target))
    return page.evaluate(HOVER_TEXT.replace("{0}", target))


def ready(page, target: str) -> dict:
    page.wait_for_selector(f"#{target}[data-ready='1']")
    return page.evaluate(f"(() => {{ const g = document.getElementById('{target}'); "
                         "return {names: g.data.map(t => t.name), n: g.data[0].x.length, "
                         "types: g.data.map(t => t.type || 'scatter')}; })()")


def test_week_month_year_and_kw_now_in_the_browser(page, portal, portal_world):
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    page.add_init_script(WATCH)
    page.clock.install()  # the kW-now page polls every 10 s: the test moves the clock instead of waiting
    login(page, portal.url, "cust-acme")
    day = date.fromisoformat(portal_world.today["acme"])

    # The day page: the same unit rules on hover, and the range links.
    page.goto(f"{portal.url}/portal/c/acme/day?date={day}&lang=en")
    curve_points(page)
    label = hover(page, "curve", 0, 40)
    assert " kW" in label, label
    page.click("#range-week")
    page.wait_for_url(f"**/portal/c/acme/curve?range=week&date={day}")

    # Week: Monday to Sunday, 15-min, every value with its unit on hover.
    week = ready(page, "range-chart")
    assert week["n"] == 7 * 96
    monday = day - timedelta(days=day.weekday())
    assert page.get_attribute("#range-shown", "data-first") == monday.isoformat()
    k = (day - monday).days * 96 + 40
    week_kw = page.evaluate(f"document.getElementById('range-chart').data[0].y[{k}]")
    label = hover(page, "range-chart", 0, k)
    assert label == f"Actual | {q(week_kw, 'kW', 'en')}", label

    # Month: hourly buckets, mean and max, the legend saying which.
    page.click("#range-month")
    page.wait_for_url("**range=month**")
    month = ready(page, "range-chart")
    first = day.replace(day=1)
    hours = (datetime.combine(span_of("month", day).next, datetime.min.time(), ZoneInfo(CUSTOMERS["acme"]))
             - datetime.combine(first, datetime.min.time(), ZoneInfo(CUSTOMERS["acme"]))).total_seconds() / 3600
    assert month["n"] == hours
    assert {"Hourly mean", "Hourly max (15-min demand)"} <= set(month["names"])

    # Year: days as bars of kWh and the day's peak in kW.
    page.click("#range-year")
    page.wait_for_url("**range=year**")
    year = ready(page, "range-chart")
    assert "bar" in year["types"]
    assert year["names"][-1] == "Peak demand of the day"
    assert year["n"] in (365, 366)
    peak = page.evaluate("document.getElementById('range-chart').data.length - 1")
    nth = (day - day.replace(month=1, day=1)).days
    label = hover(page, "range-chart", peak, nth)
    assert label.startswith("Peak demand of the day | "), label
    assert label.endswith(" kW"), label
    label = hover(page, "range-chart", 0, nth)  # the first bar trace: days all measured (the world's history)
    assert " kWh (Measured 96)" in label, label
    assert violations(page, console) == [], "drawn under the Content-Security-Policy"

    # kW now: the table is there at once and rewritten from live.json on the next tick.
    page.click("#range-live")
    page.wait_for_url("**/portal/c/acme/live")
    row = page.locator("#live tr[data-site='acme-site']")
    assert row.locator(".kw").inner_text().endswith(" kW")
    assert page.get_attribute("#live", "data-polls") is None
    page.clock.run_for(11_000)
    page.wait_for_selector("#live[data-polls='1']")
    assert row.locator(".kw").inner_text().endswith(" kW")
    assert row.locator(".today").inner_text().strip().endswith("kWh")
    assert page.is_hidden("#live-failed")
    assert violations(page, console) == []


def test_old_and_new_curve_urls_and_bad_input(portal, portal_world):
    day = portal_world.today["acme"]
    with client_for(portal.url, "cust-acme") as c:
        assert c.get(f"/portal/c/acme/day?date={day}").status_code == 200, "the day page's URL still works"
        r = c.get(f"/portal/c/acme/curve?range=day&date={day}")
        assert r.status_code == 303
        assert r.headers["location"] == f"/portal/c/acme/day?date={day}"
        for query, where in (("range=decade", "range"), (f"range=week&date={day[:4]}-13-01", "date")):
            r = c.get(f"/portal/c/acme/curve?{query}&lang=en")
            assert r.status_code == 422, query
            assert where in r.text, f"the error names {where}"
        r = c.get("/portal/c/acme/curve?range=week&date=2026-06-15&lang=zh")
        assert r.status_code == 200
        assert "年" in r.text
        assert 'id="range-chart-data"' in r.text
    with client_for(portal.url, "cust-beta") as c:
        assert c.get(f"/portal/c/acme/curve?range=week&date={day}").status_code == 404


def test_kw_now_json_for_the_own_customer_only(portal, portal_world):
    with client_for(portal.url, "cust-acme") as c:
        r = c.get("/portal/c/acme/live.json?lang=en")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        assert r.headers["cache-control"] == "no-store"
        body = r.json()
        [site] = body["sites"]
        newest = [x for x in portal_world.gw.store.latest(["acme-dev"]) if x.point == ACTIVE_POWER_KW]
        assert site["site"] == "acme-site"
        assert site["kw"] == pytest.approx(newest[0].value)
        assert site["kw_text"].endswith(" kW")
        assert site["age_s"] >= 0
        assert site["age_text"].endswith(" ago")
        assert site["status"] in ("live", "stale")
        assert site["today_kwh"] is not None
        assert site["today_kwh_text"].endswith(" kWh")
        assert c.get("/portal/c/beta/live.json").status_code == 404, "another customer's: not found"
        assert c.get("/portal/c/beta/live").status_code == 404
    with client_for(portal.url, "mgr-b") as c:  # beta's manager: beta yes, acme no
        assert c.get("/portal/c/beta/live.json").status_code == 200
        assert c.get("/portal/c/acme/live.json").status_code == 404
    with httpx.Client(base_url=portal.url) as anonymous:
        r = anonymous.get("/portal/c/acme/live.json")
        assert r.status_code in (303, 401)
        assert "acme-site" not in r.text


def test_a_reading_older_than_its_limit_is_stale(portal_world):
    gw = portal_world.gw
    v = UseCases(gw)
    [newest] = [x for x in gw.store.latest(["gamma-dev"]) if x.point == ACTIVE_POWER_KW]
    fresh = live_sites(gw, v, "gamma", ["gamma-site"], "en", now_ns=newest.source_ts + 12 * 10**9)
    assert fresh["sites"][0]["status"] == "live"
    assert fresh["sites"][0]["age_text"] == "12 seconds ago"
    old = live_sites(gw, v, "gamma", ["gamma-site"], "zh", now_ns=newest.source_ts + 600 * 10**9)
    assert old["sites"][0]["status"] == "stale"
    assert old["sites"][0]["status_text"] == "过时：近期无读数"
    assert old["sites"][0]["age_text"] == "10分钟前"
    assert old["sites"][0]["kw"] == fresh["sites"][0]["kw"], "the same reading, only older"


def test_an_hour_with_a_missing_interval_is_a_gap_on_both_lines():
    start = datetime(2026, 11, 2, tzinfo=ZoneInfo("Asia/Shanghai"))
    rows = []
    for h, (st, counts) in enumerate([("measured", (4, 0, 0, 0)), ("estimated", (2, 2, 0, 0)),
                                       ("missing", (3, 0, 1, 0)), ("missing", (0, 0, 4, 0)),
                                       ("measured", (4, 0, 0, 0)), ("pending", (0, 0, 0, 4))]):
        has = counts[0] + counts[1] > 0
        rows.append({"start": (start + timedelta(hours=h)).isoformat(), "status": st,
                     "kw_mean": 100.0 + h if has else None, "demand_max_kw": 150.0 + h if has else None,
                     **dict(zip(("measured_intervals", "estimated_intervals", "missing_intervals",
                                 "pending_intervals"), counts, strict=True))})
    chart = interval_chart(rows, 60, chart_labels("en"), "en")
    by = {t["name"]: t for t in chart["traces"] if t.get("showlegend") is not False}
    assert by["Hourly mean"]["y"] == [100.0, None, None, None, 104.0, None]
    assert by["Estimated"]["y"] == [None, 101.0, None, None, None, None]
    assert by["Hourly max (15-min demand)"]["y"] == [150.0, 151.0, None, None, 154.0, None]
    incomplete = by["Hour with missing intervals (mean of the rest)"]
    assert incomplete["y"] == [None, None, 102.0, None, None, None]
    assert incomplete["customdata"][2] == "102 kW (Measured 3 · Missing 1)"
    marks = [(s["name"], s["x0"][11:], s["x1"][11:]) for s in chart["layout"]["shapes"]]
    assert marks == [("Missing", "02:00", "04:00"), ("Pending", "05:00", "06:00")]



def test_hostile_customer_and_site_names_stay_text(portal_world):
    """The live page and a range page rendered by the portal's own Jinja environment with hostile names."""
    from gateway.portal import templates
    from gateway.portal.curve_pages import range_view

    v = UseCases(portal_world.gw)
    live = live_sites(portal_world.gw, v, "acme", ["acme-site"], "en")
    live["sites"][0]["name"] = HOSTILE
    common = {"lang": "en", "customer": "acme", "customer_name": HOSTILE, "timezone": "Asia/Shanghai",
              "user": None, "csrf": "", "can": lambda _: True, "q": lambda x, unit="": q(x, unit, "en")}
    pages = {"live.html.j2": {"live": live, "page": "live"},
             "curve.html.j2": {"view": range_view(v, "acme", "week", date.fromisoformat(portal_world.today["acme"]),
                                                  "en"), "day": portal_world.today["acme"], "page": "day"}}
    for name, ctx in pages.items():
        html = templates.env.get_template(name).render(**common, **ctx)
        found = scan(html)
        assert found.problems == [], name
        assert HOSTILE in "".join(found.text), f"{name}: the names shown as text"
