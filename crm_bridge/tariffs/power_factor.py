"""Power factor as billed: the monthly PF (rounded half up to 0.01) and its adjustment from the 1983 tables.

〔83〕水电财字第215号《功率因数调整电费办法》: monthly PF = kWh / sqrt(kWh^2 + kvarh^2) from the month's active and
reactive energy, rounded to 0.01; the electricity charge (basic charge + energy charge, not government funds) is
raised or lowered by the percentage its table gives for that PF. The three tables (standards 0.90, 0.85 and 0.80)
are data, one row per 0.01 of PF: crm_bridge/data/tariffs/pf_adjustment.toml.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, localcontext
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from crm_bridge.errors import TariffError

_CENT = Decimal("0.01")


def round_pf(pf: float | Decimal) -> float:
    """A power factor rounded to 0.01 half up (四舍五入): 0.865 -> 0.87, where float rounding gives 0.86."""
    value = pf if isinstance(pf, Decimal) else Decimal(repr(float(pf)))
    return float(value.quantize(_CENT, rounding=ROUND_HALF_UP))


def monthly_pf(kwh: float, kvarh: float) -> float:
    """The billed PF of a period's energy: kWh / sqrt(kWh^2 + kvarh^2), rounded half up to 0.01.

    Computed in decimal arithmetic on the exact values given, so a ratio on a rounding edge is not tipped by binary
    floating point. The sign of kvarh (leading or lagging) does not change the PF. No energy: TariffError.
    """
    if not (math.isfinite(kwh) and math.isfinite(kvarh)):
        raise TariffError(f"energy {kwh} kWh / {kvarh} kvarh is not a number: the power factor is undefined")
    if kwh < 0:
        raise TariffError(f"negative active energy {kwh} kWh: the power factor of a consumer is undefined")
    if kwh == 0:
        raise TariffError("no active energy: the power factor is undefined")
    with localcontext() as ctx:
        ctx.prec = 40
        p, q = Decimal(float(kwh)), Decimal(float(kvarh))
        ratio = p / (p * p + q * q).sqrt()
        return float(ratio.quantize(_CENT, rounding=ROUND_HALF_UP))


@cache
def _tables() -> Mapping[str, Mapping[int, float]]:
    text = resources.files("crm_bridge").joinpath("data", "tariffs", "pf_adjustment.toml").read_text("utf-8")
    doc: dict[str, Any] = tomllib.loads(text)
    out: dict[str, Mapping[int, float]] = {}
    for standard, table in doc["standards"].items():
        rows = {int(Decimal(k) * 100): float(v) for k, v in table["percent"].items()}
        where = f"pf_adjustment.toml, standard {standard}"
        if sorted(rows) != list(range(101)):
            gaps = sorted(set(range(101)) - set(rows))
            raise TariffError(f"{where}: every PF from 0.00 to 1.00 needs a row; missing {gaps[:5]}")
        if rows[int(Decimal(standard) * 100)] != 0:
            raise TariffError(f"{where}: the standard itself must adjust by 0 %")
        climbs = [k for k in range(1, 101) if rows[k] > rows[k - 1]]
        if climbs:
            raise TariffError(f"{where}: PF {climbs[0] / 100:.2f} costs more than {(climbs[0] - 1) / 100:.2f}")
        out[standard] = MappingProxyType(rows)
    return MappingProxyType(out)


def pf_standards() -> tuple[float, ...]:
    """The PF standards with a table (0.80, 0.85, 0.90)."""
    return tuple(sorted(float(s) for s in _tables()))


def pf_table(standard: float = 0.90) -> Mapping[int, float]:
    """The adjustment table of `standard`: PF in hundredths (0..100) -> percent (negative: a reward)."""
    table = _tables().get(f"{standard:.2f}")
    if table is None:
        raise TariffError(f"no PF adjustment table for standard {standard}; known: {', '.join(_tables())}")
    return table


def pf_adjustment_pct(pf: float, standard: float = 0.90) -> float:
    """The bill adjustment in % for a monthly PF (negative: reward) under the 0.90, 0.85 or 0.80 standard.

    `pf` is the billed PF; one with more decimals is first rounded half up to 0.01, as the bill is.
    """
    table = pf_table(standard)
    if not 0 <= pf <= 1:
        raise TariffError(f"power factor {pf} is outside 0..1")
    return table[round(round_pf(pf) * 100)]


def capacitor_kvar(p_kw: float, pf_from: float, pf_to: float) -> float:
    """Reactive compensation to raise PF: Q = P (tan acos PF1 - tan acos PF2)."""
    if not (0 < pf_from <= 1 and 0 < pf_to <= 1):
        raise TariffError("power factors must be in (0, 1]")
    return p_kw * (math.tan(math.acos(pf_from)) - math.tan(math.acos(pf_to)))
