"""The portal's texts in the reader's language: gettext catalogues read by Babel, Babel for numbers, money, times.

Every text a person reads comes from `locale/<zh_CN|en>/LC_MESSAGES/messages.po` (msgid = the message key, `{name}`
placeholders filled with str.format), compiled in memory on first use (reports.i18n.Catalogue). Templates call
`_("key", name=value)` through Jinja's i18n extension (`install`); not `{% trans %}` blocks, whose text would be the
msgid where the catalogue's msgids are keys. Alerts keep their message as a key and values
(crm_bridge.alerts), rendered here on each reader's clock and in their language; alerts stored before keys existed
are read back from their English text (`legacy_alert`). A key the catalogue lacks shows as the key itself and is
recorded in MISSING, which the page-walking test reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any, cast
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time, format_timedelta
from babel.numbers import format_currency, format_decimal, format_percent
from jinja2 import Environment, pass_context
from jinja2.runtime import Context

from crm_bridge.i18n import Catalogue

LANGS = ("zh", "en")
LOCALES = {"zh": "zh_CN", "en": "en"}  # Babel's locales, and the catalogues' folders under locale/
MISSING: set[tuple[str, str]] = set()  # (key, language) asked for and not in the catalogue
# Alert values that are numbers with their digits, percentages, or times (ISO text) on the reader's clock.
_DIGITS = {"value": 1, "limit": 1, "contract": 0, "factor": 2, "n": 0}
_PF_KEYS = frozenset({"alert_pf_low", "alert_threshold_pf"})


@cache
def catalogue() -> Catalogue:
    """The portal's catalogue, read once."""
    return Catalogue(resources.files("gateway.portal").joinpath("locale"), LOCALES)


def has(key: str, lang: str | None = None) -> bool:
    """Whether the catalogue has `key` in `lang` (in every language when None)."""
    return all(catalogue().has(key, x) for x in ((lang,) if lang else LANGS))


@cache
def messages() -> dict[str, dict[str, str]]:
    """The catalogue as key -> {"zh": ..., "en": ...} (a language missing where the catalogue lacks the key)."""
    return catalogue().entries()


def text(key: str, lang: str, **values: Any) -> str:
    """The message `key` in `lang`, with `{name}` placeholders filled from `values`."""
    if not catalogue().has(key, lang):
        MISSING.add((key, lang))
        return key
    msg = catalogue().gettext(key, lang)
    return msg.format(**values) if values else msg


@pass_context
def gettext(context: Context, key: str, **values: Any) -> str:
    """Templates' `_("key", name=value)` (and `t`): the message in the page's language, the context's `lang`.

    Installed once on the shared Environment (not per request), so the language comes from the template context.
    """
    lang = context.get("lang")
    return text(key, lang if lang in LANGS else "zh", **values)


@pass_context
def ngettext(context: Context, singular: str, plural: str, n: int, **values: Any) -> str:
    """`ngettext("one_key", "many_key", n)`: keys are per form, so the form is chosen here; `{num}` is n."""
    return cast(str, gettext(context, singular if n == 1 else plural, num=n, **values))


def install(env: Environment) -> None:
    """Jinja's i18n extension on `env`, with `gettext`/`_`/`ngettext` above and `t` as another name for `_`."""
    env.add_extension("jinja2.ext.i18n")
    cast(Any, env).install_gettext_callables(gettext, ngettext, newstyle=False)


def label(prefix: str, value: str | None, lang: str) -> str:
    """A stored word (a status, a category, a kind, a band) in the reader's language; the word itself if unknown."""
    if value is None:
        return ""
    key = f"{prefix}_{value}"
    return catalogue().gettext(key, lang) if catalogue().has(key, lang) else value


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


