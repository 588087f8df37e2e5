"""Rolling-origin backtests: refit at each local midnight on the data before it, forecast the next day."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasting.errors import ForecastError
from forecasting.metrics import coverage, point_metrics, weekly_naive_scale
from forecasting.models import MIN_DAYS, DayModel


@dataclass
class BacktestResult:
    model: str
    overall: dict[str, float | None]
    per_origin: list[dict[str, object]]
    forecasts: pd.DataFrame = field(repr=False)


def origins_between(history: pd.Series, start: pd.Timestamp | None, end: pd.Timestamp | None) -> list[pd.Timestamp]:
    """Local midnights from `start` (default: MIN_DAYS + 7 days in) up to `end` (exclusive) with actuals after."""
    idx = pd.DatetimeIndex(history.index)
    tz = idx.tz
    step = idx[-1] - idx[-2] if len(idx) > 1 else pd.Timedelta(minutes=15)
    first_day = idx[0].tz_localize(None).normalize() + pd.Timedelta(days=MIN_DAYS + 7)
    last_day = (idx[-1] + step).tz_localize(None).normalize()
    lo = max(first_day, pd.Timestamp(start).tz_localize(None).normalize()) if start is not None else first_day
    hi = min(last_day, pd.Timestamp(end).tz_localize(None).normalize()) if end is not None else last_day
    days = pd.date_range(lo, hi, freq="D", inclusive="left")
    return [pd.Timestamp(d).tz_localize(tz, ambiguous=False, nonexistent="shift_forward") for d in days]


def backtest(
    history: pd.Series,
    plan: pd.DataFrame | None,
    make_model: Callable[[], DayModel],
    origins: list[pd.Timestamp],
    horizon: int | Callable[[pd.Timestamp], int],
    mape_floor: float | None = None,
    issue_lead: pd.Timedelta | None = None,
) -> BacktestResult:
    """Fit on history strictly before each origin, forecast `horizon` intervals, score against the actuals.

    `horizon` may be a function of the origin (a week from a local midnight is 668 or 676 intervals across a
    clock change).

    `issue_lead`: the forecast is issued this long before its origin (the day-ahead job runs at 21:30, 2 h 30 min
    before midnight), so the model sees only data before origin - issue_lead; the intervals in between are handed
    over as missing (NaN), as a live store would have them, never filled.
    """
    if not origins:
        raise ForecastError("no forecast origins in the requested range (history too short, or start/end outside)")
    idx = pd.DatetimeIndex(history.index)
    step = pd.Series(idx[1:] - idx[:-1]).mode().iloc[0]
    season = int(pd.Timedelta(days=7) / step)
    floor = mape_floor if mape_floor is not None else 0.1 * float(np.nanmean(history.to_numpy()))
    frames: list[pd.DataFrame] = []
    rows: list[dict[str, object]] = []
    name = ""
    for origin in origins:
        train = history[history.index < origin]
        if issue_lead is not None and issue_lead > pd.Timedelta(0):
            train = train.where(train.index < origin - issue_lead)  # pending at issue time: NaN, not dropped
        model = make_model()
        name = model.name
        t0 = time.perf_counter()
        model.fit(train, plan)
        t1 = time.perf_counter()
        fc = model.predict(horizon(origin) if callable(horizon) else horizon, plan)
        t2 = time.perf_counter()
        actual = history.reindex(fc.index)
        fc = fc.assign(actual=actual.to_numpy(), origin=origin)
        frames.append(fc)
        scale = weekly_naive_scale(train.to_numpy(dtype=float), season)
        m = point_metrics(fc["actual"].to_numpy(), fc["forecast"].to_numpy(), scale, floor)
        rows.append({"origin": origin.isoformat(), **m, "mase_scale": scale,
                     "coverage80": coverage(fc["actual"].to_numpy(), fc["lower80"].to_numpy(),
                                            fc["upper80"].to_numpy()),
                     "coverage95": coverage(fc["actual"].to_numpy(), fc["lower95"].to_numpy(),
                                            fc["upper95"].to_numpy()),
                     "fit_s": t1 - t0, "predict_s": t2 - t1})
    all_fc = pd.concat(frames)
    a, f = all_fc["actual"].to_numpy(), all_fc["forecast"].to_numpy()
    scales = np.array([r["mase_scale"] for r in rows], dtype=float)
    maes = np.array([r["mae"] if r["mae"] is not None else np.nan for r in rows], dtype=float)
    overall = point_metrics(a, f, float(np.nanmean(scales)), floor)
    scored = ~(np.isnan(a) | np.isnan(f))
    overall["bias"] = float(np.mean(f[scored] - a[scored])) if scored.any() else None  # above 0: ran high
    overall["mase"] = float(np.nanmean(maes / scales))  # mean of per-origin MASE, each on its own training scale
    overall.update({
        "coverage80": coverage(a, all_fc["lower80"].to_numpy(), all_fc["upper80"].to_numpy()),
        "coverage95": coverage(a, all_fc["lower95"].to_numpy(), all_fc["upper95"].to_numpy()),
        "mape_floor": floor, "origins": len(rows),
        "fit_s_mean": float(np.mean([r["fit_s"] for r in rows])),
        "predict_s_mean": float(np.mean([r["predict_s"] for r in rows])),
        "fit_predict_s_max": float(np.max([r["fit_s"] + r["predict_s"] for r in rows])),  # type: ignore[operator]
    })
    return BacktestResult(name, overall, rows, all_fc)


def select_model(
    history: pd.Series,
    plan: pd.DataFrame | None,
    candidates: dict[str, Callable[[], DayModel]],
    horizon: int,
    n_origins: int = 14,
) -> tuple[str, dict[str, float | None]]:
    """Pick the candidate with the lowest MAE over the last `n_origins` day-ahead origins of `history`."""
    origins = origins_between(history, None, None)[-n_origins:]
    if not origins:
        raise ForecastError("history too short to choose a model")
    scores: dict[str, float | None] = {}

    def point_only(make: Callable[[], DayModel]) -> Callable[[], DayModel]:
        def build() -> DayModel:
            model = make()
            model.interval_days = 0  # choosing by MAE needs no intervals: skip their backcasts
            return model

        return build

    for name, make in candidates.items():
        try:
            scores[name] = backtest(history, plan, point_only(make), origins, horizon).overall["mae"]
        except ForecastError:
            scores[name] = None
    ok = {k: v for k, v in scores.items() if v is not None}
    if not ok:
        raise ForecastError("no candidate model could be fitted")
    return min(ok, key=lambda k: ok[k]), scores
