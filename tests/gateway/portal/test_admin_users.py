"""The admin's user management in headless Chromium: an admin adds a customer login, which logs in with the one-time
password shown once; an engineer's sites are set; a reset and a disable end the user's access; a non-admin gets 403;
every change is audited; the page is in both languages and refuses a form without its CSRF token."""

from __future__ import annotations

from sqlalchemy import select

from gateway.auth.models import AuditEvent
from gateway.portal import i18n
from tests.gateway.portal.test_portal import login


def _login_with(page, base: str, username: str, password: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-button")
    page.wait_for_load_state("load")


def _add(page, base: str, username: str, role: str, customer: str = "", sites: str = "") -> str:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/portal/admin/users?lang=en")
    page.fill("#new-username", username)
    page.select_option("#new-role", role)
    if customer:
        page.select_option("#new-customer", customer)
    if sites:
        page.fill("#new-sites", sites)
    page.click("#add-user-submit")
    page.wait_for_selector("#one-time-password")
    assert page.inner_text("#otp-username") == username
    password: str = page.inner_text("#one-time-password")
    return password


def test_an_admin_adds_a_customer_login_that_can_then_log_in(browser, page, portal, portal_world) -> None:  # type: ignore[no-untyped-def]
    login(page, portal.url, "admin")
    password = _add(page, portal.url, "cust-beta-2", "customer", customer="beta")
    assert len(password) >= 12
    page.goto(f"{portal.url}/portal/admin/users?lang=en")
    row = page.locator("#user-cust-beta-2")
    assert row.locator(".role").inner_text() == "Customer"
    assert password not in page.content(), "the one-time password is shown once, on the answer to the form only"
    other = browser.new_context(locale="en-US")
    try:
        p2 = other.new_page()
        _login_with(p2, portal.url, "cust-beta-2", password)
        assert p2.url.endswith("/portal/c/beta/day"), p2.url
        assert p2.goto(f"{portal.url}/portal/c/acme/day").status == 404, "the new login sees its own account only"
    finally:
        other.close()
    # the same name again is refused in the reader's language, and the form keeps what was entered
    page.fill("#new-username", "cust-beta-2")
    page.select_option("#new-role", "customer")
    page.select_option("#new-customer", "beta")
    page.click("#add-user-submit")
    page.wait_for_selector("#admin-error")
    assert page.get_attribute("#admin-error", "data-error") == "admin_err_exists"
    assert "exists already" in page.inner_text("#admin-error")
    assert page.input_value("#new-username") == "cust-beta-2"
    with portal_world.gw.db() as s:
        added = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "user.add",
                                                        AuditEvent.target == "cust-beta-2")))
    assert [a.actor for a in added] == ["admin"]


def test_an_engineers_sites_a_reset_and_a_disable(browser, page, portal, portal_world) -> None:  # type: ignore[no-untyped-def]
    login(page, portal.url, "admin")
    first = _add(page, portal.url, "eng-gamma", "engineer", sites="gamma-site")
    page.goto(f"{portal.url}/portal/admin/users?lang=en")
    row = page.locator("#user-eng-gamma")
    assert row.locator(".sites input[name=sites]").input_value() == "gamma-site"
    row.locator(".sites input[name=sites]").fill("gamma-site nowhere")
    row.locator(".save-sites").click()
    page.wait_for_selector("#admin-error")
    assert page.get_attribute("#admin-error", "data-error") == "admin_err_site"
    page.goto(f"{portal.url}/portal/admin/users?lang=en")
    page.locator("#user-eng-gamma .sites input[name=sites]").fill("acme-site gamma-site")
    page.locator("#user-eng-gamma .save-sites").click()
    page.wait_for_selector("#admin-done")
    assert page.locator("#user-eng-gamma .sites input[name=sites]").input_value() == "acme-site gamma-site"
    page.locator("#user-eng-gamma .reset").click()
    page.wait_for_selector("#one-time-password")
    second = page.inner_text("#one-time-password")
    assert second != first
    other = browser.new_context(locale="en-US")
    try:
        p2 = other.new_page()
        _login_with(p2, portal.url, "eng-gamma", first)
        assert p2.locator("#login-error").count() == 1, "the old password no longer works"
        _login_with(p2, portal.url, "eng-gamma", second)
        assert p2.locator("#login-error").count() == 0
        assert p2.goto(f"{portal.url}/portal/c/beta/day").status == 404, "beta owns none of its sites"
        assert p2.goto(f"{portal.url}/portal/c/gamma/day").status == 200
        page.goto(f"{portal.url}/portal/admin/users?lang=en")
        page.locator("#user-eng-gamma .disable").click()
        page.wait_for_selector("#admin-done")
        assert page.get_attribute("#user-eng-gamma", "data-disabled") == "1"
        p2.goto(f"{portal.url}/portal/c/gamma/day")
        assert p2.url.endswith("/login"), "its session ended with the disable: back to the login page"
    finally:
        other.close()
    with portal_world.gw.db() as s:
        actions = list(s.scalars(select(AuditEvent.action).where(AuditEvent.target == "eng-gamma",
                                                                 AuditEvent.actor == "admin")
                                 .order_by(AuditEvent.id)))
    assert actions == ["user.add", "user.sites", "user.reset_password", "user.disable"]


def test_non_admins_get_403_and_a_form_without_csrf_is_refused(page, portal) -> None:  # type: ignore[no-untyped-def]
    for user in ("eng", "mgr-a", "cust-acme"):
        page.context.clear_cookies()
        login(page, portal.url, user)
        r = page.goto(f"{portal.url}/portal/admin/users")
        assert r is not None
        assert r.status == 403, user
        r = page.request.post(f"{portal.url}/portal/admin/users/cust-gamma/disable", form={"csrf_token": "x"})
        assert r.status == 403, user
    page.context.clear_cookies()
    login(page, portal.url, "admin")
    r = page.request.post(f"{portal.url}/portal/admin/users/cust-gamma/disable", form={"csrf_token": "wrong"})
    assert r.status == 403
    assert "表单已过期" in r.text() or "The form expired" in r.text(), r.text()
    i18n.MISSING.clear()
    page.goto(f"{portal.url}/portal/admin/users?lang=en")
    assert page.inner_text("h1") == "Users"
    page.goto(f"{portal.url}/portal/admin/users?lang=zh")
    assert page.inner_text("h1") == "用户管理"
    assert page.locator("#user-cust-gamma .role").inner_text() == "客户"
    assert not i18n.MISSING, f"texts the catalogue lacks: {sorted(i18n.MISSING)}"
    assert page.get_attribute("#user-cust-gamma", "data-disabled") == "0"
