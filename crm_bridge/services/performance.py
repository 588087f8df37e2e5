"""Service 7, energy performance (ISO 50006): SEC, the baseline model and its adequacy, CUSUM, CO2, measured savings.

The baseline is an ordinary least-squares model of monthly energy on output and, where given, heating and cooling
degree days (E = a + b x output [+ c x HDD] [+ d x CDD]) over a baseline period. It is adequate when R^2 >= min_r2
(ISO 50006 practice, 0.75) and CV(RMSE) <= max_cv_rmse (ASHRAE Guideline 14 for monthly whole-facility models,
0.20) over at least min_months months (crm_bridge/data/services.toml). Savings are predicted - actual, so the CUSUM
of savings is -CUSUM(actual - predicted): rising while the plant does better than its baseline.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from crm_bridge.services.inputs import Evidence, ServiceError, settings

DRIVERS = ("output", "hdd", "cdd")  # the regressors, in the order of the model's coefficients after the intercept


class EnergyPerformance(BaseModel):
    """ISO 50006: SEC, baseline model with its adequacy, EnPI, savings and their CUSUM, and next month from the plan."""

    currency: str  # of next_month_cost
    months: list[str]
    sec_kwh_per_unit: list[float | None]
    a: float | None  # intercept, kWh per month
    b: float | None  # kWh per unit of output
    r2: float | None
    valid: bool
    reason: str | None
    predicted_kwh: list[float | None]
    savings_kwh: list[float | None]  # predicted - actual (positive: better than the baseline)
    cusum_kwh: list[float | None]  # running sum of savings_kwh, i.e. -CUSUM(actual - predicted)
    next_month_kwh: float | None
    next_month_cost: float | None
    evidence: Evidence
    coefficients: dict[str, float] = {}  # intercept, output, and hdd / cdd when they are drivers
    drivers: list[str] = []
    cv_rmse: float | None = None
    baseline_first: str | None = None
    baseline_last: str | None = None
    baseline_n: int = 0
    criteria: str = ""
    enpi_ratio: list[float | None] = []  # actual / predicted: the baseline-normalised EnPI (below 1: better)


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, float]:
    """OLS coefficients (intercept first), R^2 and CV(RMSE) with n - p degrees of freedom (ASHRAE 14)."""
    design = np.column_stack([np.ones(len(y)), x])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    ss_res = float(resid @ resid)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1 - ss_res / ss_tot if ss_tot else 0.0
    dof = len(y) - design.shape[1]
    cv = float(np.sqrt(ss_res / dof) / y.mean()) if dof > 0 and y.mean() else float("inf")
    return coef, r2, cv


def energy_performance(monthly: pd.DataFrame, baseline_months: int | None = None, next_output: float | None = None,
                       price_per_kwh: float | None = None, currency: str = "CNY",
                       baseline: Sequence[bool] | None = None) -> EnergyPerformance:
    """`monthly`: one row per month (index: month start, in order), columns kwh and output, optional hdd and cdd.

    The baseline period is the rows where `baseline` is True, else the first `baseline_months` rows (default: all);
    savings and CUSUM run over every row with energy and every driver. A month whose kwh is NaN (incomplete, not
    measured) is left out, never filled.
    """
    cfg = settings()["energy_performance"]
    if not {"kwh", "output"} <= set(monthly.columns):
        raise ServiceError("energy performance: monthly data needs columns kwh and output")
    if len(monthly) == 0:
        raise ServiceError("energy performance: no months given")
    months = [pd.Timestamp(m).strftime("%Y-%m") for m in monthly.index]
    kwh = monthly["kwh"].to_numpy(dtype=float)
    out = monthly["output"].to_numpy(dtype=float)
    sec = [None if not o or np.isnan(o) or np.isnan(e) else float(e / o) for e, o in zip(kwh, out, strict=True)]
    if baseline is not None:
        in_base = np.asarray(baseline, dtype=bool)
        if len(in_base) != len(monthly):
            raise ServiceError("energy performance: the baseline mask must have one entry per month")
    else:
        in_base = np.arange(len(monthly)) < (baseline_months or len(monthly))
    n_base = int(in_base.sum())
    drivers = ["output"] + [d for d in ("hdd", "cdd")
                            if d in monthly.columns and monthly[d][in_base].notna().any()]
    x_all = monthly[drivers].to_numpy(dtype=float)
    usable = ~(np.isnan(kwh) | np.isnan(x_all).any(axis=1))
    fit = usable & in_base
    min_months, min_r2, max_cv = int(cfg["min_months"]), float(cfg["min_r2"]), float(cfg["max_cv_rmse"])
    criteria = (f"adequate when R^2 >= {min_r2:g} (ISO 50006 practice) and CV(RMSE) <= {max_cv:.0%} (ASHRAE "
                f"Guideline 14, monthly) over >= {min_months} baseline months")
    coef: np.ndarray | None = None
    r2 = cv = None
    valid, reason = False, None
    x_fit, y_fit = x_all[fit], kwh[fit]
    if fit.sum() < min_months:
        reason = f"{int(fit.sum())} months with data; the baseline needs at least {min_months}"
    elif np.ptp(x_fit[:, 0]) == 0:
        reason = "output does not vary: no regression possible"
    elif np.linalg.matrix_rank(np.column_stack([np.ones(len(y_fit)), x_fit])) < len(drivers) + 1:
        reason = f"the drivers {', '.join(drivers)} move together: their effects cannot be told apart"
    else:
        coef, r2, cv = _fit(x_fit, y_fit)
        valid = r2 >= min_r2 and cv <= max_cv
        if r2 < min_r2:
            reason = f"R^2 {r2:.2f} below {min_r2:g}: the drivers explain too little of the energy"
        elif cv > max_cv:
            reason = f"CV(RMSE) {cv:.1%} above {max_cv:.0%}: the model's error is too large"
    n = len(kwh)
    predicted: list[float | None] = [None] * n
    savings: list[float | None] = [None] * n
    cusum: list[float | None] = [None] * n
    ratio: list[float | None] = [None] * n
    if coef is not None:
        running = 0.0
        for i in range(n):
            if not usable[i]:
                continue
            p = float(coef[0] + x_all[i] @ coef[1:])
            predicted[i], savings[i] = p, p - kwh[i]
            running += p - kwh[i]
            cusum[i] = running
            ratio[i] = float(kwh[i] / p) if p > 0 else None
    a = float(coef[0]) if coef is not None else None
    b = float(coef[1]) if coef is not None else None
    nxt = None
    if valid and coef is not None and next_output is not None and drivers == ["output"]:
        nxt = float(coef[0] + coef[1] * next_output)
    first = pd.Timestamp(monthly.index[0])
    base_months = [m for m, f in zip(months, fit, strict=True) if f]
    return EnergyPerformance(
        currency=currency, months=months, sec_kwh_per_unit=sec, a=a, b=b, r2=r2, valid=valid, reason=reason,
        predicted_kwh=predicted, savings_kwh=savings, cusum_kwh=cusum, next_month_kwh=nxt,
        next_month_cost=nxt * price_per_kwh if nxt is not None and price_per_kwh is not None else None,
        coefficients={} if coef is None else dict(zip(["intercept", *drivers], map(float, coef), strict=True)),
        drivers=drivers, cv_rmse=cv, baseline_first=base_months[0] if base_months else None,
        baseline_last=base_months[-1] if base_months else None, baseline_n=len(base_months), criteria=criteria,
        enpi_ratio=ratio,
        evidence=Evidence(data="monthly kWh and output", period_start=first.to_pydatetime(),
                          period_end=(pd.Timestamp(monthly.index[-1]) + pd.offsets.MonthBegin(1)).to_pydatetime(),
                          intervals=len(monthly), missing_intervals=int(np.isnan(kwh).sum()),
                          assumptions=[f"baseline over {n_base} months" if baseline is not None
                                       else f"baseline over the first {n_base} months",
                                       f"valid when R^2 >= {cfg['min_r2']} over >= {cfg['min_months']} months",
                                       criteria]),
    )


class AdviceSaving(BaseModel):
    """What an advice item marked done saved, measured against the baseline, next to what it promised."""

    done_month: str
    measurable: bool
    reason: str | None
    months_before: list[str]
    months_after: list[str]
    kwh_per_month: float | None  # mean savings after - mean savings before (baseline-normalised)
    money_per_month: float | None
    promised_money_per_month: float
    currency: str


def advice_saving(perf: EnergyPerformance, done: date, promised_money_per_month: float, currency: str,
                  price_per_kwh: float | None, window: int | None = None) -> AdviceSaving:
    """Measured saving of an advice item done in the month of `done`: baseline-normalised, after against before.

    The month it was done in is left out (part before, part after). Before: up to `window` months with savings
    before it; after: up to `window` months after it; at least `min_months_after_advice` of each, and a valid
    baseline, else "not yet measurable" with the reason. The difference of the mean savings (predicted - actual)
    after and before is what the change brought, at the plant's output of each month.
    """
    cfg = settings()["energy_performance"]
    need = int(cfg["min_months_after_advice"])
    window = window or 6
    done_month = f"{done:%Y-%m}"
    pairs = [(m, s) for m, s in zip(perf.months, perf.savings_kwh, strict=True) if s is not None]
    before = [(m, s) for m, s in pairs if m < done_month][-window:]
    after = [(m, s) for m, s in pairs if m > done_month][:window]
    reason = None
    if not perf.valid:
        reason = f"no adequate baseline ({perf.reason})"
    elif len(after) < need:
        reason = f"{len(after)} complete month(s) after {done_month}; at least {need} are needed"
    elif len(before) < need:
        reason = f"{len(before)} complete month(s) before {done_month}; at least {need} are needed"
    kwh = money = None
    if reason is None:
        kwh = float(np.mean([s for _, s in after]) - np.mean([s for _, s in before]))
        money = round(kwh * price_per_kwh, 2) if price_per_kwh is not None else None
    return AdviceSaving(done_month=done_month, measurable=reason is None, reason=reason,
                        months_before=[m for m, _ in before], months_after=[m for m, _ in after],
                        kwh_per_month=kwh, money_per_month=money,
                        promised_money_per_month=promised_money_per_month, currency=currency)


class Co2(BaseModel):
    """Scope 2 location-based CO2 of some kWh: the factor used and where it comes from, or why there is none."""

    region: str | None
    year: int
    kwh: float
    kg: float | None
    factor_kg_per_kwh: float | None
    factor_year: int | None
    source: str | None
    note: str | None


@cache
def emission_factors() -> dict[tuple[str, int], dict[str, Any]]:
    """(region, year) -> the factor's entry from crm_bridge/data/emission_factors.toml."""
    text = resources.files("crm_bridge").joinpath("data", "emission_factors.toml").read_text("utf-8")
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for entry in tomllib.loads(text)["factor"]:
        key = (str(entry["region"]), int(entry["year"]))
        if key in out:
            raise ServiceError(f"emission_factors.toml: region {key[0]} year {key[1]} is given twice")
        if not 0 < float(entry["kg_per_kwh"]) < 2:
            raise ServiceError(f"emission_factors.toml: region {key[0]} year {key[1]}: kg_per_kwh out of range")
        out[key] = entry
    return out


