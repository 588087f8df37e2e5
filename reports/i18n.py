"""Report texts in Chinese and English, and numbers, dates and money in the reader's locale (Babel)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from functools import cache
from importlib import resources
from typing import Literal

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, format_percent

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
LOCALES: dict[Lang, str] = {"zh": "zh_CN", "en": "en_US"}
DASH = "—"


@cache
def catalogue() -> dict[str, dict[str, str]]:
    """Every report text by key, each with `en` and `zh` (reports/messages.toml)."""
    text = resources.files("reports").joinpath("messages.toml").read_text("utf-8")
    return tomllib.loads(text)


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
        text = catalogue()[key][self.lang]
        return text.format(**fill) if fill else text

    def label(self, prefix: str, key: str) -> str:
        """A vocabulary word (`band_peak`, `ticket_new`); the code itself when the catalogue lacks it."""
        entry = catalogue().get(f"{prefix}_{key}")
        return entry[self.lang] if entry else key

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
