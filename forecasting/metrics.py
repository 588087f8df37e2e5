"""Forecast accuracy metrics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def point_metrics(actual: np.ndarray, forecast: np.ndarray, mase_scale: float, mape_floor: float
                  ) -> dict[str, float | None]:
    """MAE, RMSE, WAPE, MASE (given the scale) and MAPE over intervals whose actual exceeds `mape_floor`."""
    ok = ~(np.isnan(actual) | np.isnan(forecast))
    a, f = actual[ok], forecast[ok]
    if len(a) == 0:
        return {"mae": None, "rmse": None, "wape": None, "mase": None, "mape": None, "n": 0}
    err = a - f
    mae = float(np.mean(np.abs(err)))
    above = a > mape_floor
    return {
        "mae": mae,
        "rmse": float(np.sqrt(np.mean(err**2))),
        "wape": float(np.sum(np.abs(err)) / np.sum(np.abs(a))) if np.sum(np.abs(a)) else None,
        "mase": mae / mase_scale if mase_scale > 0 else None,
        "mape": float(np.mean(np.abs(err[above]) / a[above])) if above.any() else None,
        "n": int(len(a)),
    }


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float | None:
    ok = ~(np.isnan(actual) | np.isnan(lower) | np.isnan(upper))
    if not ok.any():
        return None
    return float(np.mean((actual[ok] >= lower[ok]) & (actual[ok] <= upper[ok])))


def weekly_naive_scale(values: np.ndarray, season: int) -> float:
    """Mean absolute error of the seasonal-naive forecast (one week back) on the training values."""
    if len(values) <= season:
        return float("nan")
    d = np.abs(values[season:] - values[:-season])
    return float(np.nanmean(d)) if np.isfinite(d).any() else float("nan")


@dataclass(frozen=True, slots=True)
class ForecastAccuracy:
    """A forecast against the measured actuals: MAE and bias in kWh per interval, and what was left out.

    `bias_kwh` is the mean of forecast - actual: above zero the forecast ran high. Only intervals whose actual is
    measured and that have a forecast are scored; those with a forecast whose actual is estimated, missing or
    pending are counted apart (never scored, never filled), as are measured intervals without a forecast.
    """

    mae_kwh: float | None
    bias_kwh: float | None
    intervals: int
    estimated: int
    missing: int
    pending: int
    no_forecast: int


def forecast_accuracy(actual: np.ndarray, forecast: np.ndarray, status: Sequence[str]) -> ForecastAccuracy:
    """MAE and bias of `forecast` over the intervals whose `status` is measured (kWh per interval, same grid)."""
    a = np.asarray(actual, dtype=np.float64)
    f = np.asarray(forecast, dtype=np.float64)
    st = np.asarray(status, dtype=object)
    if not len(a) == len(f) == len(st):
        raise ValueError(f"actual, forecast and status differ in length ({len(a)}, {len(f)}, {len(st)})")
    has_fc = ~np.isnan(f)
    measured = (st == "measured") & ~np.isnan(a)
    scored = measured & has_fc
    err = f[scored] - a[scored]
    return ForecastAccuracy(
        mae_kwh=float(np.mean(np.abs(err))) if len(err) else None,
        bias_kwh=float(np.mean(err)) if len(err) else None,
        intervals=int(scored.sum()),
        estimated=int((has_fc & (st == "estimated")).sum()),
        missing=int((has_fc & ((st == "missing") | ((st == "measured") & np.isnan(a)))).sum()),
        pending=int((has_fc & (st == "pending")).sum()),
        no_forecast=int((measured & ~has_fc).sum()),
    )
