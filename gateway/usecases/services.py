"""The value-added services and saving advice of one customer for one month: query layer + the contract on file."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from crm_bridge.errors import CrmError, TariffNotInForce
from crm_bridge.services import ContractInputs, run_all
from crm_bridge.tariffs import MonthUsage
from crm_bridge.tariffs.bill import month_bounds
from crm_bridge.tariffs.model import next_month
from gateway.usecases.desk import advice_month
from gateway.usecases.errors import BeforeTariff, NoContract, NoData, UseCaseError
from gateway.usecases.figures import UseCases, _num, contract_of, customer_config, tariff_of


def services_for(v: UseCases, customer: str, month: date, frame: pd.DataFrame | None = None,
                 peaks: list[float | None] | None = None, forecast: pd.DataFrame | None = None) -> dict[str, Any]:
    """Every service's result (JSON-ready) for `month`; the current month runs up to now.

    A caller that has the figures already passes them, so nothing is read or computed twice: `frame`, the month's
    intervals (UseCases.month_frame's); `peaks`, what `earlier_peaks` gives for the month; `forecast`, for a month
    that is over, the stored forecast from its start to 32 days after its end (QueryService.forecast's).
    """
    tz = ZoneInfo(customer_config(v.gw, customer).timezone)
    first = month.replace(day=1)
    start, end = month_bounds(first, tz)
    return v.cache.get(("services", customer, first), v._ttl(end),
                       lambda: _services(v, customer, tz, start, min(end, datetime.now(tz)), frame, peaks, forecast))


def _services(v: UseCases, customer: str, tz: ZoneInfo, start: datetime, end: datetime, frame: pd.DataFrame | None,
              peaks: list[float | None] | None, forecast: pd.DataFrame | None) -> dict[str, Any]:
    contract = contract_of(v.gw, customer, start.date(), next_month(start.date()))
    if contract is None:
        raise NoContract(f"customer {customer!r} has no contract on file: the services need its terms")
    if end <= start:
        raise NoData(f"no data for {customer} from {start.date()}: the month has not begun")
    if frame is None:
        frame = v.gw.query.customer_intervals(customer, start, end)
    # Up to now: a frame of the whole month holds the same intervals as one read up to now, and then some
    frame = frame[frame.index < pd.Timestamp(end)]
    if frame["kwh"].notna().sum() == 0:
        raise NoData(f"no measured intervals for {customer} from {start.date()} to {end.date()}")
    if forecast is None:
        forecast = v.gw.query.forecast(customer, start, end + timedelta(days=32))
    from gateway.jobs import load_plan  # the plan's shifts decide the base load's off-hours

    try:
        results = run_all(frame, ContractInputs.from_contract(contract, timezone=str(tz)),
                          tariff=tariff_of(v.gw, contract), as_of=end, forecast=forecast,
                          monthly_pmax_kw=earlier_peaks(v, customer, start.date()) if peaks is None else peaks,
                          plan=load_plan(v.gw, customer, str(tz)))
    except TariffNotInForce as exc:
        raise BeforeTariff(exc.tariff_id, exc.first_date, exc.asked) from None
    except CrmError as exc:
        raise NoContract(f"services for {customer}: {exc}") from None
    out: dict[str, Any] = {k: ([x.model_dump(mode="json") for x in r] if isinstance(r, list)
                               else r.model_dump(mode="json")) for k, r in results.items()}
    out["month"] = start.strftime("%Y-%m")
    out["customer"] = customer
    return out


EARLIER_MONTHS = 5  # months of peak demand before this one that the capacity-upgrade rule reads from the store


def earlier_peaks(v: UseCases, customer: str, first: date,
                  usage_of: Callable[[date], MonthUsage | None] | None = None) -> list[float | None]:
    """Peak demand of each of the EARLIER_MONTHS months before `first`, oldest first (None: no data that month).

    Each is the month view's `peak_kw`; `usage_of` gives a month's figures (None: no data) where the caller has
    them already (the monthly report reads its months in one go), else each month view is made or taken from cache.
    """
    peaks: list[float | None] = []
    month = first
    for _ in range(EARLIER_MONTHS):
        month = (month - timedelta(days=1)).replace(day=1)
        if usage_of is not None:
            usage = usage_of(month)
            peaks.append(None if usage is None else _num(usage.peak_kw))  # rounded as month_json rounds it
            continue
        try:
            peaks.append(v.month_view(customer, month)["peak_kw"])
        except UseCaseError:
            peaks.append(None)
    return peaks[::-1]


def advice_for(v: UseCases, customer: str) -> list[dict[str, Any]]:
    """Saving advice ranked by money, from the last full month (the current one before the 8th is too short)."""
    tz = ZoneInfo(customer_config(v.gw, customer).timezone)
    month = date.fromisoformat(f"{advice_month(datetime.now(tz).date())}-01")
    try:
        advice: list[dict[str, Any]] = services_for(v, customer, month)["advice"]
    except UseCaseError:
        return []
    return advice
