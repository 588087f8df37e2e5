"""The portal in headless Chromium: login, the day curve, dates, requests to the manager's queue, logout, isolation."""

from __future__ import annotations

from datetime import date, timedelta

import httpx

from tests.gateway.api.world import PASSWORD


def login(page, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login-button")
    page.wait_for_load_state("load")


def curve_points(page) -> int:
    page.wait_for_selector("#curve[data-ready='1']")
    return page.evaluate("document.getElementById('curve').data[0].x.length")


def test_login_and_day_curve_with_the_right_number_of_points(page, portal, portal_world):
    login(page, portal.url, "cust-acme")
    assert page.url.endswith("/portal/c/acme/day")
    day = portal_world.today["acme"]
    page.goto(f"{portal.url}/portal/c/acme/day?date={day}")
    assert curve_points(page) == 96
    names = page.evaluate("document.getElementById('curve').data.map(t => t.name)")
    assert len(names) == 3, "actual, forecast, last week"
    forecast = page.evaluate("document.getElementById('curve').data[1].y.filter(v => v !== null).length")
    assert forecast == 96
    shapes = page.evaluate("document.getElementById('curve').layout.shapes.length")
    assert shapes >= 3, "TOU bands shaded"
    assert page.evaluate("typeof Plotly") == "object", "plotly.js came from the gateway itself"


def test_switching_dates(page, portal, portal_world):
    login(page, portal.url, "cust-acme")
    day = date.fromisoformat(portal_world.today["acme"])
    page.goto(f"{portal.url}/portal/c/acme/day?date={day}")
    curve_points(page)
    other = (day - timedelta(days=3)).isoformat()
    page.fill("#date-input", other)
    page.click("#date-go")
    page.wait_for_url(f"**/portal/c/acme/day?date={other}")
    assert page.inner_text("#day-shown") == other
    assert curve_points(page) == 96
    page.click("#prev-day")
    page.wait_for_url(f"**date={(day - timedelta(days=4)).isoformat()}")
    assert curve_points(page) == 96


def test_a_request_reaches_the_managers_queue_and_logout(page, portal):
    login(page, portal.url, "cust-gamma")
    page.goto(f"{portal.url}/portal/c/gamma/requests")
    title = "Please check the capacitor bank in hall 3"
    page.fill("#request-title", title)
    page.click("#request-submit")
    page.wait_for_selector("#ticket-status")
    assert page.get_attribute("#ticket-status", "data-status") == "new"
    page.click("#logout")
    page.wait_for_url("**/login")
    page.goto(f"{portal.url}/portal/c/gamma/requests")
    assert page.url.endswith("/login"), "after logout the pages are closed"

    login(page, portal.url, "mgr-a")
    assert page.url.endswith("/portal/accounts")  # a manager starts in its workspace
    page.goto(f"{portal.url}/portal/queue")
    row = page.locator("#queue tr", has_text=title)
    assert row.count() == 1
    row.locator("button").click()
    page.wait_for_url("**/portal/queue")
    assert page.locator("#queue tr", has_text=title).get_attribute("data-status") == "acknowledged"

    for step in ("in_progress", "resolved"):
        page.locator("#queue tr", has_text=title).locator("button").click()
        page.wait_for_url("**/portal/queue")
        assert page.locator("#queue tr", has_text=title).get_attribute("data-status") == step

    login(page, portal.url, "mgr-b")
    assert page.locator("#queue tr", has_text=title).count() == 0, "another manager's queue does not show it"

    login(page, portal.url, "cust-gamma")
    page.goto(f"{portal.url}/portal/c/gamma/requests")
    page.locator("#tickets tr", has_text=title).locator("a").click()
    assert page.get_attribute("#ticket-status", "data-status") == "resolved"
    page.select_option("#rate-form select", "5")
    page.fill("#rate-note", "Quick and friendly.")
    page.click("#rate-form button")
    page.wait_for_selector("#ticket-status")
    assert page.get_attribute("#ticket-status", "data-status") == "closed"
    assert page.inner_text("#ticket-satisfaction") == "5"
    assert "Quick and friendly." in page.inner_text("#history"), "the survey's word is kept with the close"


def test_a_customer_cannot_reach_another_customers_page_by_url(page, portal, portal_world):
    login(page, portal.url, "cust-beta")
    for path in ("day", "month", "advice", "alerts", "requests", "downloads",
                 f"requests/{portal_world.tickets['acme']}"):
        response = page.goto(f"{portal.url}/portal/c/acme/{path}")
        assert response.status == 404, path
        assert "Acme" not in page.content()
    response = page.goto(f"{portal.url}/api/v1/customers/acme/day-curve")
    assert response.status == 404
    own = page.goto(f"{portal.url}/portal/c/beta/day")
    assert own.status == 200


def test_alert_acknowledge_month_and_language(page, portal, portal_world):
    login(page, portal.url, "cust-acme")
    page.goto(f"{portal.url}/portal/c/acme/alerts")
    aid = portal_world.alerts["acme"]
    page.locator(f"tr[data-alert='{aid}'] button").click()
    page.wait_for_url("**/portal/c/acme/alerts")
    assert page.locator(f"tr[data-alert='{aid}']").get_attribute("data-status") == "acknowledged"
    assert page.locator(f"tr[data-alert='{aid}'] .status").inner_text() == "已确认", "acme reads Chinese"
    page.goto(f"{portal.url}/portal/c/acme/month?month={portal_world.today['acme'][:7]}&lang=zh")
    assert "月度分析" in page.content()
    assert page.locator("#tou tr").count() >= 4
    page.goto(f"{portal.url}/portal/c/acme/month?lang=en")
    assert "Time-of-use costs" in page.content()


def test_forms_need_the_csrf_token_and_cookies_are_httponly(portal):
    with httpx.Client(base_url=portal.url) as c:
        form = c.get("/login")
        token = form.text.split('name="csrf_token" value="')[1].split('"')[0]
        r = c.post("/login", data={"username": "cust-acme", "password": PASSWORD, "csrf_token": token})
        assert r.status_code == 303
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie or "samesite=lax" in cookie.lower()
        r = c.post("/portal/c/acme/requests", data={"kind": "request", "category": "other", "title": "x"},
                   headers={"Accept-Language": "en-GB,en;q=0.9"})
        assert r.status_code == 403
        assert "CSRF" in r.text
        r = c.post("/portal/c/acme/requests", data={"kind": "request", "category": "other", "title": "x"})
        assert r.status_code == 403
        assert "表单已过期" in r.text, "without a language asked for, the error page is Chinese"
        body = {"category": "billing", "title": "from a forged page"}
        r = c.post("/api/v1/tickets", json=body)
        assert r.status_code == 403, "the session cookie alone cannot change things through the API"
        page = c.get("/portal/c/acme/requests").text
        csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
        r = c.post("/api/v1/tickets", json=body, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 201
        assert c.get("/api/v1/customers/acme").status_code == 200, "reads need no token"
        r = c.post("/login", data={"username": "cust-acme", "password": PASSWORD, "csrf_token": "forged"})
        assert r.status_code == 403


def test_advice_page_shows_money_and_evidence(page, portal):
    login(page, portal.url, "cust-acme")
    page.goto(f"{portal.url}/portal/c/acme/advice?lang=en")
    rows = page.locator("#advice tr.item")
    assert rows.count() >= 1
    assert "CN¥" in rows.first.locator(".money").first.inner_text()
    assert "intervals" in rows.first.inner_text()
    page.goto(f"{portal.url}/portal/c/acme/advice?lang=zh")
    first = page.locator("#advice tr.item").first
    assert first.locator(".money").first.inner_text().startswith("¥")
    assert "个时段" in first.locator(".evidence").inner_text()
    assert "[[" not in page.content(), "no Python list in the evidence"
