"""Services 1 and 2: the daily load-curve card, and TOU cost with load-shift advice."""

from __future__ import annotations

from datetime import date, datetime, tzinfo

import numpy as np
import pandas as pd
from pydantic import BaseModel

from crm_bridge.services.inputs import Evidence, check_frame, evidence, kw_of, missing_mask, priced_by_band, settings
from crm_bridge.tariffs import Tariff


class LoadCurveCard(BaseModel):
    """One day: kW per 15 min, Pmax and when, Pmin, Pavg, load factor, peak-valley rate, kWh per TOU band."""

    day: date
    kw: list[float | None]
    kwh: float
    pmax_kw: float | None
    pmax_at: datetime | None
    pmin_kw: float | None
    pavg_kw: float | None
    load_factor: float | None
    peak_valley_rate: float | None
    kwh_by_band: dict[str, float]
    missing: list[datetime]  # interval starts with no measurement: flagged, never filled
    complete: bool
    evidence: Evidence


def load_curve_card(day_frame: pd.DataFrame, tariff: Tariff | None = None,
                    tz: str | tzinfo | None = None) -> LoadCurveCard:
    """The card of one local day of 15-min kWh (96 values; 92 or 100 on DST days).

    Pmax, Pmin and Pavg are over the intervals with energy; `missing` lists the missing ones (with a `status`
    column, pending intervals are not missing: the card of today is complete so far). `tz`: the customer's zone
    for the TOU bands (else the tariff's).
    """
    idx = check_frame(day_frame, "load curve card")
    kw = kw_of(day_frame).where(day_frame["kwh"].notna())
    measured = kw.dropna()
    missing = [t.to_pydatetime() for t in idx[missing_mask(day_frame)]]
    pmax = float(measured.max()) if len(measured) else None
    pmin = float(measured.min()) if len(measured) else None
    pavg = float(measured.mean()) if len(measured) else None
    by_band: dict[str, float] = {}
    if tariff is not None:
        by_band = priced_by_band(day_frame["kwh"], tariff, tz)[0]
    return LoadCurveCard(
        day=idx[0].date(),
        kw=[None if np.isnan(v) else round(float(v), 3) for v in kw.to_numpy(dtype=float)],
        kwh=float(day_frame["kwh"].sum()),
        pmax_kw=pmax, pmax_at=pd.Timestamp(measured.idxmax()).to_pydatetime() if len(measured) else None,
        pmin_kw=pmin, pavg_kw=pavg,
        load_factor=pavg / pmax if pmax and pavg is not None else None,
        peak_valley_rate=(pmax - pmin) / pmax if pmax and pmin is not None else None,
        kwh_by_band=by_band, missing=missing, complete=not missing,
        evidence=evidence(day_frame, "15-min kWh of one local day",
                          ["kW = kWh x 4", "Pavg, Pmax and Pmin over measured intervals only"]),
    )


class TouAdvice(BaseModel):
    """Cost per TOU band, the peak share, and the money of moving flexible peak energy to the valley."""

    currency: str
    kwh_by_band: dict[str, float]
    cost_by_band: dict[str, float]
    total_kwh: float
    total_cost: float
    peak_share: float | None
    shift_from: str | None
    shift_to: str | None
    shift_kwh: float
    shift_from_windows: list[str]  # local "HH:MM-HH:MM" windows of the source band on the last day of the data
    shift_to_windows: list[str]  # ... and of the target band: where the moved energy should go
    price_from: float | None
    price_to: float | None
    saving: float  # per period of the data
    evidence: Evidence


def band_windows(tariff: Tariff, day: pd.Timestamp, *bands: str) -> list[list[str]]:
    """The local clock windows of each band on `day` (tz-aware midnight), e.g. [["10:00-12:00", "21:00-23:00"]]."""
    grid = pd.date_range(day, day + pd.DateOffset(days=1), freq="15min", inclusive="left")
    of_slot = tariff.price_table(grid, grid.tz)["band"].to_numpy()

    def clock(k: int) -> str:
        return "24:00" if k == len(grid) else grid[k].strftime("%H:%M")

    out = []
    for band in bands:
        edges = np.diff(np.r_[0, (of_slot == band).astype(np.int8), 0])
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        out.append([f"{clock(int(a))}-{clock(int(b))}" for a, b in zip(starts, ends, strict=True)])
    return out


def tou_advice(frame: pd.DataFrame, tariff: Tariff, shift_kwh: float | None = None,
               flexible_share: float | None = None, tz: str | tzinfo | None = None) -> TouAdvice:
    """Energy cost by band; saving of moving x kWh from peak to valley = x (p_peak - p_valley).

    x is `shift_kwh` when given, else the flexible share of the period's peak-band energy (data file). Bands and
    windows are on the local clock: `tz` (the customer's zone), else the tariff's.
    """
    idx = tariff.to_local(check_frame(frame, "TOU advice"), tariff.local_zone(tz))
    kwh_by_band, cost_by_band = priced_by_band(frame["kwh"], tariff, tz)
    total_kwh = sum(kwh_by_band.values())
    last_day = idx[-1].date()
    prices = tariff.version_at(last_day).energy_prices
    src = "peak" if "peak" in prices else max(prices, key=lambda b: prices[b])
    dst = "valley" if "valley" in prices else min(prices, key=lambda b: prices[b])
    share = flexible_share if flexible_share is not None else float(settings()["load_shift"]["flexible_share_of_peak"])
    peak_kwh = kwh_by_band.get(src, 0.0)
    x = shift_kwh if shift_kwh is not None else share * peak_kwh
    last = pd.Timestamp(idx[-1]).normalize()
    from_windows, to_windows = band_windows(tariff, last, src, dst)
    assumptions = [f"move {x:.0f} kWh from {src} ({prices[src]}; {', '.join(from_windows)}) to {dst} "
                   f"({prices[dst]}; {', '.join(to_windows)})"]
    if shift_kwh is None:
        assumptions.append(f"flexible share of {src} energy: {share:.0%}")
    return TouAdvice(
        currency=tariff.currency, kwh_by_band=kwh_by_band, cost_by_band=cost_by_band, total_kwh=total_kwh,
        total_cost=sum(cost_by_band.values()),
        peak_share=(sum(v for b, v in kwh_by_band.items() if b in ("peak", "critical_peak")) / total_kwh)
        if total_kwh else None,
        shift_from=src, shift_to=dst, shift_kwh=x, shift_from_windows=from_windows, shift_to_windows=to_windows,
        price_from=prices[src], price_to=prices[dst],
        saving=x * (prices[src] - prices[dst]),
        evidence=evidence(frame, f"15-min kWh priced by tariff {tariff.id}", assumptions),
    )
