"""Numbers as a person reads them, in one place: each with its unit and a sensible precision, in the reader's locale.

The templates call these (`q`, `cash`, `pct`, `change` in every page's context) and the charts pass their text to
plotly as ready-made hover labels (`customdata` shown by HOVER), so a value reads the same in a table and on hover:

- kW, kWh, kvar, kvarh: one decimal below 100, none from 100 up ("87.5 kW", "4,323 kW");
- %: one decimal ("12.5%"); a power factor: two decimals, no unit;
- money: Decimal, two decimals, the currency's ISO code after the amount ("1,234.56 CNY"), never through a float
  sum (amounts arrive rounded to the cent and are read back exactly).

Rounding is half-even on the value as given (as Python's own formatting does), grouping and symbols the locale's.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Literal

from babel.numbers import format_currency, format_decimal, format_percent

LOCALES = {"zh": "zh_CN", "en": "en"}
POWER_UNITS = frozenset({"kW", "kWh", "kvar", "kvarh"})
Unit = Literal["kW", "kWh", "kvar", "kvarh", "%", "pf", ""]
NONE = "–"  # shown for a value that is not known: never 0
CENT = Decimal("0.01")
# Plotly's hover label: the text made here (customdata), and the trace's name beside it.
HOVER = "%{customdata}<extra>%{fullData.name}</extra>"


def _lang(lang: str) -> str:
    return LOCALES.get(lang, "zh_CN")


def digits(x: float | Decimal, unit: str) -> int:
    """How many decimals `x` gets in `unit` (see the module's rules)."""
    if unit in POWER_UNITS:
        return 1 if abs(round(Decimal(x), 1)) < 100 else 0
    if unit == "%":
        return 1
    if unit == "pf":
        return 2
    return 0


def _rounded(x: float | Decimal, places: int) -> Decimal:
    d = Decimal(x).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    return d.copy_abs() if d == 0 else d  # never "-0.0"


def _pattern(places: int, signed: bool) -> str:
    body = "#,##0" + ("." + "0" * places if places else "")
    return f"+{body};-{body}" if signed else body


def q(x: float | Decimal | None, unit: Unit | str = "", lang: str = "zh", signed: bool = False) -> str:
    """A quantity with its unit: "4,323 kW", "87.5 kWh", "0.93" (pf), "12.5%"; an en dash when unknown."""
    if x is None or x != x:  # noqa: PLR0124 - NaN
        return NONE
    places = digits(x, unit)
    if unit == "%":
        return pct(x, lang, signed)
    value = _rounded(x, places)
    text = str(format_decimal(value, format=_pattern(places, signed and value != 0), locale=_lang(lang)))
    return f"{text} {unit}" if unit and unit != "pf" else text


def pct(x: float | Decimal | None, lang: str = "zh", signed: bool = False) -> str:
    """A percentage given in percent (12.5 -> "12.5%"), one decimal, the locale's way."""
    if x is None or x != x:  # noqa: PLR0124 - NaN
        return NONE
    value = _rounded(Decimal(x), 1) / 100
    body = "#,##0.0%"
    fmt = f"+{body};-{body}" if signed and value != 0 else body
    return str(format_percent(value, format=fmt, locale=_lang(lang), decimal_quantization=False))


def amount(x: float | Decimal | str | None) -> Decimal | None:
    """An amount of money as Decimal to the cent, read back from the use cases' cent-rounded number exactly."""
    if x is None:
        return None
    d = x if isinstance(x, Decimal) else Decimal(str(x))
    return d.quantize(CENT, rounding=ROUND_HALF_UP)


def cash(x: float | Decimal | str | None, currency: str | None, lang: str = "zh", signed: bool = False) -> str:
    """Money with its currency, two decimals: "1,234.56 CNY" ("+12.00 CNY" when `signed`); an en dash when unknown."""
    value = amount(x)
    if value is None or not currency:
        return NONE
    body = "#,##0.00 ¤¤"
    fmt = f"+{body};-{body}" if signed and value != 0 else body
    return str(format_currency(value, currency, format=fmt, locale=_lang(lang), currency_digits=False))


def change(now: float | Decimal | None, before: float | Decimal | None, unit: str, lang: str = "zh",
           currency: str | None = None) -> dict[str, str | None]:
    """`now` against `before`: the signed difference in the unit (or money) and the signed % change.

    Either side unknown gives no change at all (None, shown as "no data" by the page); a change from 0 has no %.
    """
    if now is None or before is None:
        return {"abs": None, "pct": None}
    if currency is not None:
        a, b = Decimal(str(now)), Decimal(str(before))
        a, b = a.quantize(CENT, rounding=ROUND_HALF_UP), b.quantize(CENT, rounding=ROUND_HALF_UP)
        diff: Decimal = a - b
        text = cash(diff, currency, lang, signed=True)
    else:
        a, b = Decimal(now), Decimal(before)
        diff = a - b
        text = q(diff, unit, lang, signed=True)
    share = pct(diff / b * 100, lang, signed=True) if b != 0 else NONE
    return {"abs": text, "pct": share}


__all__ = ["HOVER", "NONE", "amount", "cash", "change", "digits", "pct", "q"]
