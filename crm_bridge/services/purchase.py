"""Purchase view: next month's forecast energy by TOU band and its expected cost, with a low/high range.

For the purchasing department. The month-ahead forecast's 15-min shape (forecasting.forecast_month_ahead's
`intervals`: forecast, lower80, upper80, lower95, upper95 in kWh) is priced by the tariff's own energy_cost, the one
place energy is turned into money; this module only adds the bands up and rounds to the cent.

The range is conservative: `low`/`high` price every interval at its bound at once (every day at the low or high end
of its interval), so the month's true 80 % range is narrower, never wider.
"""

from __future__ import annotations

from datetime import tzinfo
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
from pydantic import BaseModel

from crm_bridge.services.inputs import ServiceError, check_frame
from crm_bridge.tariffs import Tariff, energy_cost

CENT = Decimal("0.01")
COLUMNS = ("forecast", "lower80", "upper80", "lower95", "upper95")


def _money(x: float) -> Decimal:
    return Decimal(repr(float(x))).quantize(CENT, rounding=ROUND_HALF_UP)


def _kwh(x: float) -> Decimal:
    return Decimal(repr(float(x))).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


class PurchaseBand(BaseModel):
    """One TOU band's forecast energy (kWh, 0.1) and energy cost (to the cent) with their 80/95 % ranges."""

    band: str
    kwh: Decimal
    kwh_low80: Decimal
    kwh_high80: Decimal
    kwh_low95: Decimal
    kwh_high95: Decimal
    cost: Decimal
    cost_low80: Decimal
    cost_high80: Decimal
    cost_low95: Decimal
    cost_high95: Decimal
    funds: Decimal  # government funds on the band's kWh


class PurchaseView(BaseModel):
    """Next month's energy and cost by band; `total` is the sum of the rounded band figures (so they add up)."""

    month: str
    currency: str
    bands: list[PurchaseBand]
    total: PurchaseBand
    intervals: int
    days: int
    assumptions: list[str]


def purchase_view(shape: pd.DataFrame, tariff: Tariff, month: str, tz: str | tzinfo | None = None,
                  model: str | None = None) -> PurchaseView:
    """Price the month-ahead 15-min `shape` by TOU band with `tariff` (on the clock of `tz`, else the tariff's).

    ServiceError when the shape is not a tz-aware 15-min frame of the five forecast columns with finite,
    non-negative kWh, or when any interval lies outside `month` (YYYY-MM).
    """
    idx = check_frame(shape, "purchase view", COLUMNS)
    values = shape[list(COLUMNS)].to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        row, col = (int(x) for x in np.argwhere(bad)[0])
        raise ServiceError(f"purchase view: interval {idx[row].isoformat()}, column {COLUMNS[col]!r}: "
                           f"{float(values[row, col])!r} is not a non-negative number of kWh")
    local = tariff.to_local(idx, tariff.local_zone(tz))
    outside = np.flatnonzero(local.strftime("%Y-%m") != month)
    if len(outside):
        raise ServiceError(f"purchase view: interval {local[outside[0]].isoformat()} is outside month {month}")
    costs = {c: energy_cost(shape[c], tariff, tz) for c in COLUMNS}
    names = [str(b) for b in costs["forecast"].index if b != "total"]
    bands = []
    for b in names:
        pos = list(costs["forecast"].index).index(b)
        k = {c: float(costs[c]["kwh"].to_numpy(dtype=float)[pos]) for c in COLUMNS}
        m = {c: float(costs[c]["energy_cost"].to_numpy(dtype=float)[pos]) for c in COLUMNS}
        bands.append(PurchaseBand(
            band=b, kwh=_kwh(k["forecast"]), kwh_low80=_kwh(k["lower80"]), kwh_high80=_kwh(k["upper80"]),
            kwh_low95=_kwh(k["lower95"]), kwh_high95=_kwh(k["upper95"]), cost=_money(m["forecast"]),
            cost_low80=_money(m["lower80"]), cost_high80=_money(m["upper80"]), cost_low95=_money(m["lower95"]),
            cost_high95=_money(m["upper95"]),
            funds=_money(float(costs["forecast"]["funds_cost"].to_numpy(dtype=float)[pos]))))
    fields = [f for f in PurchaseBand.model_fields if f != "band"]
    total = PurchaseBand(band="total", **{f: sum((getattr(x, f) for x in bands), Decimal(0)) for f in fields})
    days = len(pd.DatetimeIndex(local).normalize().unique())
    return PurchaseView(
        month=month, currency=tariff.currency, bands=bands, total=total, intervals=len(shape), days=days,
        assumptions=[f"energy from the month-ahead forecast{f' ({model})' if model else ''}",
                     "priced with the tariff version in force on each day",
                     "low/high: every interval at its 80 % or 95 % bound at once (a conservative range)"])
