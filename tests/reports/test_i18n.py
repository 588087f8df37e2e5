"""Every report text in both languages, every key the templates and writers use in the catalogue, Babel's formats.

The catalogue is reports/locale/{zh_CN,en}/LC_MESSAGES/messages.po (tests/test_catalogs.py checks it as a whole).
"""

from __future__ import annotations

import re
import string
import tomllib
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from crm_bridge.desk.workflow import NEXT
from crm_bridge.tariffs import BasicChargeMode
from reports.i18n import Texts, catalogue, language
from reports.render import _env

ROOT = Path(__file__).resolve().parents[2]
CJK = re.compile(r"[\u3400-\u9fff]")
SAME_IN_BOTH = {"dash", "tier_change_text"}  # symbols only


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_key_is_in_both_languages_with_the_same_placeholders():
    cat = catalogue()
    assert len(cat) > 100
    for key, entry in cat.items():
        assert set(entry) == {"en", "zh"}, key
        assert entry["en"].strip(), key
        assert entry["zh"].strip(), key
        assert _fields(entry["en"]) == _fields(entry["zh"]), key
        if key not in SAME_IN_BOTH:
            assert CJK.search(entry["zh"]), f"{key}: the Chinese text has no Chinese"
            assert not CJK.search(entry["en"]), f"{key}: Chinese in the English text"


def _used_keys() -> set[str]:
    used: set[str] = set()
    writers = [p for p in ROOT.joinpath("reports").glob("*.py") if p.name != "i18n.py"]  # i18n.py defines, not uses
    for path in [*ROOT.joinpath("reports", "templates").glob("*.j2"), *writers, ROOT / "gateway" / "report_jobs.py"]:
        text = path.read_text("utf-8")
        used |= set(re.findall(r"(?<!\w)[t_]\(\s*['\"](\w+)['\"]", text))
        used |= set(re.findall(r"['\"](mail_\w+|monthly_title|brief_title)['\"]", text))
    return used


def test_every_key_the_reports_use_is_in_the_catalogue():
    used = _used_keys()
    assert len(used) > 80, "the scan finds the keys"
    assert used <= set(catalogue()), sorted(used - set(catalogue()))


def test_every_code_a_report_shows_has_a_word_in_both_languages():
    cat = catalogue()
    bands = set()
    for path in ROOT.joinpath("crm_bridge", "data", "tariffs").glob("*.toml"):
        doc = tomllib.loads(path.read_text("utf-8"))
        for version in doc.get("versions", []):
            bands |= {b["band"] for b in version.get("bands", [])}
    assert bands, "the shipped tariffs name their bands"
    for band in bands:
        assert f"band_{band}" in cat, band
    for status in NEXT:
        assert f"ticket_{status}" in cat, status
    for mode in BasicChargeMode:
        assert f"mode_{mode.value}" in cat, mode
    for status in ("measured", "estimated", "missing", "pending"):
        assert status in cat


def test_numbers_money_and_dates_follow_the_readers_locale():
    tz = ZoneInfo("Asia/Shanghai")
    zh, en = Texts("zh", tz), Texts("en", tz)
    assert zh.money(1234567.891) == "¥1,234,567.89"
    assert en.money(1234567.891) == "CN¥1,234,567.89"
    assert en.number(404919.6) == "404,920"
    assert zh.percent(0.5312) == "53.1%"
    assert en.signed_percent(0.25) == "+25.0%"
    assert zh.month(date(2026, 11, 1)) == "2026年11月"
    assert en.month(date(2026, 11, 1)) == "November 2026"
    assert zh.when(datetime(2026, 11, 19, 1, 15, tzinfo=UTC)) == "2026-11-19 09:15", "on the customer's clock"
    assert zh.t("missing_note", missing="4", total="2,880").startswith("2,880 个15分钟时段中有 4 个")
    assert en.money(None) == "—"
    assert zh.label("band", "valley") == "谷"
    assert en.label("band", "something_new") == "something_new"


@pytest.mark.parametrize(("value", "expected"), [("zh-CN", "zh"), ("en_GB", "en"), ("EN", "en"), ("", "zh"),
                                                 (None, "zh")])
def test_language_tags(value, expected):
    assert language(value) == expected


def test_an_unknown_language_is_refused():
    with pytest.raises(ValueError, match="zh or en"):
        language("fr")


def test_templates_speak_the_reports_language_through_the_i18n_extension():
    """`_` is installed once on the reports' Environment and reads the language from the report's `f`."""
    tz = ZoneInfo("Asia/Shanghai")
    page = _env().from_string("{{ _('times_in', tz=tz) }}|{{ gettext('legend') }}")
    assert page.render(f=Texts("zh", tz), tz="<Asia/Shanghai>") == "时间为 &lt;Asia/Shanghai&gt;|图例"
    assert page.render(f=Texts("en", tz), tz="UTC") == "Times in UTC|Legend"
    with pytest.raises(KeyError, match="no_such_key"):
        _env().from_string("{{ _('no_such_key') }}").render(f=Texts("en", tz))
