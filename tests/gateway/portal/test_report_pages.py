"""The report pages in headless Chromium: the schedule and recipients form, and past reports from the downloads page.

A world of its own with 40 days of history, so last month has data whatever today's date.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

import tests.gateway.api.world as world_mod
from gateway.usecases.report_delivery import plan_of
from tests.gateway.api.world import RunningApi, World
from tests.gateway.portal.test_portal import login


@pytest.fixture(scope="module")
def reports_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    os.environ.setdefault("GATEWAY_SECRET_KEY", "test-secret-key-0123456789abcdef")
    saved = world_mod.HISTORY_DAYS
    world_mod.HISTORY_DAYS = 40
    try:
        return world_mod.build_world(tmp_path_factory.mktemp("reportpages"))
    finally:
        world_mod.HISTORY_DAYS = saved


@pytest.fixture(scope="module")
def site(reports_world: World) -> Iterator[RunningApi]:
    with RunningApi(reports_world.gw) as api:
        yield api


def _plan(world: World, customer: str):  # type: ignore[no-untyped-def]
    with world.gw.db() as s:
        return plan_of(s, customer)


def test_the_recipients_are_changed_in_the_portal_and_saved(page, site, reports_world):
    login(page, site.url, "mgr-a")
    page.goto(f"{site.url}/portal/c/acme/reports?lang=en")
    assert page.locator("#reports-default").count() == 1, "nothing set yet: the defaults are shown as such"
    page.fill("#monthly-day", "5")
    page.fill("#monthly-hour", "9")
    page.uncheck("#daily-on")
    page.select_option("#report-format", "xlsx")
    page.fill("#email-0", "energy@acme.example")
    page.select_option("#language-0", "zh")
    page.fill("#email-1", "director@acme.example")
    page.select_option("#language-1", "en")
    page.click("#reports-save")
    page.wait_for_selector("#reports-saved")

    page.goto(f"{site.url}/portal/c/acme/reports?lang=en")
    assert page.input_value("#monthly-day") == "5"
    assert page.input_value("#monthly-hour") == "9"
    assert not page.is_checked("#daily-on")
    assert page.input_value("#report-format") == "xlsx"
    assert [page.input_value(f"#email-{i}") for i in range(3)] == ["energy@acme.example", "director@acme.example", ""]
    assert page.input_value("#language-1") == "en"
    assert page.locator("#reports-default").count() == 0
    plan = _plan(reports_world, "acme")
    assert plan is not None
    assert (plan.monthly_day, plan.monthly_hour, plan.daily_hour, plan.fmt) == (5, 9, None, "xlsx")
    assert plan.recipients == (("energy@acme.example", "zh"), ("director@acme.example", "en"))

    # The customer's own energy manager removes one address (cleared) and adds another.
    login(page, site.url, "cust-acme")
    page.goto(f"{site.url}/portal/c/acme/reports?lang=zh")
    page.fill("#email-1", "")
    page.fill("#email-2", "plant@acme.example")
    page.click("#reports-save")
    page.wait_for_selector("#reports-saved")
    assert page.inner_text("#reports-saved") == "已保存。"
    plan = _plan(reports_world, "acme")
    assert plan is not None
    assert plan.recipients == (("energy@acme.example", "zh"), ("plant@acme.example", "zh"))


@pytest.mark.parametrize(("lang", "field", "value", "message"), [
    ("en", "#email-0", "not an address", "“not an address” is not an e-mail address."),
    ("zh", "#email-0", "not an address", "“not an address”不是有效的邮箱地址。"),
    ("en", "#monthly-day", "31", "Day of the month: enter a whole number from 1 to 28"),
    ("zh", "#monthly-day", "31", "发送日：请输入 1 到 28 之间的整数"),
    ("en", "#monthly-hour", "24", "at hour (0–23): enter a whole hour from 0 to 23."),
    ("zh", "#daily-hour", "x", "每日简报时刻（0–23 时）：请输入 0 到 23 之间的整点。"),
])
def test_a_bad_entry_is_named_in_the_readers_language_and_saves_nothing(page, site, reports_world, lang, field,
                                                                         value, message):
    login(page, site.url, "cust-gamma")
    page.goto(f"{site.url}/portal/c/gamma/reports?lang={lang}")
    page.check("#daily-on")
    page.fill(field, value)
    if field != "#email-0":
        page.fill("#email-0", "ops@gamma.example")
    page.click("#reports-save")
    page.wait_for_selector("#reports-error")
    assert message in page.inner_text("#reports-error")
    assert page.input_value(field) == value, "the form keeps what was entered"
    assert _plan(reports_world, "gamma") is None


def test_another_customers_schedule_is_not_found_and_the_engineer_has_none(page, site):
    login(page, site.url, "cust-beta")
    response = page.goto(f"{site.url}/portal/c/acme/reports")
    assert response is not None
    assert response.status == 404
    login(page, site.url, "mgr-b")
    response = page.goto(f"{site.url}/portal/c/acme/reports")
    assert response is not None
    assert response.status == 404
    login(page, site.url, "eng")
    response = page.goto(f"{site.url}/portal/c/acme/reports")
    assert response is not None
    assert response.status == 403
    page.goto(f"{site.url}/portal/c/acme/downloads")
    assert page.locator("#report-months").count() == 0, "no reports for a role without them"


def test_a_past_months_report_downloads_as_pdf_and_xlsx(page, site):
    login(page, site.url, "cust-acme")
    page.goto(f"{site.url}/portal/c/acme/downloads?lang=en")
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    months = page.locator("#report-months tr[data-month]")
    assert months.first.get_attribute("data-month") == f"{last_month:%Y-%m}"
    assert f"{today:%Y-%m}" not in [months.nth(i).get_attribute("data-month") for i in range(months.count())]

    pdf = page.request.get(site.url + str(months.first.locator("a.report-pdf").get_attribute("href")))
    assert pdf.status == 200, pdf.text()[:300]
    assert pdf.body()[:5] == b"%PDF-"
    with page.expect_download() as download:
        months.first.locator("a.report-xlsx").click()
    data = open(download.value.path(), "rb").read()  # noqa: PTH123, SIM115 - the browser's own file, read once
    assert download.value.suggested_filename == f"acme_{last_month:%Y-%m}.xlsx"
    assert load_workbook(io.BytesIO(data)).sheetnames

    brief = page.locator("#report-briefs tr[data-day]").first
    assert brief.get_attribute("data-day") == (today - timedelta(days=1)).isoformat()
    xlsx = page.request.get(site.url + str(brief.locator("a.brief-xlsx").get_attribute("href")))
    assert xlsx.status == 200
    assert xlsx.body()[:2] == b"PK"
    assert page.locator("#report-deliveries-none").count() == 1, "nothing sent in this world yet"


def test_the_delivery_record_is_on_the_downloads_page_in_the_readers_language(page, site, reports_world):
    from crm_bridge.registry.models import Notification, NotificationEvent

    now = datetime.now(ZoneInfo("UTC"))
    with reports_world.gw.db() as s:
        ev = NotificationEvent(key="report:beta:2026-11:monthly_2026-11.pdf", kind="report.ready", customer_code="beta",
                               severity="info", data={"period": "2026-11", "attachment": "monthly_2026-11.pdf"},
                               at=now, attachment_name="monthly_2026-11.pdf", attachment_type="application/pdf",
                               attachment=b"%PDF-1.7")
        s.add(ev)
        s.flush()
        s.add(Notification(event_id=ev.id, recipient="mailto:ops@beta.example", channel="mail",
                           address="ops@beta.example", language="en", subject="s", body="b", status="delivered",
                           attempts=1, created_at=now, sent_at=now))
        s.commit()
    login(page, site.url, "cust-beta")
    for lang, status in (("en", "Delivered"), ("zh", "已送达")):
        page.goto(f"{site.url}/portal/c/beta/downloads?lang={lang}")
        (row,) = page.locator("#report-deliveries tr").all()[1:]
        cells = [c.inner_text() for c in row.locator("td").all()]
        assert cells[:4] == ["monthly_2026-11.pdf", "ops@beta.example", "mail", status]
    login(page, site.url, "cust-acme")
    page.goto(f"{site.url}/portal/c/acme/downloads")
    assert page.locator("#report-deliveries").count() == 0, "beta's record is not shown to acme"


def test_the_report_pages_have_every_text_in_both_languages(page, site):
    from gateway.portal import i18n

    i18n.MISSING.clear()
    login(page, site.url, "mgr-a")
    for lang in ("zh", "en"):
        for path in ("/portal/c/gamma/reports", "/portal/c/gamma/downloads", "/portal/portfolio/reports"):
            page.goto(f"{site.url}{path}?lang={lang}")
            assert page.get_attribute("html", "lang") == lang
    assert not i18n.MISSING, sorted(i18n.MISSING)


def test_a_manager_sets_its_portfolio_schedule_from_the_downloads_page(page, site, reports_world):
    login(page, site.url, "mgr-a")
    page.goto(f"{site.url}/portal/c/acme/downloads?lang=en")
    page.click("#portfolio-schedule")
    page.wait_for_selector("#reports-form")
    assert page.inner_text("#manager") == "am-a"
    assert page.locator("#daily-on").count() == 0, "a portfolio has no daily brief"
    page.fill("#monthly-day", "2")
    page.fill("#email-0", "am.a@utility.example")
    page.select_option("#language-0", "en")
    page.click("#reports-save")
    page.wait_for_selector("#reports-saved")
    plan = _plan(reports_world, "manager:am-a")
    assert plan is not None
    assert (plan.monthly_day, plan.daily_hour, plan.recipients) == (2, None, (("am.a@utility.example", "en"),))
    page.fill("#email-1", "am.a@utility.example")
    page.click("#reports-save")
    page.wait_for_selector("#reports-error")
    assert page.inner_text("#reports-error") == "An address is listed twice."
    response = page.goto(f"{site.url}/portal/portfolio/reports?manager=am-b")
    assert response is not None
    assert response.status == 404
    login(page, site.url, "cust-acme")
    response = page.goto(f"{site.url}/portal/portfolio/reports")
    assert response is not None
    assert response.status == 403
