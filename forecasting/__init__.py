"""Load forecasting from history and production plans: models, backtests, metrics, batch runs (pure pandas)."""

from forecasting.backtest import BacktestResult, backtest, origins_between, select_model
from forecasting.batch import forecast_day_ahead
from forecasting.data import history_from_frame, plan_from_frame, plan_on
from forecasting.errors import ForecastError
from forecasting.horizons import (
    MonthAhead,
    WeekNaive,
    WeekProfile,
    backtest_month,
    backtest_week,
    forecast_month_ahead,
    forecast_week_ahead,
    month_origins,
    week_origins,
)
from forecasting.models import (
    BASELINES,
    DayModel,
    PlanAwareNaive,
    PlanProfile,
    PlanRegression,
    SeasonalNaive,
    model_factories,
)

__all__ = [
    "BASELINES", "BacktestResult", "DayModel", "ForecastError", "PlanAwareNaive", "PlanProfile", "PlanRegression",
    "SeasonalNaive", "backtest", "model_factories", "forecast_day_ahead", "history_from_frame", "origins_between",
    "plan_from_frame", "plan_on", "select_model",
    "MonthAhead", "WeekNaive", "WeekProfile", "backtest_month", "backtest_week", "forecast_month_ahead",
    "forecast_week_ahead", "month_origins", "week_origins",
]
