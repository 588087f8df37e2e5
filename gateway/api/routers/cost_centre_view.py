"""A cost centre's view: its curve, month bill share, SEC per day and month, baseline, budget against projection.

Thin: the route calls `gateway.usecases.cost_centre_view.CostCentreView`. Whose data: the customer scope of every
customers route (a customer user sees its own account only). Money (the bill share's amounts, the budget and its
projection) needs the money capability; without it the view keeps its kWh and leaves the money out.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict

from gateway.api.deps import UseCasesDep
from gateway.api.roles import Capability, allowed, needs
from gateway.api.routers.performance import BaselinePublic
from gateway.api.scope import AccessDep, CustomerId, SessionDep
from gateway.usecases.allocation import CODE, FormulaPublic
from gateway.usecases.cost_centre_view import CostCentreView
from gateway.usecases.figures import customer_config, parse_day, parse_month

router = APIRouter(prefix="/api/v1/customers", tags=["allocation"], dependencies=[needs(Capability.METERED_DATA)])
Code = Annotated[str, Path(pattern=CODE, description="The customer's cost-centre code")]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Counts(_Out):
    measured: int
    estimated: int
    pending: int
    missing: int


class Point(_Out):
    """One 15-min interval: kWh and kW are None where the interval has no energy (missing or pending)."""

    start: str
    kwh: float | None
    kw: float | None
    status: Literal["measured", "estimated", "pending", "missing"]


class Lacking(_Out):
    """A meter of the formula without energy in some intervals: named, counted, the first starts listed."""

    cost_centre: str
    meter: str
    status: str
    intervals: int
    first: datetime
    last: datetime
    starts: list[datetime]


class Curve(_Out):
    range: Literal["day", "week", "month"]
    first: date
    last: date
    interval_minutes: int
    intervals: list[Point]
    counts: Counts
    kwh: float | None
    missing_inputs: list[Lacking]


class MonthEnergy(_Out):
    kwh: float | None
    counts: Counts
    formulas: list[str]
    missing_inputs: list[Lacking]


class Money(_Out):
    element: str
    kwh: float | None
    amount: str


class ShareLine(_Out):
    """The cost centre's line of the month's allocation (GET .../allocation), money only with the capability."""

    code: str
    name: str
    kind: str
    formulas: list[str]
    kwh: float
    intervals: Counts
    share: str
    money: list[Money] | None = None
    total: str | None = None


class Share(_Out):
    line: ShareLine | None
    reason: str | None
    rule: str | None
    bill_kwh: float | None
    bill_total: str | None
    currency: str | None
    share_of_total: str | None
    share_of_kwh: str | None
    missing_inputs: list[Lacking] = []


class SecDay(_Out):
    day: date
    kwh: float | None
    complete: bool
    estimated_intervals: int
    missing_intervals: int
    pending_intervals: int
    output: float | None
    sec: float | None


class SecMonth(_Out):
    kwh: float | None
    output: float | None
    sec: float | None
    sec_days: int
    production_days: int
    excluded_days: int


class BaselineMonth(_Out):
    month: str
    kwh: float | None
    output: float | None
    sec: float | None
    predicted_kwh: float | None
    cusum_savings_kwh: float | None
    in_baseline: bool


class Baseline(BaselinePublic):
    """The customer's baseline model (the performance route's), fitted on the cost centre's months."""

    by_month: list[BaselineMonth]


class Sec(_Out):
    unit: str | None
    line: str
    days: list[SecDay]
    month: SecMonth
    baseline: Baseline


class Budget(_Out):
    """The month's budget (None when none is set) against the projection, and how the projection was made."""

    amount: str | None
    currency: str | None
    projected: str | None
    basis: Literal["bill", "projection", "none"]
    share: str | None
    account_projection: str | None
    over: bool | None
    note: str | None
    why: str | None


class CostCentreViewPublic(_Out):
    customer: str
    code: str
    name: str
    kind: str
    timezone: str
    month: str
    formulas: list[FormulaPublic]
    curve: Curve
    month_energy: MonthEnergy
    share: Share
    sec: Sec
    budget: Budget | None


@router.get("/{customer_id}/cost-centres/{code}/view")
def cost_centre_view(customer_id: CustomerId, code: Code, v: UseCasesDep, session: SessionDep, access: AccessDep,
                     month: Annotated[str | None, Query(max_length=7, description="YYYY-MM; default this month")]
                     = None,
                     range_: Annotated[Literal["day", "week", "month"], Query(alias="range")] = "month",
                     day: Annotated[str | None, Query(alias="date", max_length=10,
                                                      description="YYYY-MM-DD: the day or week shown")] = None,
                     ) -> CostCentreViewPublic:
    """One cost centre: curve, month bill share, SEC, baseline, budget against projection.

    The 15-min curve keeps each interval's status; the share is its line of the month's allocation; SEC per day and
    month from production whose line is the code (days with an interval not measured left out and counted); the
    ISO 50006 baseline or why not; its budget against the projection with the basis said (money only).
    """
    tz = ZoneInfo(customer_config(v.gw, customer_id).timezone)
    first = parse_month(month, tz)
    shown = parse_day(day, tz) if day else None
    money = allowed(access.principal.role, Capability.MONEY)
    view = CostCentreView(v, session).view(customer_id, code, first, range_, shown, money)
    return CostCentreViewPublic.model_validate(view)
