"""A piece of advice turned into a request in one click, in headless Chromium, linked both ways and offered once."""

from __future__ import annotations

from tests.gateway.portal.test_portal import login


def test_advice_becomes_a_request_in_one_click_linked_both_ways(page, portal):
    login(page, portal.url, "mgr-a")
    page.goto(f"{portal.url}/portal/c/gamma/advice?lang=zh")
    rows = page.locator("#advice tr.item")
    assert rows.count() > 0, "the world's advice for gamma has items"
    row = rows.first
    kind = row.get_attribute("data-kind")
    title = row.locator(".title").inner_text()
    assert row.locator("a.request-link").count() == 0
    row.locator("form.to-request button").click()
    page.wait_for_selector("#ticket-advice")
    assert page.get_attribute("#ticket-status", "data-status") == "new"
    assert page.get_attribute("#ticket-advice", "data-advice") == kind
    shown = page.inner_text("#ticket-advice")
    assert title in shown, "the request shows the advice, in the reader's language"
    assert shown.startswith("由节能建议")
    ticket_url = page.url
    ticket_id = ticket_url.rsplit("/", 1)[1]
    page.click("#ticket-advice a")
    page.wait_for_url("**/portal/c/gamma/advice*")
    again = page.locator(f"tr#advice-{kind}")
    link = again.locator("a.request-link")
    assert link.inner_text() == f"服务请求 #{ticket_id}"
    assert again.locator("form.to-request").count() == 0, "no second request is offered"
    link.click()
    page.wait_for_url(ticket_url)


def test_a_customer_sees_the_link_but_no_button(page, portal):
    login(page, portal.url, "mgr-a")
    page.goto(f"{portal.url}/portal/c/acme/advice?lang=en")
    row = page.locator("#advice tr.item").first
    kind = row.get_attribute("data-kind")
    row.locator("form.to-request button").click()
    page.wait_for_selector("#ticket-advice")
    ticket_id = page.url.rsplit("/", 1)[1]
    page.context.clear_cookies()
    login(page, portal.url, "cust-acme")
    page.goto(f"{portal.url}/portal/c/acme/advice?lang=en")
    assert page.inner_text(f"tr#advice-{kind} a.request-link") == f"Request #{ticket_id}"
    assert page.locator("#advice form.to-request").count() == 0, "opening one is the desk's, as for alerts"
    page.click(f"tr#advice-{kind} a.request-link")
    page.wait_for_selector("#ticket-advice")
    assert "Opened for the advice" in page.inner_text("#ticket-advice")
