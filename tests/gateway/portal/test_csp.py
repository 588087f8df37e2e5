"""The portal under its Content-Security-Policy in Chromium: the chart draws, nothing is blocked, text stays text."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from crm_bridge.desk import create_ticket
from gateway.portal import CSP
from tests.gateway.api.world import PASSWORD
from tests.gateway.portal.test_portal import curve_points, login

# Records every CSP violation the page reports; Playwright's init scripts are not subject to the page's policy.
WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sourceFile || '') + ':' + e.lineNumber));
"""
HOSTILE_TITLE = '<img src=x onerror="window.__xss=1">"><script>window.__xss=2</script></script>{{7*7}}'


@pytest.fixture
def watched(page):  # type: ignore[no-untyped-def]
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    page.add_init_script(WATCH)
    return page, console


def violations(page, console: list[str]) -> list[str]:
    return page.evaluate("window.__csp") + [m for m in console if "Content Security Policy" in m]


def directive(csp: str, name: str) -> str:
    return next(d.strip() for d in csp.split(";") if d.strip().startswith(name + " "))


def test_the_day_chart_renders_under_the_csp_with_no_violation(watched, portal, portal_world):
    page, console = watched
    login(page, portal.url, "cust-acme")
    response = page.goto(f"{portal.url}/portal/c/acme/day?date={portal_world.today['acme']}")
    headers = response.headers
    csp = headers["content-security-policy"]
    assert directive(csp, "script-src") == "script-src 'self'", "no inline script, no eval"
    for part in ("default-src 'self'", "object-src 'none'", "base-uri 'self'", "frame-ancestors 'none'",
                 "form-action 'self'"):
        assert part in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["x-frame-options"] == "DENY"
    assert curve_points(page) == 96
    # plotly drew the svg: three lines in the main plot, each through every 15-min value.
    drawn = page.evaluate("""Array.from(document.querySelectorAll(
        '#curve .cartesianlayer .subplot.xy .scatterlayer .trace path.js-line'))
        .map(p => (p.getAttribute('d').match(/[ML]/g) || []).length)""")
    measured = page.evaluate("document.getElementById('curve').data.map(t => t.y.filter(v => v !== null).length)")
    assert len(drawn) == 3
    assert drawn == measured
    assert drawn[1] == 96, "the stored forecast covers the whole day"
    page.mouse.move(500, 250)  # hover labels are drawn too
    seen = violations(page, console)
    for path in ("month", "alerts", "requests", "downloads", "advice"):
        page.goto(f"{portal.url}/portal/c/acme/{path}")
        seen += page.evaluate("window.__csp")
    assert seen == []


def test_the_policy_is_enforced_an_inline_script_is_refused(watched, portal):
    page, console = watched
    login(page, portal.url, "cust-acme")
    page.evaluate("""() => { const s = document.createElement('script');
        s.textContent = 'window.__inline = 1'; document.body.appendChild(s); }""")
    assert page.evaluate("window.__inline") is None
    assert any(v.startswith("script-src") for v in violations(page, console))


def test_a_hostile_ticket_title_shows_as_text(watched, portal, portal_world):
    page, console = watched
    with portal_world.gw.db() as s:
        t = create_ticket(s, "acme", "request", "other", HOSTILE_TITLE, datetime.now(UTC), owner_code="am-a")
        s.commit()
        tid = t.id
    seen: list[str] = []

    def visit(path: str, cell: str) -> None:
        page.goto(f"{portal.url}{path}")
        assert page.locator(cell, has_text=HOSTILE_TITLE).count() == 1, f"{path}: the title is shown as text"
        assert page.locator("img[src='x']").count() == 0
        assert page.evaluate("window.__xss") is None, f"{path}: the title ran"
        seen.extend(page.evaluate("window.__csp"))

    login(page, portal.url, "cust-acme")
    visit(f"/portal/c/acme/requests/{tid}", "h1")
    assert page.inner_text("h1") == f"#{tid} {HOSTILE_TITLE}"
    visit("/portal/c/acme/requests", "#tickets td")
    login(page, portal.url, "mgr-a")
    visit("/portal/queue", "#queue td.title")
    assert seen == []
    assert [m for m in console if "Content Security Policy" in m] == []


def test_every_response_carries_the_headers_and_only_the_api_docs_go_without_the_csp(portal, portal_world):
    with httpx.Client(base_url=portal.url) as c:
        token = c.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
        c.post("/login", data={"username": "cust-acme", "password": PASSWORD, "csrf_token": token})
        month = portal_world.today["acme"][:7]
        strict = {"/login": "text/html", "/portal/c/acme/alerts": "text/html",
                  "/portal/c/beta/alerts": "text/html",  # the 404 page
                  "/static/portal.js": "text/javascript", "/static/portal.css": "text/css",
                  "/static/plotly.min.js": "application/javascript", "/api/v1/customers": "application/json"}
        for path, kind in strict.items():
            r = c.get(path)
            assert r.headers["content-type"].startswith(kind), path
            assert r.headers["content-security-policy"] == CSP, path
            assert r.headers["x-content-type-options"] == "nosniff", path
            assert r.headers["x-frame-options"] == "DENY", path
        assert c.get("/static/test_csp.py").status_code == 404, "only the listed static files are served"
        # The HTML report has no script at all (charts are SVG); it is mailed and opened offline, and runs sandboxed.
        report = c.get(f"/api/v1/customers/acme/report?month={month}")
        assert report.status_code == 200
        assert report.headers["content-security-policy"].startswith("sandbox;")
        assert "script-src" not in report.headers["content-security-policy"]
        docs = c.get("/docs")
        assert docs.status_code == 200
        assert "content-security-policy" not in docs.headers, "Swagger UI runs FastAPI's inline script"
        assert docs.headers["x-frame-options"] == "DENY"
