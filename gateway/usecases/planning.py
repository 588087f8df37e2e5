"""Planning views of one customer: the week-ahead and month-ahead forecasts, and next month's purchase view.

History comes from the store through the query layer and the plan from the plan reader, as for the day-ahead job
(gateway.jobs.forecast_job): the forecast's origin is the next local midnight and it sees only what is measured (or
estimated) by now; later intervals are pending, never filled. Money comes from crm_bridge.services.purchase, which
prices with the tariff code.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

import pandas as pd
from pydantic import BaseModel

from crm_bridge.errors import CrmError, ServiceError, TariffNotInForce
from crm_bridge.services.purchase import PurchaseView, purchase_view
from crm_bridge.tariffs.model import next_month
from gateway.usecases.errors import BadInput, BeforeTariff, NoContract, NoData
from gateway.usecases.figures import UseCases, _num, contract_of, customer_config, tariff_of

FORECAST_TTL_S = 900.0  # a forecast is remade at most every 15 minutes per customer and horizon
MONTHS_AHEAD = 3  # the purchase view looks at most this many calendar months past the current one


class IntervalForecast(BaseModel):
    start: datetime
    forecast: float | None
    lower80: float | None
    upper80: float | None
    lower95: float | None
    upper95: float | None


class DayForecast(BaseModel):
    day: date
    operating: bool
    energy_kwh: float | None
    energy_kwh_lower80: float | None
    energy_kwh_upper80: float | None
    energy_kwh_lower95: float | None
    energy_kwh_upper95: float | None
    peak_kw: float | None
    peak_kw_lower80: float | None
    peak_kw_upper80: float | None
    peak_kw_lower95: float | None
    peak_kw_upper95: float | None


class HistoryUsed(BaseModel):
    """The history the forecast stands on: its span and how many of its intervals had no energy value yet."""

    start: datetime
    end: datetime
    intervals: int
    missing_intervals: int
    pending_intervals: int
    plan: bool  # a production plan was read


class ForecastPublic(BaseModel):
    """A week-ahead (15-min `intervals`, kWh) or month-ahead (`days`: daily kWh and peak kW) forecast with 80/95 %."""

    customer: str
    horizon: Literal["week", "month"]
    model: str
    origin: datetime
    month: str | None = None
    history: HistoryUsed
    intervals: list[IntervalForecast] | None = None
    days: list[DayForecast] | None = None


class PurchasePublic(PurchaseView):
    customer: str
    model: str
    history: HistoryUsed


# The month-ahead's history at least: its intervals are calibrated on its own errors at leads of 1-31 days over the
# last MonthSettings.peak_interval_days (84) days, each made from the like days before it, so it needs ~150 days to
# be the forecast bench/forecast_real.py measured; a shorter history gives narrower, less honest intervals.
MONTH_HISTORY_DAYS = 180


def _inputs(v: UseCases, customer: str, days: int | None = None
            ) -> tuple[pd.Series, pd.DataFrame | None, HistoryUsed, ZoneInfo]:
    from gateway.jobs import load_plan

    c = customer_config(v.gw, customer)
    tz = ZoneInfo(c.timezone)
    cfg = v.gw.config.forecast
    tomorrow = pd.Timestamp.now(tz=c.timezone).normalize().tz_localize(None) + pd.Timedelta(days=1)
    origin = tomorrow.tz_localize(c.timezone)
    start = (tomorrow - pd.Timedelta(days=max(cfg.history_days, days or 0))).tz_localize(c.timezone)
    frame = v.gw.query.customer_intervals(customer, start, origin)
    plan = load_plan(v.gw, customer, c.timezone)
    status = frame["status"].astype(str)
    used = HistoryUsed(start=start.to_pydatetime(), end=origin.to_pydatetime(), intervals=len(frame),
                       missing_intervals=int((status == "missing").sum()),
                       pending_intervals=int((status == "pending").sum()), plan=plan is not None)
    if frame["kwh"].notna().sum() == 0:
        raise NoData(f"no measured intervals for {customer} from {start.date()} to {origin.date()}: nothing to "
                     "forecast from")
    return frame["kwh"], plan, used, tz


def _forecast(v: UseCases, customer: str, horizon: Literal["week", "month"], month: str | None = None
              ) -> tuple[object, HistoryUsed]:
    from forecasting import ForecastError, forecast_month_ahead, forecast_week_ahead

    def make() -> tuple[object, HistoryUsed]:
        history, plan, used, _ = _inputs(v, customer, MONTH_HISTORY_DAYS if horizon == "month" else None)
        country = v.gw.config.forecast.holidays_country
        try:
            if horizon == "week":
                return forecast_week_ahead(history, plan, country), used
            return forecast_month_ahead(history, plan, month, country), used
        except ForecastError as exc:
            raise NoData(f"no {horizon}-ahead forecast for {customer}: {exc}", code="forecast_unavailable") from None

    key = ("planning", customer, horizon, month, pd.Timestamp.now(tz="UTC").floor("D"))
    return v.cache.get(key, FORECAST_TTL_S, make)


def forecast(v: UseCases, customer: str, horizon: Literal["week", "month"]) -> ForecastPublic:
    """The week ahead (7 local days from tomorrow, 15-min) or the next calendar month (daily), with intervals."""
    from forecasting import MonthAhead

    fc, used = _forecast(v, customer, horizon)
    if isinstance(fc, MonthAhead):
        d = fc.daily
        days = [DayForecast(day=t.date(), operating=bool(row.pop("operating") > 0),
                            **{str(c): _num(x) for c, x in row.items()})
                for t, row in zip(pd.DatetimeIndex(d.index), d.to_dict("records"), strict=True)]
        return ForecastPublic(customer=customer, horizon="month", model=fc.model, month=fc.month,
                              origin=pd.Timestamp(d.index[0]).to_pydatetime(), history=used, days=days)
    assert isinstance(fc, pd.DataFrame)
    rows = [IntervalForecast(start=t.to_pydatetime(), **{str(c): _num(x) for c, x in row.items()})
            for t, row in zip(pd.DatetimeIndex(fc.index), fc.to_dict("records"), strict=True)]
    return ForecastPublic(customer=customer, horizon="week", model=str(fc.attrs.get("model", "?")),
                          origin=pd.Timestamp(fc.index[0]).to_pydatetime(), history=used, intervals=rows)


def purchase(v: UseCases, customer: str, month: date | None) -> PurchasePublic:
    """Next month's (or `month`'s, up to MONTHS_AHEAD ahead) forecast energy and cost by TOU band, low to high."""
    from forecasting import MonthAhead

    tz = ZoneInfo(customer_config(v.gw, customer).timezone)
    today = datetime.now(tz).date()
    first = month.replace(day=1) if month is not None else next_month(today)
    tomorrow = pd.Timestamp(today) + pd.Timedelta(days=1)
    if pd.Timestamp(first) < tomorrow:
        raise BadInput(f"month: {first:%Y-%m} is not ahead: the forecast starts on {tomorrow.date()}", "month")
    last_allowed = today.replace(day=1)
    for _ in range(MONTHS_AHEAD):
        last_allowed = next_month(last_allowed)
    if first > last_allowed:
        raise BadInput(f"month: {first:%Y-%m} is more than {MONTHS_AHEAD} months ahead", "month")
    contract = contract_of(v.gw, customer, first, next_month(first))
    if contract is None:
        raise NoContract(f"customer {customer!r} has no contract for {first:%Y-%m}: the purchase view needs its "
                         "tariff")
    tariff = tariff_of(v.gw, contract)
    if tariff is None:
        raise NoContract(f"customer {customer!r}: tariff {contract.tariff_id!r} is not known to the gateway")
    fc, used = _forecast(v, customer, "month", f"{first:%Y-%m}")
    assert isinstance(fc, MonthAhead)
    try:
        view = purchase_view(fc.intervals, tariff, fc.month, tz, model=fc.model)
    except TariffNotInForce as exc:
        raise BeforeTariff(exc.tariff_id, exc.first_date, exc.asked) from None
    except ServiceError as exc:  # the forecast's shape is not one to price (a gap the forecast could not cover)
        raise NoData(f"purchase view of {customer}: {exc}", code="forecast_unavailable") from None
    except CrmError as exc:
        raise NoContract(f"purchase view of {customer}: {exc}") from None
    return PurchasePublic(**view.model_dump(), customer=customer, model=fc.model, history=used)


__all__ = ["DayForecast", "ForecastPublic", "HistoryUsed", "IntervalForecast", "PurchasePublic",
           "forecast", "purchase"]