# Alerts stored before they carried a key have only their English text, in the formats crm_bridge.alerts wrote
# since the first release: "<customer>: <what>", times as local "YYYY-MM-DD HH:MM" on the customer's clock. Each
# pattern gives the key the same alert gets today and its values; the customer prefix is dropped as in today's texts.
_AT = r"(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d)"
_NUM = r"[-+]?[\d,]*\.?\d+(?:e[-+]?\d+)?"
_LEGACY: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(rf"^(?P<where>.+?): {p}$"), key) for p, key in (
    (rf"month-to-date demand (?P<value>{_NUM}) kW in the 15-min window starting {_AT} is (?P<share>{_NUM})% of "
     rf"(?P<factor>{_NUM}) x contract demand \((?P<limit>{_NUM}) kW, the contract's (?P<contract>{_NUM}) kW raised "
     r"to its floor\)", "alert_demand_raised"),
    (rf"month-to-date demand (?P<value>{_NUM}) kW in the 15-min window starting {_AT} is (?P<share>{_NUM})% of "
     rf"(?P<factor>{_NUM}) x contract demand \((?P<limit>{_NUM}) kW\)", "alert_demand"),
    (rf"month-to-date power factor (?P<value>{_NUM}) is below the standard (?P<limit>{_NUM})", "alert_pf_low"),
    (rf"kw (?P<value>{_NUM}) in the interval starting {_AT} exceeds (?P<limit>{_NUM})", "alert_threshold_kw"),
    (rf"kwh (?P<value>{_NUM}) in the interval starting {_AT} exceeds (?P<limit>{_NUM})", "alert_threshold_kwh"),
    (rf"meter (?P<meter>\S+) has no data for (?P<n>\d+) intervals since {_AT}", "alert_data_gap"),
    (rf"night base load (?P<value>{_NUM}) kW is (?P<share>{_NUM})% above its 4-week median (?P<limit>{_NUM}) kW",
     "alert_base_load_rise"),
    (rf"last 7 days (?P<value>{_NUM}) kWh, (?P<share>{_NUM})% against the same days last year",
     "alert_consumption_change"),
    (rf"meter (?P<meter>\S+) is offline \(since {_AT}(?: (?P<zone>[A-Za-z][\w/+-]*))?\)", "alert_meter_offline"),
    (r"meter (?P<meter>\S+) is offline \(never reported\)", "alert_meter_never"),
    (rf"forecast bill (?P<value>{_NUM}) for (?P<month>\d{{4}}-\d\d) exceeds the threshold (?P<limit>{_NUM})",
     "alert_bill_forecast"),
))


def legacy_alert(english: str, zone: str) -> tuple[str, dict[str, Any]] | None:
    """The key and values of an alert stored with its English text only; None for a text of no known format.

    Times in those texts are wall-clock times on the customer's clock (`zone`), or on the clock they name.
    """
    for pattern, key in _LEGACY:
        m = pattern.match(english.strip())
        if m is None:
            continue
        params: dict[str, Any] = {}
        for name, raw in m.groupdict().items():
            if raw is None or name == "zone":
                continue
            if name in ("where", "meter", "month"):
                params[name] = raw
            elif name == "at":
                named = m.groupdict().get("zone")
                tz = ZoneInfo("UTC") if named == "UTC" else ZoneInfo(zone)
                params[name] = datetime.fromisoformat(raw).replace(tzinfo=tz).isoformat()
            elif name == "n":
                params[name] = int(raw)
            else:
                params[name] = float(raw.replace(",", "")) / (100 if name == "share" else 1)
        return key, params
    return None


def alert_message(key: str | None, params: Mapping[str, Any], english: str, zone: str, lang: str) -> str:
    """An alert's message in `lang`: from its key and values; the stored English text for alerts without a key."""
    if not key:
        found = legacy_alert(english, zone)
        if found is None:
            return english
        key, params = found
    if not has(key, lang):
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
    if not key or not has(key, lang):
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


__all__ = ["LANGS", "MISSING", "advice_title", "alert_message", "countdown", "gettext", "install", "label", "messages",
           "money", "negotiate", "ngettext", "num", "percent", "span", "text", "when"]
