"""Day-ahead forecast accuracy of a customer's month: MAE and bias over measured intervals only."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.deps import UseCasesDep
from gateway.api.roles import Capability, needs
from gateway.api.scope import CustomerId
from gateway.usecases import parse_month
from gateway.usecases.figures import customer_config
from gateway.usecases.forecast_accuracy import accuracy_public, month_accuracy

router = APIRouter(prefix="/api/v1/customers", tags=["forecasts"], dependencies=[needs(Capability.METERED_DATA)])


class ForecastAccuracyPublic(BaseModel):
    """The day-ahead forecasts of a local month against its measured intervals."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer": "acme", "month": "2026-03", "unit": "kWh per 15 min", "mae_kwh": 4.21, "bias_kwh": -0.8,
        "intervals": 2860, "estimated": 12, "missing": 4, "pending": 0, "no_forecast": 96}]})

    customer: str
    month: str = Field(description="YYYY-MM, the customer's local month")
    unit: str
    mae_kwh: float | None = Field(description="Mean absolute error, kWh per 15-min interval; null: nothing scored")
    bias_kwh: float | None = Field(description="Mean of forecast - actual: above 0 the forecast ran high")
    intervals: int = Field(description="Intervals scored: measured actual and a day-ahead forecast")
    estimated: int = Field(description="Intervals with a forecast whose actual is estimated: not scored")
    missing: int = Field(description="Intervals with a forecast whose actual is missing: not scored")
    pending: int = Field(description="Intervals with a forecast whose actual is not in yet")
    no_forecast: int = Field(description="Measured intervals without a day-ahead forecast")


@router.get("/{customer_id}/forecast-accuracy")
def forecast_accuracy(customer_id: CustomerId, v: UseCasesDep,
                      month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$",
                                                         description="YYYY-MM; default this month")] = None,
                      ) -> ForecastAccuracyPublic:
    """MAE and bias of the day-ahead forecasts (the issue each day had before it began) over a month.

    Only measured intervals are scored; estimated, missing and pending ones are counted apart, never filled.
    """
    first = parse_month(month, ZoneInfo(customer_config(v.gw, customer_id).timezone))
    return ForecastAccuracyPublic.model_validate(accuracy_public(customer_id, first,
                                                                 month_accuracy(v, customer_id, first)))
