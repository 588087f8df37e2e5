"""Stored XSS: every portal template, rendered through the real app with hostile text in every user-supplied field."""

from __future__ import annotations

import os
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import update

from gateway.auth import User
from tests.gateway.api.world import PASSWORD
from tests.gateway.portal.hostile import CUSTOMERS, HOSTILE, HOSTILE_USERNAME, HostileWorld, build_hostile_world

TEMPLATES = Path(__file__).parents[3] / "gateway" / "portal" / "templates"
URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href", "data"}


class Scan(HTMLParser):
    """What a browser would run: event-handler attributes, script bodies, javascript: URLs, injected elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.text: list[str] = []
        self._script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...>: an event handler attribute")
            if name in URL_ATTRS and (value or "").strip().lower().startswith("javascript:"):
                self.problems.append(f"<{tag} {name}={value!r}>: a javascript: URL")
        if tag == "img" and a.get("src") == "x":
            self.problems.append("<img src=x>: an element from user text")
        if tag == "script":
            self._script = a

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            if "alert(" in data:
                self.problems.append(f"<script {self._script}> runs user text: {data[:80]!r}")
        else:
            self.text.append(data)


def scan(html: str) -> Scan:
    s = Scan()
    s.feed(html)
    s.close()
    return s


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> HostileWorld:
    os.environ.setdefault("GATEWAY_SECRET_KEY", "test-secret-key-0123456789abcdef")
    return build_hostile_world(tmp_path_factory.mktemp("hostileworld"))


@pytest.fixture(scope="module")
def app(hostile: HostileWorld) -> Any:
    from gateway.web import create_app

    app = create_app(hostile.gw)
    # Starlette's gzip drops the debug message that tells a test client which template rendered a response, even
    # for an uncompressed answer; this test needs it, and gzip is tested in tests/gateway/test_web_ops.py.
    from starlette.middleware.gzip import GZipMiddleware

    app.user_middleware = [m for m in app.user_middleware if m.cls is not GZipMiddleware]
    return app


def logged_in(app: Any, username: str) -> TestClient:
    c = TestClient(app)
    token = c.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
    r = c.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token},
               follow_redirects=False)
    assert r.status_code == 303, r.text
    return c


# Show nothing typed by others but usernames; the hostile username is checked below
USER_ONLY_PAGES = ("/portal/password", "/portal/admin/users")


def pages(hostile: HostileWorld) -> list[str]:
    out = ["/portal/accounts", "/portal/queue", "/portal/password", "/portal/stats", "/portal/admin/users"]
    for cid in CUSTOMERS:
        day = hostile.today[cid]
        out += [f"/portal/accounts/{cid}", f"/portal/c/{cid}/reports",
                f"/portal/c/{cid}/day?date={day}", f"/portal/c/{cid}/month?month={day[:7]}",
                f"/portal/c/{cid}/advice", f"/portal/c/{cid}/alerts", f"/portal/c/{cid}/requests",
                f"/portal/c/{cid}/requests/{hostile.tickets[cid]}", f"/portal/c/{cid}/downloads",
                f"/portal/c/{cid}/limits", f"/portal/c/{cid}/live", f"/portal/c/{cid}/curve?range=week&date={day}",
                f"/portal/c/{cid}/costs?month={day[:7]}", f"/portal/c/{cid}/performance", f"/portal/c/{cid}/purchase"]
        out.append(f"/portal/c/{cid}/setup")
        out.append(__import__("tests.gateway.portal.test_cost_centre_pages", fromlist=["_"]).hostile_page(hostile, cid))
    return out


def test_every_template_shows_hostile_text_as_text(app, hostile):
    """Fails when any page lets user text become markup: a script, an event handler, an element, a javascript: URL."""
    clients = {u: logged_in(app, u) for u in ("hostile-admin", "eng", "mgr", "cust-acme", "cust-beta")}
    with hostile.gw.db() as s:  # the admin's username turns hostile after login (sessions follow the user id)
        s.execute(update(User).where(User.id == hostile.renamed_user_id).values(username=HOSTILE_USERNAME))
        s.commit()
    anonymous = TestClient(app)
    responses = [("anonymous", "/login", anonymous.get("/login")),
                 ("anonymous", "/login (refused)", anonymous.post("/login", data={
                     "username": HOSTILE_USERNAME, "password": "wrong-password", "csrf_token": "x"}))]
    for username, c in clients.items():
        responses += [(username, path, c.get(path)) for path in pages(hostile)]
    rendered: set[str] = set()
    served: set[str] = set()
    problems: list[str] = []
    hidden: list[str] = []
    for username, path, r in responses:
        if r.status_code in (403, 404) and username not in ("hostile-admin", "anonymous"):
            continue  # a page this role may not open (the admin opens them all)
        assert r.status_code in (200, 403), f"{username} {path} -> {r.status_code}: {r.text[:300]}"
        assert r.headers["content-type"].startswith("text/html")
        if getattr(r, "template", None) is not None:
            rendered.add(r.template.name)
        result = scan(r.text)
        problems += [f"{username} {path}: {p}" for p in result.problems]
        if username == "anonymous":
            continue
        served.add(path)
        if HOSTILE not in "".join(result.text) and path not in USER_ONLY_PAGES:
            hidden.append(f"{username} {path}: the hostile text is not shown as text")
        if username == "hostile-admin" and f'>{escape(HOSTILE_USERNAME)}</a>' not in r.text:
            hidden.append(f"{username} {path}: the username is not shown as text")
    assert not problems, "\n".join(problems)
    assert not hidden, "\n".join(hidden)
    assert set(pages(hostile)) <= served
    # Every template was rendered by some page (base.html.j2 by all of them, through `extends`).
    # admin_users_password.html.j2 answers only a password reset (a POST): tests/gateway/portal/test_admin_users.py
    expected = {p.name for p in TEMPLATES.glob("*.j2")} - {"base.html.j2", "admin_users_password.html.j2"}
    assert expected <= rendered, f"templates no page rendered: {expected - rendered}"
