"""Every portal page in Chinese and in English, with no text the catalogue lacks.

No stored English word (a status, a category, a kind, a severity, a band) on a Chinese page where a translation
exists, error pages in the reader's language, and a catalogue with both languages for every key a template names
(tests/test_catalogs.py checks the catalogues as a whole). Templates' `_()` through Jinja's i18n extension follows
each page's language on the one shared Environment, and alerts stored before they had keys read in Chinese too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from crm_bridge.alerts import raise_alert
from gateway.portal import i18n, templates
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
        named |= set(re.findall(r"(?<![\w.])[t_]\('([a-z0-9_]+)'\s*[,)]", path.read_text("utf-8")))
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


# Alert texts as crm_bridge.alerts wrote them before alerts carried a key (the English `message` only).
OLD_ENGLISH = [
    ("gamma: month-to-date demand 6694 kW in the 15-min window starting 2026-11-30 10:15 is 123% of 1.05 x contract"
     " demand (5250 kW)",
     "本月最大需量 6,694.0 千瓦（2026年11月30日 10:15 起的15分钟）已达 1.05 倍合同需量（5,250.0 千瓦）的 123%。"),
    ("gamma: month-to-date power factor 0.853 is below the standard 0.90", "本月功率因数 0.85 低于考核标准 0.90。"),
    ("gamma: kwh 412.5 in the interval starting 2026-11-30 10:15 exceeds 400",
     "gamma：2026年11月30日 10:15 起的时段电量 412.5 千瓦时，超过您设定的 400.0 千瓦时。"),
    ("gamma: meter gamma-m1 has no data for 8 intervals since 2026-11-30 10:15",
     "电表 gamma-m1 自 2026年11月30日 10:15 起已有 8 个时段无数据。"),
    ("gamma: night base load 120.5 kW is 35% above its 4-week median 89.0 kW",
     "夜间基础负荷 120.5 千瓦，比近4周中位数 89.0 千瓦高 35%。"),
    ("gamma: last 7 days 40000 kWh, -25% against the same days last year",
     "近7天用电 40,000.0 千瓦时，与去年同期相比变化 -25%。"),
    ("gamma: meter gamma-m1 is offline (since 2026-11-30 02:15 UTC)", "电表 gamma-m1 自 2026年11月30日 10:15 起离线。"),
    ("gamma: meter gamma-m1 is offline (never reported)", "电表 gamma-m1 离线（从未上报数据）。"),
    ("gamma: forecast bill 600,000 for 2026-11 exceeds the threshold 500,000",
     "2026-11 的电费预测 600,000 超过阈值 500,000。"),
]


@pytest.mark.parametrize(("english", "chinese"), OLD_ENGLISH)
def test_alerts_stored_without_a_key_are_read_back_from_their_english(english, chinese):
    assert i18n.alert_message(None, {}, english, "Asia/Shanghai", "zh") == chinese
    en = i18n.alert_message(None, {}, english, "Asia/Shanghai", "en")
    assert en != english, "today's English text for the same alert, with the reader's number format"
    assert not re.search(r"[\u3400-\u9fff]", en)


def test_an_alert_row_without_a_key_shows_in_chinese(portal, portal_world):
    english, chinese = OLD_ENGLISH[0]
    now = datetime.now(UTC)
    with portal_world.gw.db() as s:
        a = raise_alert(s, key="test:legacy-text:gamma", type="demand_100", severity="critical", customer_code="gamma",
                        meter_code=None, window_start=now - timedelta(minutes=15), window_end=now, message=english,
                        now=now)
        assert a is not None
        s.commit()
    with client_for(portal.url, "mgr-a") as c:
        zh = visible(c.get("/portal/c/gamma/alerts?lang=zh").text)
        en = visible(c.get("/portal/c/gamma/alerts?lang=en").text)
    assert chinese in zh
    assert english not in zh
    assert any(p.startswith("Month-to-date demand 6,694.0 kW") for p in en)


def test_one_environment_speaks_each_pages_language():
    """`_` is installed once; each render takes its language from its own context, and `t` is the same callable."""
    page = templates.env.from_string("{{ _('due_in', d=d) }}|{{ gettext('login') }}")
    assert page.render(lang="zh", d="<3>") == "剩余 &lt;3&gt;|登录"
    assert page.render(lang="en", d="3 hours") == "due in 3 hours|Log in"
    i18n.MISSING.clear()
    assert templates.env.from_string("{{ _('no_such_key') }}").render(lang="en") == "no_such_key"
    assert ("no_such_key", "en") in i18n.MISSING
    i18n.MISSING.clear()
