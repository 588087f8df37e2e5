"""The service desk and the customer's own limits in headless Chromium.

A request with a description, a contact and an attachment, its countdown and thread (internal notes stay inside), an
alert turned into a request in one click and linked both ways, and a limit set in the portal that fires once the
alerts job runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm_bridge.alerts import raise_alert
from tests.gateway.portal.test_portal import login


def test_a_request_with_description_countdown_and_thread(page, portal):
    login(page, portal.url, "cust-acme")
    page.goto(f"{portal.url}/portal/c/acme/requests?lang=en")
    title = "Transformer 2 hums at night"
    page.select_option("#new-request select[name=kind]", "complaint")
    page.select_option("#new-request select[name=category]", "power_quality")
    page.fill("#request-title", title)
    page.fill("#request-description", "Since the storm on Monday.\nLouder after 22:00.")
    page.fill("#request-contact", "Li Wei, +86 138 0000 0000")
    page.click("#request-submit")
    page.wait_for_selector("#ticket-status")
    assert page.get_attribute("#ticket-status", "data-status") == "new"
    assert page.inner_text("#ticket-description") == "Since the storm on Monday.\nLouder after 22:00."
    assert page.inner_text("#ticket-contact") == "Li Wei, +86 138 0000 0000"
    assert page.inner_text("#ticket-assignee") == "Manager am-a"
    due = page.inner_text("#ticket-due")
    assert due.startswith("(due in "), due  # a new complaint of a tier-C account: 240 minutes to acknowledge
    assert "Overdue" not in due
    page.set_input_files("#attach-file", files=[{"name": "hum.txt", "mimeType": "text/plain",
                                                 "buffer": b"22:40 hum, 22:55 louder\n"}])
    page.click("#attach-submit")
    page.wait_for_selector("#files a")
    assert page.inner_text("#files a") == "hum.txt"
    with page.expect_download() as download:
        page.click("#files a")
    assert download.value.suggested_filename == "hum.txt"
    page.fill("#comment-body", "It is louder today.")
    page.click("#comment-submit")
    page.wait_for_selector("#thread li[data-internal='0']")
    assert page.locator("#comment-internal").count() == 0, "a customer writes no internal notes"
    url = page.url.split("#")[0]

    login(page, portal.url, "mgr-a")
    page.goto(f"{portal.url}/portal/queue?lang=zh")
    row = page.locator("#queue tr", has_text=title)
    assert row.locator("td").nth(1).inner_text() == "Acme Works", "the customer's name, not its id"
    assert row.locator(".due").inner_text().startswith("剩余")
    assert row.locator(".assignee").inner_text() == "Manager am-a"
    assert row.locator("button").inner_text() == "受理"
    page.goto(f"{url}?lang=en")
    page.fill("#comment-body", "Check the tap changer first.")
    page.check("#comment-internal")
    page.click("#comment-submit")
    page.wait_for_selector("#thread li[data-internal='1']")
    page.fill("#comment-body", "A technician comes on Thursday.")
    page.click("#comment-submit")
    page.wait_for_function("document.querySelectorAll('#thread li').length === 3")

    login(page, portal.url, "cust-acme")
    page.goto(url)
    bodies = page.locator("#thread li p").all_inner_texts()
    assert bodies == ["It is louder today.", "A technician comes on Thursday."], "the internal note stays inside"


def test_an_alert_becomes_a_request_in_one_click_linked_both_ways(page, portal, portal_world):
    now = datetime.now(UTC)
    with portal_world.gw.db() as s:
        a = raise_alert(s, key="portal:to-request", type="pf_low", severity="warning", customer_code="gamma",
                        meter_code=None, window_start=now - timedelta(days=1), window_end=now,
                        message="gamma: month-to-date power factor 0.86 is below the standard 0.90", now=now,
                        text_key="alert_pf_low", params={"value": 0.86, "limit": 0.9})
        s.commit()
        aid = a.id
    login(page, portal.url, "mgr-a")
    page.goto(f"{portal.url}/portal/c/gamma/alerts?lang=zh")
    row = page.locator(f"tr[data-alert='{aid}']")
    assert row.locator(".message").inner_text() == "本月功率因数 0.86 低于考核标准 0.90。"
    row.locator("form.to-request button").click()
    page.wait_for_selector("#ticket-alert")
    assert page.get_attribute("#ticket-status", "data-status") == "new"
    assert f"#{aid}" in page.inner_text("#ticket-alert")
    ticket_url = page.url
    page.click("#ticket-alert a")
    page.wait_for_url("**/portal/c/gamma/alerts*")
    link = page.locator(f"tr[data-alert='{aid}'] a.ticket-link")
    assert link.count() == 1
    assert page.locator(f"tr[data-alert='{aid}'] form.to-request").count() == 0, "once"
    link.click()
    page.wait_for_url(ticket_url)


def test_a_limit_set_in_the_portal_fires_after_the_alerts_job(page, portal, portal_world):
    from gateway.jobs import alerts_job

    login(page, portal.url, "cust-gamma")
    page.goto(f"{portal.url}/portal/c/gamma/limits?lang=en")
    page.fill("#kw_demand-0", "-3")
    page.click("#limits-save")
    page.wait_for_selector("#limits-error")
    error = page.inner_text("#limits-error")
    assert "Whole account" in error
    assert "Demand (kW, 15 min)" in error, "the form names the field"
    assert page.input_value("#kw_demand-0") == "-3", "what was typed is kept"
    page.fill("#kw_demand-0", "")
    page.fill("#kw_demand-1", "1")  # the site's row: any load crosses 1 kW
    page.fill("#pf_floor-0", "0.5")
    page.click("#limits-save")
    page.wait_for_selector("#limits-saved")
    assert page.input_value("#kw_demand-1") == "1"
    assert page.input_value("#kw_demand-0") == ""

    alerts_job(portal_world.gw)
    page.goto(f"{portal.url}/portal/c/gamma/alerts?lang=zh")
    fired = page.locator("#alerts tr", has_text="超过您设定的 1.0 千瓦")
    assert fired.count() == 1
    assert "gamma-site" in fired.first.locator(".message").inner_text(), "the site's own limit names the site"


def test_a_customer_reopens_a_resolved_request_and_the_deadline_is_back(page, portal, portal_world):
    from crm_bridge.desk import create_ticket, transition

    now = datetime.now(UTC) - timedelta(minutes=5)
    with portal_world.gw.db() as s:
        t = create_ticket(s, "beta", "request", "billing", "Why two invoices?", now, owner_code="am-b")
        for i, step in enumerate(("acknowledged", "in_progress", "resolved"), start=1):
            transition(s, t.id, step, now + timedelta(minutes=i))
        s.commit()
        tid = t.id
    login(page, portal.url, "cust-beta")
    page.goto(f"{portal.url}/portal/c/beta/requests/{tid}?lang=en")
    assert page.locator("#ticket-due").count() == 0, "a resolved request works to no deadline"
    page.fill("#reopen-form input[name=note]", "The second invoice is still there.")
    page.click("#reopen-form button")
    page.wait_for_selector("#ticket-due")
    assert page.get_attribute("#ticket-status", "data-status") == "in_progress"
    assert page.inner_text("#ticket-status") == "In progress"
    assert "The second invoice is still there." in page.inner_text("#history")