def co2(kwh: float, region: str | None, year: int) -> Co2:
    """CO2 of `kwh` used in `year` in grid `region` (Scope 2, location-based).

    The year's factor, else the newest published before it (said so in `note`); none at all gives kg None and says
    what is missing, never 0.
    """
    if region is None:
        return Co2(region=None, year=year, kwh=kwh, kg=None, factor_kg_per_kwh=None, factor_year=None, source=None,
                   note="the customer's grid region is not set: no emission factor")
    years = [y for (r, y) in emission_factors() if r == region and y <= year]
    if not years:
        return Co2(region=region, year=year, kwh=kwh, kg=None, factor_kg_per_kwh=None, factor_year=None, source=None,
                   note=f"no emission factor for region {region} in or before {year}")
    used = max(years)
    entry = emission_factors()[(region, used)]
    factor = float(entry["kg_per_kwh"])
    note = None if used == year else f"the factor of {used}, the newest published for {year}"
    return Co2(region=region, year=year, kwh=kwh, kg=kwh * factor, factor_kg_per_kwh=factor, factor_year=used,
               source=str(entry["source"]), note=note)


__all__ = ["DRIVERS", "AdviceSaving", "Co2", "EnergyPerformance", "advice_saving", "co2", "emission_factors",
           "energy_performance"]
