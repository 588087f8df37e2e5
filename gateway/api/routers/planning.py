"""Planning: week-ahead and month-ahead forecasts, and next month's purchase view (energy and cost by TOU band)."""

from __future__ import annotations

from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query

from gateway.api.deps import UseCasesDep
from gateway.api.roles import Capability, needs
from gateway.api.scope import CustomerId
from gateway.usecases import parse_month
from gateway.usecases import planning as uc_planning
from gateway.usecases.figures import customer_config
from gateway.usecases.planning import ForecastPublic, PurchasePublic

router = APIRouter(prefix="/api/v1/customers", tags=["planning"], dependencies=[needs(Capability.METERED_DATA)])


@router.get("/{customer_id}/forecast")
def forecast(customer_id: CustomerId, v: UseCasesDep,
             horizon: Annotated[Literal["week", "month"], Query(description="week: 7 days of 15-min intervals "
                                                                            "from tomorrow; month: next month's "
                                                                            "days")] = "week") -> ForecastPublic:
    """Load forecast with 80 % and 95 % intervals: kWh per 15 min for the week, daily kWh and peak kW for the month.

    From the stored history up to now and the customer's production plan; `history` says what it stood on (missing
    and pending intervals are counted, never filled).
    """
    return uc_planning.forecast(v, customer_id, horizon)


@router.get("/{customer_id}/purchase", dependencies=[needs(Capability.MONEY)])
def purchase(customer_id: CustomerId, v: UseCasesDep,
             month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$",
                                                description="YYYY-MM, a month ahead; default next month")] = None,
             ) -> PurchasePublic:
    """Forecast energy by TOU band and its expected cost for the purchasing department, with 80/95 % ranges.

    Priced by the contract's tariff (money to the cent, as strings); the bands add up to `total`.
    """
    month_first = parse_month(month, ZoneInfo(customer_config(v.gw, customer_id).timezone)) if month else None
    return uc_planning.purchase(v, customer_id, month_first)
