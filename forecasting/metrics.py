"""Forecast accuracy metrics."""

from __future__ import annotations

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
