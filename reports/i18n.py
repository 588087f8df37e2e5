"""Report texts in Chinese and English from gettext catalogues (Babel); numbers, dates and money in their locale.

The catalogues are `reports/locale/<zh_CN|en>/LC_MESSAGES/messages.po`, msgid = the text's key and `{name}`
placeholders filled with str.format. Babel compiles each .po in memory on first use, so there is no .mo to build or
to go stale. `Catalogue` (crm_bridge.i18n) is the one loader of every catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from functools import cache
from importlib import resources
from typing import Any, Literal, cast

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, format_percent
from jinja2 import Environment, pass_context
from jinja2.runtime import Context

from crm_bridge.i18n import Catalogue

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
LOCALES: dict[Lang, str] = {"zh": "zh_CN", "en": "en_US"}  # Babel's formats
FOLDERS: dict[Lang, str] = {"zh": "zh_CN", "en": "en"}  # the catalogues, locale/<folder>/LC_MESSAGES/messages.po
DASH = "—"


@cache
def texts_catalogue() -> Catalogue:
    """The reports' catalogue, read once."""
    return Catalogue(resources.files("reports").joinpath("locale"), FOLDERS)


@cache
def catalogue() -> dict[str, dict[str, str]]:
    """Every report text by key, each with `en` and `zh`."""
    return texts_catalogue().entries()


def text(key: str, lang: str, **fill: object) -> str:
    """The report text `key` in `lang`, `{name}` placeholders filled; KeyError for a key the catalogue lacks."""
    cat = texts_catalogue()
    if not cat.has(key, lang):
        raise KeyError(f"report text {key!r} is not in the {lang} catalogue (reports/locale)")
    msg = cat.gettext(key, lang)
    return msg.format(**fill) if fill else msg


@pass_context
def gettext(context: Context, key: str, **fill: object) -> str:
    """Templates' `_("key", name=value)`: the text in the report's language (its `f`, else its `lang`)."""
    f = context.get("f")
    lang = f.lang if isinstance(f, Texts) else language(context.get("lang"))
    return text(key, lang, **fill)


@pass_context
def ngettext(context: Context, singular: str, plural: str, n: int, **fill: object) -> str:
    """`ngettext("one_key", "many_key", n)`: keys are per form, so the form is chosen here; `{num}` is n."""
    return cast(str, gettext(context, singular if n == 1 else plural, num=n, **fill))


def install(env: Environment) -> None:
    """Jinja's i18n extension with the callables above, installed once: they read the language from the context."""
    env.add_extension("jinja2.ext.i18n")
    cast(Any, env).install_gettext_callables(gettext, ngettext, newstyle=False)


def language(value: str | None, default: Lang = "zh") -> Lang:
    """`zh` or `en` from a language tag (`zh-CN`, `en_GB`, `EN`); `default` when empty."""
    if not value:
        return default
    head = value.replace("_", "-").split("-")[0].lower()
    if head not in LANGS:
        raise ValueError(f"language {value!r}: reports are in zh or en")
    return head  # type: ignore[return-value]


@dataclass(frozen=True)
class Texts:
    """The texts and formats of one reader: `t(key, **fill)`, and Babel's numbers, money and dates.

    `tz` is the customer's zone: every date and time is shown on its clock.
    """

    lang: Lang
    tz: tzinfo
    currency: str = "CNY"

    @property
    def locale(self) -> str:
        return LOCALES[self.lang]

    def t(self, key: str, **fill: object) -> str:
        return text(key, self.lang, **fill)

    def label(self, prefix: str, key: str) -> str:
        """A vocabulary word (`band_peak`, `ticket_new`); the code itself when the catalogue lacks it."""
        name = f"{prefix}_{key}"
        return text(name, self.lang) if texts_catalogue().has(name, self.lang) else key

    def number(self, x: float | None, digits: int = 0) -> str:
        if x is None or x != x:
            return DASH
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(x, format=pattern, locale=self.locale)

    def money(self, x: float | None, currency: str | None = None) -> str:
        if x is None or x != x:
            return DASH
        return format_currency(round(x, 2), currency or self.currency, locale=self.locale)

    def percent(self, x: float | None, digits: int = 1) -> str:
        """`x` as a share (0.873 is 87.3 %)."""
        if x is None or x != x:
            return DASH
        return format_percent(x, format="#,##0." + "0" * digits + "%", locale=self.locale)

    def signed_percent(self, x: float | None) -> str:
        if x is None or x != x:
            return DASH
        return ("+" if x > 0 else "") + self.percent(x)

    def month(self, first: date) -> str:
        return format_date(first, "yyyy年M月" if self.lang == "zh" else "MMMM yyyy", locale=self.locale)

    def day(self, d: date) -> str:
        return format_date(d, "medium", locale=self.locale)

    def when(self, t: datetime | None) -> str:
        """A moment on the customer's clock, to the minute."""
        if t is None:
            return DASH
        return format_datetime(t, "yyyy-MM-dd HH:mm", tzinfo=self.tz, locale=self.locale)
