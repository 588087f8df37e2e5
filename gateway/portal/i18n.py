"""The portal's texts in the reader's language: the message catalogue, Babel for numbers, money, times and spans.

Every text a person reads comes from `messages.toml` (one entry per key, `zh` and `en`). Alerts keep their message
as a key and values (crm_bridge.alerts), rendered here on each reader's clock and in their language. A key the
catalogue lacks shows as the key itself and is recorded in MISSING, which the page-walking test reads.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time, format_timedelta
from babel.numbers import format_currency, format_decimal, format_percent

LANGS = ("zh", "en")
LOCALES = {"zh": "zh_CN", "en": "en"}
MISSING: set[tuple[str, str]] = set()  # (key, language) asked for and not in the catalogue
# Alert values that are numbers with their digits, percentages, or times (ISO text) on the reader's clock.
_DIGITS = {"value": 1, "limit": 1, "contract": 0, "factor": 2, "n": 0}
_PF_KEYS = frozenset({"alert_pf_low", "alert_threshold_pf"})


@cache
def messages() -> dict[str, dict[str, str]]:
    """The catalogue: key -> {"zh": ..., "en": ...}."""
    return tomllib.loads((Path(__file__).parent / "messages.toml").read_text("utf-8"))


def text(key: str, lang: str, **values: Any) -> str:
    """The message `key` in `lang`, with `{name}` placeholders filled from `values`."""
    entry = messages().get(key)
    if entry is None or lang not in entry:
        MISSING.add((key, lang))
        return key
    return entry[lang].format(**values) if values else entry[lang]


def label(prefix: str, value: str | None, lang: str) -> str:
    """A stored word (a status, a category, a kind, a band) in the reader's language; the word itself if unknown."""
    if value is None:
        return ""
    entry = messages().get(f"{prefix}_{value}")
    return entry.get(lang, value) if entry else value


def num(x: float | None, lang: str, digits: int = 0) -> str:
    """A number with the locale's grouping and `digits` decimals; an en dash for none."""
    if x is None:
        return "–"
    fmt = "#,##0" + ("." + "0" * digits if digits else "")
    return str(format_decimal(x, format=fmt, locale=LOCALES[lang]))


def money(x: float | None, currency: str, lang: str, digits: int = 0) -> str:
    """An amount in `currency`, the locale's way (¥12,345 in Chinese, CN¥12,345 in English)."""
    if x is None:
        return "–"
    fmt = "¤#,##0" + ("." + "0" * digits if digits else "")
    return str(format_currency(x, currency, format=fmt, locale=LOCALES[lang], currency_digits=False))


def percent(x: float | None, lang: str) -> str:
    return "–" if x is None else str(format_percent(x, locale=LOCALES[lang]))


def when(iso: str | datetime | None, zone: str, lang: str) -> str:
    """A moment on `zone`'s clock, date and minute, the locale's way."""
    if not iso:
        return ""
    t = (datetime.fromisoformat(iso) if isinstance(iso, str) else iso).astimezone(ZoneInfo(zone))
    return f"{format_date(t, 'medium', locale=LOCALES[lang])} {format_time(t, 'HH:mm', locale=LOCALES[lang])}"


def span(delta: timedelta, lang: str) -> str:
    """A duration to the minute: "3 hours", "3小时"."""
    return str(format_timedelta(delta, granularity="minute", threshold=1.5, locale=LOCALES[lang]))


def countdown(due_iso: str | None, now: datetime, lang: str) -> str:
    """"Due in 3 hours" / "Overdue by 20 minutes" (empty without a due time)."""
    if not due_iso:
        return ""
    left = datetime.fromisoformat(due_iso) - now
    if left.total_seconds() >= 0:
        return text("due_in", lang, d=span(left, lang))
    return text("overdue_by", lang, d=span(-left, lang))


def alert_message(key: str | None, params: Mapping[str, Any], english: str, zone: str, lang: str) -> str:
    """An alert's message in `lang`: from its key and values; the stored English text for alerts without a key."""
    if not key or key not in messages():
        return english
    values: dict[str, Any] = {}
    for name, v in params.items():
        if name == "share":
            values[name] = percent(v, lang)
        elif name == "at" and isinstance(v, str):
            values[name] = when(v, zone, lang)
        elif name in ("value", "limit") and key in _PF_KEYS:
            values[name] = num(v, lang, 2)
        elif name in ("value", "limit") and key in ("alert_bill_forecast", "alert_threshold_bill"):
            values[name] = num(v, lang, 0)
        elif name in _DIGITS and isinstance(v, int | float):
            values[name] = num(v, lang, _DIGITS[name])
        else:
            values[name] = "" if v is None else v
    try:
        return text(key, lang, **values)
    except (KeyError, IndexError, ValueError):  # a catalogue entry naming a value this alert does not carry
        return english


def advice_title(item: Mapping[str, Any], lang: str) -> str:
    """A piece of advice's title in `lang` from its key and values (crm_bridge.services.advice); else its English."""
    key, p = item.get("text_key"), item.get("params") or {}
    if not key or key not in messages():
        return str(item.get("title", ""))
    values: dict[str, Any] = {
        "kwh": num(p.get("kwh"), lang), "kw": num(p.get("kw"), lang), "kvar": num(p.get("kvar"), lang),
        "pf": num(p.get("pf"), lang, 2), "cut": num(p.get("cut"), lang), "now": num(p.get("now"), lang),
        "month": p.get("month", ""),
    }
    # A load shift names TOU bands; a basic-charge switch names billing modes.
    what = "band" if "band_from" in p else "mode"
    values["from"] = label(what, p.get(f"{what}_from"), lang)
    values["to"] = label(what, p.get(f"{what}_to"), lang)
    return text(key, lang, **values)


def negotiate(accept_language: str | None) -> str:
    """The language (zh or en) of an Accept-Language header: the first of the two it names, else zh."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("en"):
            return "en"
        if tag.startswith("zh"):
            return "zh"
    return "zh"


__all__ = ["LANGS", "MISSING", "advice_title", "alert_message", "countdown", "label", "messages", "money",
           "negotiate", "num", "percent", "span", "text", "when"]
