"""Services 5, 6 and 7: off-hours base load, bill forecast with the customer's threshold, energy performance.

Energy performance (ISO 50006) lives in crm_bridge.services.performance; its names stay importable from here.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

import numpy as np
import pandas as pd
from pydantic import BaseModel

from crm_bridge.services.inputs import ContractInputs, Evidence, ServiceError, check_frame, evidence, kw_of, settings
from crm_bridge.services.performance import EnergyPerformance, energy_performance
from crm_bridge.tariffs import Tariff, month_bill, priced_intervals
from crm_bridge.tariffs.bill import local_zone, month_bounds


class BaseLoad(BaseModel):
    """Base load (5th percentile of off-hours kW), the off-hours energy share, its trend, and the money of a cut."""

    currency: str
    base_kw: float | None
    off_hours_kwh: float
    off_hours_share: float | None
    weekly_base_kw: dict[str, float]  # week start -> base kW of that week
    trailing_median_kw: float | None
    rise_pct: float | None
    alert: bool
    cut_kw: float
    money_per_month: float
    evidence: Evidence


def off_hours_mask(idx: pd.DatetimeIndex, operating: pd.Series | None = None,
                   off_hours: list[tuple[int, int]] | None = None, weekend_off: bool | None = None) -> np.ndarray:
    """True for intervals outside production: from a plan, else from a shift calendar.

    The plan is `operating` (True/False per interval); the calendar is local [from, to) hours off and whether
    weekends are off, the data file's unless given.
    """
    if operating is not None:
        return ~operating.reindex(idx).fillna(True).astype(bool).to_numpy()
    cfg = settings()["base_load"]
    spans = off_hours if off_hours is not None else [tuple(x) for x in cfg["off_hours"]]
    for span in spans:
        if len(span) != 2 or not 0 <= span[0] < span[1] <= 24:
            raise ServiceError(f"base load: off-hours span {list(span)} must be [from, to) hours with 0 <= from < "
                               "to <= 24")
    hour = idx.hour.to_numpy()
    off = np.zeros(len(idx), dtype=bool)
    for lo, hi in spans:
        off |= (hour >= lo) & (hour < hi)
    if cfg["weekend_off"] if weekend_off is None else weekend_off:
        off |= idx.dayofweek.to_numpy() >= 5
    return off


def base_load(frame: pd.DataFrame, tariff: Tariff, operating: pd.Series | None = None,
              rise_alert_pct: float | None = None, off_hours: list[tuple[int, int]] | None = None,
              weekend_off: bool | None = None, tz: str | tzinfo | None = None) -> BaseLoad:
    """Base load of the frame (weeks of data give the trailing 4-week median and the rise alert).

    Off-hours are local hours: on the clock of `tz` (the customer's zone), else the tariff's.
    """
    idx = tariff.to_local(check_frame(frame, "base load"), tariff.local_zone(tz))
    frame = frame.set_axis(idx)
    cfg = settings()["base_load"]
    rise_limit = rise_alert_pct if rise_alert_pct is not None else float(cfg["rise_alert_pct"])
    off = off_hours_mask(idx, operating, off_hours, weekend_off)
    spans = off_hours if off_hours is not None else cfg["off_hours"]
    weekends = cfg["weekend_off"] if weekend_off is None else weekend_off
    kw = kw_of(frame)
    off_kw = kw[off].dropna()
    q = float(cfg["quantile"])
    base = float(off_kw.quantile(q)) if len(off_kw) else None
    kwh = frame["kwh"]
    total = float(kwh.sum())
    off_kwh = float(kwh[off].sum())
    weekly = off_kw.groupby(pd.DatetimeIndex(off_kw.index).tz_localize(None).to_period("W-SUN")).quantile(q)
    weekly_map = {str(pd.Period(p).start_time.date()): float(v) for p, v in weekly.items()}  # type: ignore[arg-type]
    values = list(weekly_map.values())
    trailing = float(np.median(values[-5:-1])) if len(values) >= 2 else None
    rise = (values[-1] / trailing - 1) * 100 if trailing else None
    prices = tariff.price_table(idx, idx.tz)["price"].to_numpy()
    off_price = float(np.nanmean(prices[off])) if off.any() else 0.0
    cut = float(cfg["cut_share"]) * (base or 0.0)
    off_hours_per_month = off.sum() / 4 / max(1.0, len(idx) / 96) * 30.4
    shown_spans = ', '.join(f'{a:02d}:00–{b:02d}:00' for a, b in spans)  # 22:00–24:00, 00:00–06:00
    return BaseLoad(
        currency=tariff.currency, base_kw=base, off_hours_kwh=off_kwh,
        off_hours_share=off_kwh / total if total else None, weekly_base_kw=weekly_map, trailing_median_kw=trailing,
        rise_pct=rise, alert=bool(rise is not None and rise > rise_limit), cut_kw=cut,
        money_per_month=cut * off_hours_per_month * off_price,
        evidence=evidence(frame, "15-min kW outside production hours", [
            "off-hours from the production plan" if operating is not None else
            f"off-hours from the shift calendar {shown_spans}, weekends {'off' if weekends else 'on'}",
            f"base load = {q:.0%} quantile of off-hours kW", f"a plant can cut {cfg['cut_share']:.0%} of it",
            f"alert above {rise_limit:g} % over the trailing 4-week median"]),
    )


class BillForecast(BaseModel):
    """Month-to-date cost plus the forecast of the remaining days, against the customer's own threshold."""

    currency: str
    month: str
    as_of: datetime
    mtd_kwh: float
    mtd_energy_cost: float
    remaining_kwh: float
    remaining_energy_cost: float
    basic_charge: float
    pf: float | None  # month-to-date PF (None without kvarh)
    pf_adjustment: float  # on energy + basic charge at the month-to-date PF; positive: a surcharge
    funds: float  # government funds on the month's kWh
    total: float
    threshold: float | None
    over_threshold: bool
    method: str
    evidence: Evidence


def bill_forecast(mtd: pd.DataFrame, contract: ContractInputs, tariff: Tariff, as_of: datetime,
                  forecast: pd.DataFrame | None = None) -> BillForecast:
    """The month's bill: the month bill of the intervals so far plus a forecast of the rest, as estimated intervals.

    `mtd` holds the month's intervals up to `as_of` (the local month of its first interval); the intervals from
    `as_of` on (and any still pending before it) come from `forecast` (column `forecast`, kWh) where it covers,
    else from the mean of the same weekday's measured intervals of the month (all days if none). The basic charge,
    PF adjustment, funds and total are month_bill's over the measured and forecast intervals together, each
    interval priced by the version in force on its local day.
    """
    idx = check_frame(mtd, "bill forecast")
    zone = local_zone(tariff, contract)
    local = tariff.to_local(idx, zone)
    first = local[0].date().replace(day=1)
    cut = pd.Timestamp(as_of).tz_convert(zone)
    frame = mtd.set_axis(local)
    start, end = month_bounds(first, zone)
    frame = frame[(local >= start) & (local < cut) & (local < end)]
    rows = priced_intervals(frame, tariff, first, tz=zone, now=cut.to_pydatetime())
    grid = pd.DatetimeIndex(rows.index)
    todo = (rows["status"] == "pending").to_numpy()
    measured = rows["kwh"].dropna()
    rest = grid[todo]
    method = "the month is complete"
    values: np.ndarray = np.zeros(0)
    if len(rest):
        remaining = pd.Series(np.nan, index=rest)
        method = "same-weekday profile of the month to date"
        if forecast is not None and "forecast" in forecast.columns and len(forecast):
            fc = forecast["forecast"]
            remaining = fc.set_axis(tariff.to_local(pd.DatetimeIndex(fc.index), zone)).reindex(rest)
            method = "stored forecast where it covers, same-weekday profile for the rest"
        values = remaining.to_numpy(dtype=float).copy()
        gap = np.isnan(values)
        if gap.any():
            if len(measured) == 0:
                raise ServiceError("bill forecast: no measured interval this month to base a profile on")
            m_idx = pd.DatetimeIndex(measured.index)
            m_slot = (m_idx.hour * 4 + m_idx.minute // 15).to_numpy()
            m_key = m_idx.dayofweek.to_numpy() * 96 + m_slot
            m_val = measured.to_numpy(dtype=float)
            with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 -> NaN: no such weekday/slot measured
                by_dow = np.bincount(m_key, m_val, 7 * 96) / np.bincount(m_key, minlength=7 * 96)
                by_slot = np.bincount(m_slot, m_val, 96) / np.bincount(m_slot, minlength=96)
            r_idx = rest[gap]
            r_slot = (r_idx.hour * 4 + r_idx.minute // 15).to_numpy()
            fill = by_dow[r_idx.dayofweek.to_numpy() * 96 + r_slot]
            holes = np.isnan(fill)
            fill[holes] = by_slot[r_slot[holes]]
            unseen = np.isnan(fill)
            if unseen.any():  # a time of day never measured this month: the month's mean interval
                fill[unseen] = float(m_val.mean())
                method += f"; {int(unseen.sum())} intervals at a time of day never measured take the month's mean"
            values[gap] = fill
    whole = rows[["kwh", "kvarh", "status"]].copy()
    whole.loc[todo, "kwh"] = values
    whole.loc[todo, "status"] = "estimated"
    bill = month_bill(whole, contract, tariff, first, tz=zone, now=max(end, cut).to_pydatetime())
    mtd_kwh, mtd_cost = float(rows["kwh"].sum()), float(rows["money"].sum())
    total = bill.total
    return BillForecast(
        currency=tariff.currency, month=bill.month, as_of=cut.to_pydatetime(),
        mtd_kwh=mtd_kwh, mtd_energy_cost=mtd_cost, remaining_kwh=bill.energy_kwh - mtd_kwh,
        remaining_energy_cost=bill.energy_charge - mtd_cost, basic_charge=bill.basic_charge, pf=bill.pf,
        pf_adjustment=bill.pf_adjustment, funds=bill.government_funds, total=total,
        threshold=contract.bill_threshold,
        over_threshold=contract.bill_threshold is not None and total > contract.bill_threshold, method=method,
        evidence=evidence(mtd, "15-min kWh of the month to date", [
            method, f"basic charge by {bill.basic.mode.value} with the month's Pmax (measured and forecast)",
            f"PF adjustment at the month-to-date PF {bill.pf}" if bill.pf is not None
            else "no kvarh: PF adjustment left out",
            "government funds on every kWh, not PF-adjusted",
            f"priced by tariff {tariff.id} on the {bill.timezone} clock, each interval by the version in force"]),
    )


__all__ = ["BaseLoad", "BillForecast", "EnergyPerformance", "base_load", "bill_forecast", "energy_performance",
           "off_hours_mask"]
