"""Day-ahead forecast accuracy per customer and month, and the forecast line of a day, for every surface.

`month_accuracy` is the one place the figure is made: the API (`GET /api/v1/customers/{id}/forecast-accuracy`), the
portal's month and day views and the customer month report all call it. The arithmetic is
`forecasting.metrics.forecast_accuracy`, over the forecasts `QueryService.forecast` shows (the day-ahead issue of
each day) against measured intervals only; estimated, missing and pending ones are counted, never scored.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from crm_bridge.tariffs.bill import month_bounds
from forecasting.metrics import ForecastAccuracy
from gateway.query import day_bounds
from gateway.usecases.figures import TODAY_TTL_S, UseCases, customer_config

PAST_TTL_S = 3600.0


def month_accuracy(uc: UseCases, customer: str, first: date, intervals: pd.DataFrame | None = None
                   ) -> ForecastAccuracy:
    """MAE and bias (kWh per 15 min) of the customer's day-ahead forecasts over a local month.

    `intervals`: the month's `UseCases.month_frame`, when the caller has it. Kept for an hour once the month is
    over, for TODAY_TTL_S while it runs.
    """
    tz = ZoneInfo(customer_config(uc.gw, customer).timezone)
    first = first.replace(day=1)
    start, end = month_bounds(first, tz)

    def make() -> ForecastAccuracy:
        frame = uc.month_frame(customer, first)[0] if intervals is None else intervals
        return uc.gw.query.forecast_accuracy(customer, start, end, frame)

    ttl = PAST_TTL_S if end <= datetime.now(tz) - timedelta(minutes=20) else TODAY_TTL_S
    return uc.cache.get(("forecast_accuracy", customer, first), ttl, make)


def accuracy_public(customer: str, first: date, acc: ForecastAccuracy) -> dict[str, Any]:
    """The API's and the templates' form of a month's accuracy."""
    return {"customer": customer, "month": first.strftime("%Y-%m"), "unit": "kWh per 15 min", **asdict(acc)}


def day_forecast_note(uc: UseCases, customer: str, day: date) -> dict[str, Any]:
    """What the day view says under its curve: which issue its forecast line is, and the month's accuracy.

    `day` is true (the month view's note has no issue). `issue`: None when the day shows no forecast, else
    issued_at (ISO 8601, UTC), model, backfilled and day_ahead of the issue shown (the first interval's that has
    one). `accuracy`: `accuracy_public` of the day's month.
    """
    tz = ZoneInfo(customer_config(uc.gw, customer).timezone)
    start, end = day_bounds(day.isoformat(), tz)
    fc = uc.gw.query.forecast(customer, start, end)
    shown = fc[fc["forecast"].notna()]
    issue = None
    if not shown.empty:
        row = shown.iloc[0]
        known = pd.notna(row["issued_at"])
        issue = {"issued_at": pd.Timestamp(row["issued_at"]).isoformat() if known else None,
                 "model": row["model"] if known else None, "backfilled": bool(row["backfilled"]) if known else False,
                 "day_ahead": bool(row["day_ahead"])}
    first = day.replace(day=1)
    return {"day": True, "issue": issue,
            "accuracy": accuracy_public(customer, first, month_accuracy(uc, customer, first))}


def month_forecast_note(uc: UseCases, customer: str, first: date) -> dict[str, Any]:
    """What the month view says of its forecasts: `accuracy_public` of the month (the day note without an issue)."""
    return {"day": False, "issue": None, "accuracy": accuracy_public(customer, first.replace(day=1),
                                                                     month_accuracy(uc, customer, first))}
