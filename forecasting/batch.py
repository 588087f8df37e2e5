"""Day-ahead forecasts for many customers through any `concurrent.futures.Executor` (process pool or Dask)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import Executor, ProcessPoolExecutor

import pandas as pd

from forecasting.backtest import select_model
from forecasting.errors import ForecastError
from forecasting.models import model_factories

BATCH_CANDIDATES = ("plan_profile_16s1", "plan_profile_8", "plan_profile_4", "plan_aware_naive")


def _one(history: pd.Series, plan: pd.DataFrame | None, horizon: int, country: str | None, select: int
         ) -> pd.DataFrame:
    """Choose the customer's model by a rolling-origin backtest over its last `select` days, then forecast."""
    factories = model_factories(country)
    name = BATCH_CANDIDATES[0]
    if select:
        name, _ = select_model(history, plan, {k: factories[k] for k in BATCH_CANDIDATES}, horizon, select)
    out = factories[name]().fit(history, plan).predict(horizon, plan)
    out.attrs["model"] = name
    return out


def forecast_day_ahead(
    histories: Mapping[str, pd.Series],
    plans: Mapping[str, pd.DataFrame | None] | None = None,
    horizon: int | None = None,
    executor: Executor | None = None,
    holidays_country: str | None = "CN",
    select_days: int = 7,
) -> dict[str, pd.DataFrame | ForecastError]:
    """Forecast the interval after each history's end for `horizon` intervals (default: one day).

    Each customer's model is chosen among BATCH_CANDIDATES by a rolling-origin backtest over its last
    `select_days` days (0: always the first, plan_profile_16s1); the choice is in each frame's `attrs["model"]`.
    A customer whose data cannot be forecast gets its ForecastError in the result instead of stopping the batch.
    With no executor, a local process pool of `os.cpu_count()` workers is used. Pass
    `distributed.Client(address).get_executor()` to run on a Dask cluster.
    """
    plans = plans or {}
    own = executor is None
    pool = executor or ProcessPoolExecutor(max_workers=os.cpu_count() or 1)
    futures = {}
    try:
        for cid, hist in histories.items():
            h = horizon
            if h is None:
                step = pd.Series(pd.DatetimeIndex(hist.index)[-2:]).diff().iloc[-1] if len(hist) > 1 else None
                h = 96 if step is None or step == pd.Timedelta(minutes=15) else 24
            futures[cid] = pool.submit(_one, hist, plans.get(cid), h, holidays_country, select_days)
        out: dict[str, pd.DataFrame | ForecastError] = {}
        for cid, fut in futures.items():
            try:
                out[cid] = fut.result()
            except ForecastError as exc:
                out[cid] = ForecastError(f"customer {cid}: {exc}")
        return out
    finally:
        if own:
            pool.shutdown()
