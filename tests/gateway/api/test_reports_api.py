"""Reports through the API: the monthly report, the daily brief and the portfolio as PDF, HTML and XLSX, by role."""

from __future__ import annotations

import io
from datetime import date

import pytest
from babel.numbers import format_currency
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from gateway.usecases import UseCases
from tests.gateway.api.world import World, token_for
from tests.reports.pdf import ink, pdf_fonts, pdf_pages, pdf_text

LOCALES = {"zh": "zh_CN", "en": "en_US"}


@pytest.fixture(scope="module")
def api(world: World) -> TestClient:
    """The app with the reports router (included here until gateway/web.py registers it)."""
    from gateway.api.routers import reports
    from gateway.web import create_app

    app = create_app(world.gw)
    if not any(getattr(r, "path", "") == "/api/v1/portfolio/report" for r in app.routes):
        app.include_router(reports.router)
    return TestClient(app)


def _month(world: World) -> str:
    return world.today["acme"][:7]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_pdf_report_carries_the_month_bills_total(api, world, lang):
    month = _month(world)
    _, bill = UseCases(world.gw).month_bill("acme", date.fromisoformat(month + "-01"))
    assert bill is not None
    r = api.get(f"/api/v1/customers/acme/report?month={month}&format=pdf&lang={lang}",
                headers=token_for(api, "cust-acme"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"] == f'inline; filename="acme_{month}.pdf"'
    text = pdf_text(r.content)
    assert format_currency(round(bill.total, 2), "CNY", locale=LOCALES[lang]) in text
    assert ("合计" if lang == "zh" else "Total") in text


def test_the_report_is_in_the_customers_language_by_default(api, world):
    month = _month(world)
    zh = api.get(f"/api/v1/customers/acme/report?month={month}&format=pdf", headers=token_for(api, "mgr-a"))
    assert zh.status_code == 200, zh.text
    assert "月度用电报告" in pdf_text(zh.content)
    assert any("CJK" in f["name"] and f["emb"] == "yes" for f in pdf_fonts(zh.content))
    assert all(ink(p) > 0.01 for p in pdf_pages(zh.content)), "no blank page"
    beta_month = world.today["beta"][:7]
    en = api.get(f"/api/v1/customers/beta/report?month={beta_month}&format=html", headers=token_for(api, "mgr-b"))
    assert en.status_code == 200, en.text
    assert "Monthly energy report" in en.text
    assert "月度用电报告" not in en.text


def test_the_html_report_is_small_script_free_and_sandboxed(api, world):
    r = api.get(f"/api/v1/customers/acme/report?month={_month(world)}&format=html",
                headers=token_for(api, "cust-acme"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert len(r.content) < 500_000, len(r.content)
    assert "<script" not in r.text
    csp = r.headers["content-security-policy"]
    assert csp.startswith("sandbox;"), csp
    assert "script-src" not in csp
    assert "default-src 'none'" in csp


def test_the_xlsx_report_is_an_attachment_with_typed_cells(api, world):
    month = _month(world)
    _, bill = UseCases(world.gw).month_bill("acme", date.fromisoformat(month + "-01"))
    r = api.get(f"/api/v1/customers/acme/report?month={month}&format=xlsx&lang=en",
                headers=token_for(api, "cust-acme"))
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"] == f'attachment; filename="acme_{month}.xlsx"'
    rows = {row[0].value: row[1] for row in load_workbook(io.BytesIO(r.content))["Summary"].iter_rows(min_row=2)}
    assert bill is not None
    assert rows["Total (CNY)"].value == pytest.approx(bill.total, rel=1e-14)
    assert "CN¥" in rows["Total (CNY)"].number_format
    assert rows["Peak at"].is_date


def test_a_bad_language_or_format_is_422(api, world):
    headers = token_for(api, "cust-acme")
    for query in ("lang=fr", "format=doc"):
        r = api.get(f"/api/v1/customers/acme/report?month={_month(world)}&{query}", headers=headers)
        assert r.status_code == 422, (query, r.text)
        assert set(r.json()) == {"error"}


def test_the_daily_brief_has_the_days_cost_for_roles_with_money(api, world):
    day = world.today["acme"]
    cost = UseCases(world.gw).day_cost("acme", date.fromisoformat(day))
    assert cost is not None
    r = api.get(f"/api/v1/customers/acme/brief?date={day}&format=pdf&lang=en", headers=token_for(api, "cust-acme"))
    assert r.status_code == 200, r.text
    assert len(pdf_pages(r.content)) == 1
    text = pdf_text(r.content)
    assert format_currency(round(cost[0], 2), "CNY", locale="en_US") in text
    assert "Same weekday last week" in text
    html = api.get(f"/api/v1/customers/acme/brief?date={day}", headers=token_for(api, "mgr-a"))
    assert html.status_code == 200, html.text
    assert "每日用电简报" in html.text, "acme reads Chinese"


@pytest.mark.parametrize("path", ["/api/v1/customers/acme/report", "/api/v1/customers/acme/brief",
                                  "/api/v1/portfolio/report?manager=am-a"])
def test_engineers_get_no_reports(api, path):
    r = api.get(path, headers=token_for(api, "eng"))
    assert r.status_code == 403, r.text


def test_a_manager_gets_its_own_portfolio_only(api, world):
    mine = api.get("/api/v1/portfolio/report?format=html&lang=en", headers=token_for(api, "mgr-a"))
    assert mine.status_code == 200, mine.text
    assert "Acme Works" in mine.text
    assert "Gamma Works" in mine.text
    assert "Beta Works" not in mine.text
    other = api.get("/api/v1/portfolio/report?manager=am-b", headers=token_for(api, "mgr-a"))
    assert other.status_code == 404, other.text
    customer = api.get("/api/v1/portfolio/report?manager=am-a", headers=token_for(api, "cust-acme"))
    assert customer.status_code == 403


def test_an_admin_names_the_manager(api, world):
    headers = token_for(api, "admin")
    r = api.get("/api/v1/portfolio/report", headers=headers)
    assert r.status_code == 422, r.text
    r = api.get("/api/v1/portfolio/report?manager=am-b&format=xlsx&lang=zh", headers=headers)
    assert r.status_code == 200, r.text
    ws = load_workbook(io.BytesIO(r.content))["客户"]
    assert [c.value for c in ws[2]][0] == "Beta Works"
    assert api.get("/api/v1/portfolio/report?manager=nobody", headers=headers).status_code == 404
