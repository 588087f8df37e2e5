"""Every portal page in Chinese and in English, with no text the catalogue lacks.

No stored English word (a status, a category, a kind, a severity, a band) on a Chinese page where a translation
exists, error pages in the reader's language, and a catalogue with both languages for every key a template names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from gateway.portal import i18n
from tests.gateway.api.world import PASSWORD

TEMPLATES = Path(__file__).parents[3] / "gateway" / "portal" / "templates"
# Stored words that have a translation: none of them may be shown as-is on a Chinese page.
STORED = ("new", "acknowledged", "in_progress", "resolved", "closed", "open", "billing", "power_quality",
          "metering", "capacity", "request", "complaint", "info", "warning", "critical", "peak", "valley", "flat",
          "critical_peak", "demand_90", "demand_100", "pf_low", "threshold_kw", "intervals", "missing")


class Text(HTMLParser):
    """The text a reader sees (not scripts, styles or the JSON data blocks)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.parts.append(data.strip())


def visible(html: str) -> list[str]:
    p = Text()
    p.feed(html)
    return p.parts


@contextmanager
def client_for(url: str, username: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=60) as c:
        yield _logged_in(c, username)


def _logged_in(c: httpx.Client, username: str) -> httpx.Client:
    token = c.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
    r = c.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 303, r.text
    return c


def pages(world, customer: str) -> list[str]:
    day = world.today[customer]
    return [f"/portal/c/{customer}/{p}" for p in (f"day?date={day}", f"month?month={day[:7]}", "advice", "alerts",
                                                    "requests", f"requests/{world.tickets[customer]}", "downloads",
                                                    "limits")]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_page_has_every_text_in_the_language(portal, portal_world, lang):
    walked = []
    users = {"cust-acme": pages(portal_world, "acme"), "cust-beta": pages(portal_world, "beta"),
             "mgr-a": ["/portal/queue", "/portal/stats", "/portal/accounts", "/portal/password",
                       *pages(portal_world, "gamma")],
             "admin": ["/portal/accounts", "/portal/queue", "/portal/stats"]}
    i18n.MISSING.clear()
    english_words = []
    for username, paths in users.items():
        with client_for(portal.url, username) as c:
            for path in paths:
                sep = "&" if "?" in path else "?"
                r = c.get(f"{path}{sep}lang={lang}")
                assert r.status_code == 200, f"{username} {path}: {r.status_code}"
                assert f'<html lang="{lang}">' in r.text
                walked.append(path)
                if lang == "zh":
                    words = {w for part in visible(r.text) for w in re.findall(r"[A-Za-z_0-9]+", part)}
                    english_words += [f"{username} {path}: {w}" for w in sorted(words & set(STORED))]
    assert len(walked) >= 30
    assert not i18n.MISSING, f"texts the catalogue lacks: {sorted(i18n.MISSING)}"
    assert not english_words, "\n".join(english_words)


def test_status_and_category_words_are_translated_on_the_queue(portal):
    with client_for(portal.url, "mgr-a") as c:
        zh = visible(c.get("/portal/queue?lang=zh").text)
        en = visible(c.get("/portal/queue?lang=en").text)
    assert {"新建", "电费", "服务请求"} <= set(zh)
    assert {"New", "Billing"} <= set(en)


@pytest.mark.parametrize(("headers", "expected"), [
    ({"Accept-Language": "en-US,en;q=0.8"}, "This page does not exist, or it is not yours."),
    ({"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}, "页面不存在，或您无权查看。"),
    ({}, "页面不存在，或您无权查看。"),
])
def test_error_pages_speak_the_readers_language(portal, headers, expected):
    with client_for(portal.url, "cust-beta") as c:
        r = c.get("/portal/c/acme/alerts", headers=headers)
    assert r.status_code == 404
    assert expected in r.text
    assert "Acme Works" not in r.text, "nothing of the other customer"


def test_error_page_follows_the_portals_language_choice(portal):
    with client_for(portal.url, "cust-beta") as c:
        c.get("/portal/c/beta/day?lang=en")
        assert "This page does not exist" in c.get("/portal/c/nope/day").text
        c.get("/portal/c/beta/day?lang=zh")
        assert "页面不存在" in c.get("/portal/c/nope/day").text


def test_the_catalogue_has_both_languages_and_every_key_a_template_names():
    catalogue = i18n.messages()
    assert all(set(v) == {"zh", "en"} and all(v.values()) for v in catalogue.values())
    named = set()
    for path in TEMPLATES.rglob("*.j2"):
        named |= set(re.findall(r"\bt\('([a-z0-9_]+)'\s*[,)]", path.read_text("utf-8")))
    assert named, "the scan found the templates' keys at all"
    assert not named - set(catalogue), f"keys the catalogue lacks: {sorted(named - set(catalogue))}"
    for prefix, words in (("ticket_status", ("new", "acknowledged", "in_progress", "resolved", "closed")),
                          ("alert_status", ("open", "acknowledged", "resolved")),
                          ("kind", ("request", "complaint")), ("severity", ("info", "warning", "critical")),
                          ("band", ("critical_peak", "peak", "flat", "valley"))):
        assert all(f"{prefix}_{w}" in catalogue for w in words), prefix


def test_alert_messages_in_each_language_with_locale_numbers():
    params = {"where": "acme", "value": 12345.67, "limit": 10000.0, "at": "2026-03-01T06:00:00+00:00"}
    zh = i18n.alert_message("alert_threshold_kw", params, "english", "Asia/Shanghai", "zh")
    en = i18n.alert_message("alert_threshold_kw", params, "english", "Asia/Shanghai", "en")
    assert zh == "acme：2026年3月1日 14:00 起的时段需量 12,345.7 千瓦，超过您设定的 10,000.0 千瓦。"
    assert en == ("acme: demand 12,345.7 kW in the interval starting Mar 1, 2026 14:00 exceeds your limit of "
                  "10,000.0 kW.")
    assert i18n.alert_message(None, {}, "stored English", "UTC", "zh") == "stored English", "alerts from before keys"
