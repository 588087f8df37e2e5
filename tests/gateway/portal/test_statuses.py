"""Measured, estimated, missing, pending in the portal (headless Chromium): each interval shown as what it is."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from crm_bridge.registry.models import Contract, Customer
from crm_bridge.tariffs import load_tariff
from tests.gateway.api.world import CUSTOMERS, RunningApi
from tests.gateway.portal.gaps import GapWorld, build_gap_world
from tests.gateway.portal.test_csp import WATCH, violations
from tests.gateway.portal.test_portal import curve_points, login

COUNTS = ("measured", "estimated", "missing", "pending")
RAISED_CONTRACT_KW = 1000.0  # below 40 % of the world's 4,000 kVA: in force at 1,600 kW


@pytest.fixture(scope="module")
def gaps(tmp_path_factory: pytest.TempPathFactory) -> GapWorld:
    os.environ.setdefault("GATEWAY_SECRET_KEY", "test-secret-key-0123456789abcdef")
    g = build_gap_world(tmp_path_factory.mktemp("gapworld"))
    with g.world.gw.db() as s:  # acme's contract set below the 40 % floor, for the month page's basic charge
        contract = s.scalar(select(Contract).join(Customer).where(Customer.code == "acme"))
        assert contract is not None
        contract.contract_demand_kw = RAISED_CONTRACT_KW
        s.commit()
    return g


@pytest.fixture(scope="module")
def gap_portal(gaps: GapWorld) -> Iterator[RunningApi]:
    with RunningApi(gaps.world.gw) as api:
        yield api


def counts(page) -> dict[str, int]:
    return {s: int(page.inner_text(f"#{s}-count").replace(",", "")) for s in COUNTS}


def trace(page, name: str) -> dict | None:
    return page.evaluate("n => document.getElementById('curve').data.find(t => t.name === n && t.showlegend !== false)"
                         " || null", name)


def at(xs: list[str], ys: list[float | None], wanted: bool = True) -> list[str]:
    """The local HH:MM of the points with (or without) a value."""
    return [x[11:16] for x, y in zip(xs, ys, strict=True) if (y is not None) == wanted]


def test_today_counts_the_hours_not_yet_reached_as_pending_not_missing(page, portal):
    login(page, portal.url, "cust-acme")  # acme reads Chinese
    today = datetime.now(ZoneInfo(CUSTOMERS["acme"])).date().isoformat()
    page.goto(f"{portal.url}/portal/c/acme/day?date={today}&lang=zh")
    assert curve_points(page) == 96
    shown = counts(page)
    summary = page.request.get(f"{portal.url}/api/v1/customers/acme/day-curve?date={today}").json()["summary"]
    assert shown == {s: summary[f"{s}_intervals"] for s in COUNTS}, "the page shows the use case's counts"
    assert shown["missing"] == 0, "the hours not yet reached are not missing"
    assert shown["pending"] >= 1
    assert sum(shown.values()) == 96
    assert "待采集" in page.inner_text("#interval-counts")
    assert "尚未到达" in page.inner_text("#pending-note")
    actual = trace(page, "实际")
    assert len([y for y in actual["y"] if y is not None]) == shown["measured"], "nothing drawn where pending"
    assert actual["connectgaps"] is False
    pending = page.evaluate("document.getElementById('curve').layout.shapes.filter(s => s.legendgroup === 'pending')")
    assert len(pending) == 1, "the time not yet reached is greyed"
    assert pending[0]["name"] == "待采集"
    assert pending[0]["x1"].endswith("00:00"), "to the end of the day"
    page.goto(f"{portal.url}/portal/c/acme/day?date={today}&lang=en")
    assert "Pending" in page.inner_text("#interval-counts")
    assert "neither missing nor zero" in page.inner_text("#pending-note")
    assert page.locator("#missing-note").count() == 0


def test_estimated_intervals_have_their_own_trace_and_missing_ones_are_gaps(page, gap_portal, gaps):
    page.add_init_script(WATCH)
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    login(page, gap_portal.url, "cust-acme")
    page.goto(f"{gap_portal.url}/portal/c/acme/day?date={gaps.day}&lang=en")
    assert curve_points(page) == 96
    assert counts(page) == {"measured": 86, "estimated": 2, "missing": 8, "pending": 0}
    actual, estimated = trace(page, "Actual"), trace(page, "Estimated")
    assert estimated is not None, "a trace of its own, in the legend"
    xs = actual["x"]
    assert at(xs, estimated["y"]) == gaps.estimated
    assert estimated["marker"]["symbol"] == "circle-open"
    assert at(xs, actual["y"], wanted=False) == sorted(gaps.estimated + gaps.missing), "only measured values"
    assert actual["connectgaps"] is False
    link = page.evaluate("document.getElementById('curve').data.find(t => t.showlegend === false)")
    assert at(xs, link["y"]) == ["09:45", *gaps.estimated, "10:30"], "dotted from and to the measured neighbours"
    assert link["hoverinfo"] == "skip"
    drawn = page.evaluate("""Array.from(document.querySelectorAll('#curve .scatterlayer .trace'))
        .map(t => t.querySelectorAll('path.point').length)""")
    assert 2 in drawn, "the two estimated values are drawn as markers"
    missing = page.evaluate("document.getElementById('curve').layout.shapes.filter(s => s.legendgroup === 'missing')")
    assert [(s["x0"][11:], s["x1"][11:], s["name"]) for s in missing] == [("14:00", "16:00", "Missing")]
    assert "Estimated (dotted line" in page.inner_text("#estimated-note")
    assert "nothing filled in" in page.inner_text("#missing-note")
    assert page.locator("#pending-note").count() == 0
    assert violations(page, console) == [], "drawn under the Content-Security-Policy"
    page.goto(f"{gap_portal.url}/portal/c/acme/day?date={gaps.day}&lang=zh")
    curve_points(page)
    assert trace(page, "估算") is not None


def test_the_month_counts_statuses_and_shows_the_bill_in_force(page, gap_portal, gaps):
    login(page, gap_portal.url, "cust-acme")
    page.goto(f"{gap_portal.url}/portal/c/acme/month?month={gaps.day[:7]}&lang=en")
    shown = counts(page)
    day = page.locator(f"#daily tr[data-day='{gaps.day}'] td").all_inner_texts()
    assert day[4:] == ["86", "2", "8", ""], "the day with the gaps: measured, estimated, missing, pending"
    assert shown["estimated"] >= 2
    assert shown["missing"] >= 8
    assert "complete" not in (page.get_attribute("#month-completeness", "class") or "").split()
    year, month = gaps.day[:4], int(gaps.day[5:7])
    english = datetime(int(year), month, 1).strftime("%B %Y")
    assert page.inner_text("#month-shown") == english
    total = page.inner_text("#bill-total")
    assert total.endswith(" CNY"), "with its currency"
    assert "," in total, "and thousands separators"
    assert page.inner_text("#bill-funds").endswith(" CNY")
    assert "By contract demand" in page.inner_text("#bill")
    assert page.inner_text("#contract-in-force").startswith("1,600 kW")
    assert "raised to the floor of 40 %" in page.inner_text("#contract-raised")
    assert page.inner_text("#pf-adjustment").endswith(" CNY")
    page.goto(f"{gap_portal.url}/portal/c/acme/month?month={gaps.day[:7]}&lang=zh")
    assert page.inner_text("#month-shown") == f"{year}年{month}月"
    assert "按下限执行" in page.inner_text("#contract-raised")
    login(page, gap_portal.url, "eng")
    page.goto(f"{gap_portal.url}/portal/c/acme/month?month={gaps.day[:7]}&lang=en")
    assert counts(page) == shown
    assert page.locator("#bill, #basic, #contract-in-force, #pf-adjustment").count() == 0, "no money for engineers"


def test_the_current_month_is_not_over_and_pending_is_not_missing(page, portal):
    now = datetime.now(ZoneInfo(CUSTOMERS["acme"]))
    if now.day == 1 and now.hour == 0 and now.minute < 30:
        pytest.skip("the month's first interval has not ended yet: no data yet")
    login(page, portal.url, "cust-acme")
    page.goto(f"{portal.url}/portal/c/acme/month?lang=en")
    text = page.inner_text("#month-completeness")
    assert text.startswith("This month is not over yet")
    assert f"{counts(page)['pending']:,} intervals are still to come" in text


@pytest.mark.parametrize(("lang", "expected"), [("zh", "本月尚无数据。"), ("en", "No data yet for this month.")])
def test_a_month_without_data_says_why_in_the_readers_language(page, portal, lang, expected):
    login(page, portal.url, "cust-acme")
    future = (datetime.now(ZoneInfo(CUSTOMERS["acme"])).date().replace(day=1) + timedelta(days=62)).strftime("%Y-%m")
    page.goto(f"{portal.url}/portal/c/acme/month?month={future}&lang={lang}")
    assert page.inner_text("#month-reason") == expected
    assert "begins" not in page.content(), "never the exception's own text"
    tariff = load_tariff("guangdong-1-10kv")
    first = tariff.first_date
    before = (first - timedelta(days=1)).strftime("%Y-%m")
    page.goto(f"{portal.url}/portal/c/acme/month?month={before}&lang={lang}")
    reason = page.inner_text("#month-reason")
    if lang == "en":
        assert reason == f"Tariff {tariff.id} starts on {first.day} {first:%b %Y}: no prices before it."
    else:
        assert reason == f"电价 {tariff.id} 自 {first.year}年{first.month}月{first.day}日 起执行，此前没有价格。"
    assert "asked" not in page.content()
    page.goto(f"{portal.url}/portal/c/acme/month?month={first:%Y-%m}&lang={lang}")  # long before the history
    assert page.inner_text("#month-reason") == {"zh": "本月无数据。", "en": "No data for this month."}[lang]


def test_the_chart_data_keeps_each_status_apart():
    """The day chart's data without a browser: no value moves from one status to another, nothing is filled."""
    from gateway.portal.charts import day_chart

    statuses = ["measured", "estimated", "estimated", "measured", "missing", "measured", "missing", "pending",
                "pending"]
    start = datetime(2026, 11, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    pts = [{"start": (start + timedelta(minutes=15 * k)).isoformat(), "status": st, "band": None,
            "actual_kw": None if st in ("missing", "pending") else 100.0 + k, "forecast_kw": None,
            "last_week_kw": None} for k, st in enumerate(statuses)]
    labels = {"actual": "Actual", "forecast": "Forecast", "last_week": "Last week", "estimated": "Estimated",
              "pending": "Pending", "missing": "Missing"}
    c = day_chart(pts, labels)
    assert c["actual"] == [100.0, None, None, 103.0, None, 105.0, None, None, None]
    assert c["estimated"] == [None, 101.0, 102.0, None, None, None, None, None, None]
    assert c["estimated_link"] == [100.0, 101.0, 102.0, 103.0, None, None, None, None, None]
    assert c["actual_marker"] == [0, 0, 0, 0, 0, 5, 0, 0, 0], "a measured value between two gaps gets a marker"
    marks = [(s["name"], s["x0"][11:], s["x1"][11:], s["showlegend"]) for s in c["shapes"] if "legendgroup" in s]
    assert marks == [("Missing", "01:00", "01:15", True), ("Missing", "01:30", "01:45", False),
                     ("Pending", "01:45", "02:15", True)]
