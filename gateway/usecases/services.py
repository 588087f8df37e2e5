"""The value-added services and saving advice of one customer for one month: query layer + the contract on file."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from crm_bridge.errors import CrmError, TariffNotInForce
from crm_bridge.services import ContractInputs, run_all
from crm_bridge.tariffs.bill import month_bounds
from crm_bridge.tariffs.model import next_month
from gateway.usecases.errors import BeforeTariff, NoContract, NoData, UseCaseError
from gateway.usecases.figures import UseCases, contract_of, customer_config


def services_for(v: UseCases, customer: str, month: date) -> dict[str, Any]:
    """Every service's result (JSON-ready) for `month`; the current month runs up to now."""
    tz = ZoneInfo(customer_config(v.gw, customer).timezone)
    first = month.replace(day=1)
    start, end = month_bounds(first, tz)
    return v.cache.get(("services", customer, first), v._ttl(end),
                       lambda: _services(v, customer, tz, start, min(end, datetime.now(tz))))


def _services(v: UseCases, customer: str, tz: ZoneInfo, start: datetime, end: datetime) -> dict[str, Any]:
    contract = contract_of(v.gw, customer, start.date(), next_month(start.date()))
    if contract is None:
        raise NoContract(f"customer {customer!r} has no contract on file: the services need its terms")
    if end <= start:
        raise NoData(f"no data for {customer} from {start.date()}: the month has not begun")
    frame = v.gw.query.customer_intervals(customer, start, end)
    frame = frame[frame.index < pd.Timestamp(end)]
    if frame["kwh"].notna().sum() == 0:
        raise NoData(f"no measured intervals for {customer} from {start.date()} to {end.date()}")
    forecast = v.gw.query.forecast(customer, start, end + timedelta(days=32))
    try:
        results = run_all(frame, ContractInputs.from_contract(contract, timezone=str(tz)), as_of=end, forecast=forecast,
                          monthly_pmax_kw=earlier_peaks(v, customer, start.date()))
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


def earlier_peaks(v: UseCases, customer: str, first: date) -> list[float | None]:
    """Peak demand of each of the EARLIER_MONTHS months before `first`, oldest first (None: no data that month)."""
    peaks: list[float | None] = []
    month = first
    for _ in range(EARLIER_MONTHS):
        month = (month - timedelta(days=1)).replace(day=1)
        try:
            peaks.append(v.month_view(customer, month)["peak_kw"])
        except UseCaseError:
            peaks.append(None)
    return peaks[::-1]


def advice_for(v: UseCases, customer: str) -> list[dict[str, Any]]:
    """Saving advice ranked by money, from the last full month (the current one before the 8th is too short)."""
    tz = ZoneInfo(customer_config(v.gw, customer).timezone)
    today = datetime.now(tz).date()
    month = today.replace(day=1) if today.day >= 8 else (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    try:
        advice: list[dict[str, Any]] = services_for(v, customer, month)["advice"]
    except UseCaseError:
        return []
    return advice
