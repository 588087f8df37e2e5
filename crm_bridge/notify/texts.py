"""Notification texts in the recipient's language, with Babel formatting numbers, times and money.

The texts are the gettext catalogues `crm_bridge/notify/locale/<zh_CN|en>/LC_MESSAGES/messages.po`, msgid
`<section>.<key>` (`alert.opened.subject`, `severity.warning`), `{name}` placeholders filled with str.format.
An alert's own message is shown in the recipient's language from its message key and values when the notifier was
given an `AlertText` renderer (the gateway passes the portal's, whose catalogue has the alert keys).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.numbers import format_currency, format_decimal

from crm_bridge.i18n import Catalogue
from crm_bridge.notify.events import EventKind

LANGUAGES = ("zh", "en")
_LOCALES = {"zh": "zh_Hans_CN", "en": "en_GB"}
FOLDERS = {"zh": "zh_CN", "en": "en"}  # locale/<folder>/LC_MESSAGES/messages.po

# An alert's message in one language: (key, values, stored English text, time zone, language) -> text.
AlertText = Callable[[str, Mapping[str, Any], str, str, str], str]


@cache
def catalogue() -> Catalogue:
    """The notification texts, read once."""
    return Catalogue(resources.files("crm_bridge.notify").joinpath("locale"), FOLDERS)


@cache
def messages() -> dict[str, Any]:
    """The catalog: section -> key -> {language: text}."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for msgid, texts in catalogue().entries().items():
        section, _, key = msgid.rpartition(".")
        out.setdefault(section, {})[key] = texts
    return out


def missing_translations() -> list[str]:
    """`section.key.language` of every text the catalog lacks (a test keeps this empty)."""
    out = []
    for section, keys in messages().items():
        for key, texts in keys.items():
            out += [f"{section}.{key}.{lang}" for lang in LANGUAGES if not texts.get(lang)]
    return out


def language(value: str | None, default: str) -> str:
    """`zh`, `zh-CN`, `zh_Hans` ... -> zh; `en-GB` ... -> en; anything else -> `default`."""
    head = (value or "").replace("_", "-").split("-")[0].lower()
    return head if head in LANGUAGES else default


def text(section: str, key: str, lang: str) -> str:
    """One text of the catalog in `lang` (KeyError for a key it does not have)."""
    msgid = f"{section}.{key}"
    if not catalogue().has(msgid, lang):
        raise KeyError(f"notification text {msgid!r} is not in the {lang} catalogue (crm_bridge/notify/locale)")
    return catalogue().gettext(msgid, lang)


def locale_of(lang: str) -> str:
    return _LOCALES[lang]


def fmt_time(value: datetime | str | None, lang: str, tz: str) -> str:
    """A time as the recipient reads it: its locale's medium date and short time, in its zone."""
    if value is None or value == "":
        return text("misc", "none", lang)
    t = datetime.fromisoformat(value) if isinstance(value, str) else value
    local = t.astimezone(ZoneInfo(tz))
    loc = locale_of(lang)
    return f"{format_date(local, 'medium', locale=loc)} {format_time(local, 'short', locale=loc)}"


def fmt_window(start: str | None, end: str | None, lang: str, tz: str) -> str:
    """`<date> <time>–<time> (<zone>)`, or with both dates when the window spans midnight."""
    if not start or not end:
        return text("misc", "none", lang)
    s = datetime.fromisoformat(start).astimezone(ZoneInfo(tz))
    e = datetime.fromisoformat(end).astimezone(ZoneInfo(tz))
    loc = locale_of(lang)
    tail = format_time(e, "short", locale=loc) if s.date() == e.date() else fmt_time(e, lang, tz)
    return f"{fmt_time(s, lang, tz)}–{tail} ({tz})"


def fmt_number(value: float, lang: str, digits: int = 1) -> str:
    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
    return str(format_decimal(value, format=pattern, locale=locale_of(lang)))


def fmt_money(amount: float, currency: str, lang: str) -> str:
    return str(format_currency(amount, currency, locale=locale_of(lang)))


class _Values(dict[str, str]):
    """Placeholders without a value read as a dash instead of failing a message."""

    def __missing__(self, key: str) -> str:
        return "–"


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


def values(kind: EventKind, data: Mapping[str, Any], customer: str, lang: str, tz: str,
           alert_text: AlertText | None = None) -> dict[str, str]:
    """The placeholders of an event's texts, formatted for `lang` and `tz`.

    `message` is the alert's stored English text, or with `alert_text` and an alert that has a message key
    (`message_key`, `message_params` in `data`) that message in `lang`. `type` is the alert's rule title in `lang`
    (`alert_type_<type>` of the same catalogue, as the portal's alert list names it) when `alert_text` has one,
    else the rule id.
    """
    out: dict[str, str] = {"customer": customer}
    for key in ("alert_id", "ticket_id", "type", "message", "title", "category", "period", "attachment"):
        if data.get(key) is not None:
            out[key] = str(data[key])
    if alert_text is not None and data.get("type") is not None:
        rule = str(data["type"])
        out["type"] = alert_text(f"alert_type_{rule}", {}, rule, tz, lang)
    if alert_text is not None and data.get("message_key"):
        out["message"] = alert_text(str(data["message_key"]), data.get("message_params") or {},
                                    str(data.get("message") or ""), tz, lang)
    if data.get("meter") is not None or kind in (EventKind.ALERT_OPENED, EventKind.ALERT_RESOLVED):
        out["meter"] = str(data.get("meter") or text("misc", "none", lang))
    if data.get("severity") in ("info", "warning", "critical"):
        out["severity"] = text("severity", data["severity"], lang)
    if data.get("kind") in ("request", "complaint"):
        out["kind"] = text("ticket_kind", data["kind"], lang)
    if catalogue().has(f"status.{data.get('status')}", lang):
        out["status"] = text("status", data["status"], lang)
    for key in ("opened_at", "created_at", "due"):
        if key in data:
            out[{"opened_at": "opened", "created_at": "created"}.get(key, key)] = fmt_time(data[key], lang, tz)
    if "window_start" in data:
        out["window"] = fmt_window(data.get("window_start"), data.get("window_end"), lang, tz)
    if data.get("minutes") is not None:
        out["minutes"] = fmt_number(float(data["minutes"]), lang, 0)
    if kind is EventKind.REPORT_READY:
        title = data.get(f"title_{lang}") or data.get("title")
        out["title"] = str(title) if title else text("report", "monthly", lang)
        amount = data.get("amount")
        out["amount_line"] = "" if amount is None else text("report", "amount", lang).format(
            amount=fmt_money(float(amount), str(data.get("currency") or "CNY"), lang))
    return out


def render(kind: EventKind, data: Mapping[str, Any], customer: str, lang: str, tz: str,
           alert_text: AlertText | None = None) -> Rendered:
    """Subject and plain-text body of one event for one recipient (`alert_text`: see `values`)."""
    vals = _Values(values(kind, data, customer, lang, tz, alert_text))
    return Rendered(text(kind.value, "subject", lang).format_map(vals), text(kind.value, "body", lang).format_map(vals))


def render_digest(items: list[tuple[datetime, str]], lang: str, tz: str) -> Rendered:
    """The daily digest: a count in the subject, one line per message (time and subject) in the body."""
    count = fmt_number(len(items), lang, 0)
    lines = [text("digest", "intro", lang), ""]
    lines += [text("digest", "item", lang).format(at=fmt_time(at, lang, tz), subject=subject)
              for at, subject in sorted(items)]
    return Rendered(text("digest", "subject", lang).format(count=count), "\n".join(lines))
