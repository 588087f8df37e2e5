"""Energy performance: production uploads, SEC, the ISO 50006 baseline and CUSUM, CO2, budgets, region and baseline.

Thin: every route calls `gateway.usecases.performance.Performance`. Whose data: the customer scope of every
customers route (CustomerId: a customer user sees its own account only, a manager its accounts). Money (budgets,
projected bills, the measured and promised savings of advice) needs the money capability; the account's grid region
and baseline period are the account file's.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.deps import UseCasesDep, get_auth
from gateway.api.errors import ApiError
from gateway.api.roles import Capability, allowed, needs
from gateway.api.scope import AccessDep, ActorDep, CustomerId, SessionDep
from gateway.auth import AuthService
from gateway.usecases.figures import customer_config, parse_month
from gateway.usecases.performance import Performance, ProductionRejected, month_of, problems_in

router = APIRouter(prefix="/api/v1/customers", tags=["performance"], dependencies=[needs(Capability.METERED_DATA)])
MONTH = r"^\d{4}-\d{2}$"
Lang = Annotated[Literal["zh", "en"] | None,
                 Query(description="Language of the messages: zh or en; default Accept-Language, else the account's")]


def get_performance(v: UseCasesDep, session: SessionDep) -> Iterator[Performance]:
    yield Performance(v, session)


PerformanceDep = Annotated[Performance, Depends(get_performance)]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProductionProblem(_Out):
    """One problem of a refused file: the row as a spreadsheet numbers it (the header is row 1), the column, why."""

    row: int | None
    column: str | None
    code: str
    value: str | None
    message: str = Field(description="In the reader's language")
    english: str


class ProductionUploadPublic(_Out):
    """What an accepted file stored: its rows replaced every earlier row of the same days."""

    customer: str
    kind: Literal["actual", "plan"]
    rows: int
    days: int
    first_day: date
    last_day: date
    replaced_rows: int
    unit: str


class DayPerformance(_Out):
    day: date
    kwh: float | None
    complete: bool = Field(description="No missing or pending interval: only such a day has an SEC")
    estimated_intervals: int
    missing_intervals: int
    pending_intervals: int
    output: float | None
    sec: float | None = Field(description="kWh per unit of output")
    shifts: int | None = Field(None, description="The day's shift count (0-3) as uploaded; null: not given")
    operating: bool | None = Field(None, description="Whether the plant produced that day; null: not given")


class Co2Public(_Out):
    kg: float | None = Field(description="Scope 2, location-based; null when no factor is known (never 0)")
    kg_per_unit: float | None
    factor_kg_per_kwh: float | None
    factor_year: int | None
    region: str | None
    source: str | None
    note: str | None


class MonthPerformance(_Out):
    month: str
    kwh: float | None
    complete: bool
    estimated_intervals: int
    missing_intervals: int
    pending_intervals: int
    output: float | None
    production_days: int
    days: int
    sec: float | None = Field(description="kWh per unit over the month's complete days with output")
    sec_days: int
    in_model: bool
    excluded_because: str | None
    in_baseline: bool
    co2: Co2Public | None
    predicted_kwh: float | None
    savings_kwh: float | None = Field(description="Baseline-predicted minus actual: positive is a saving")
    cusum_savings_kwh: float | None = Field(description="Running sum of savings_kwh: -CUSUM(actual - predicted)")
    enpi_ratio: float | None = Field(description="Actual / baseline-predicted: the baseline-normalised EnPI")


class LineOutput(_Out):
    line: str | None
    month: str
    output: float | None


class BaselinePublic(_Out):
    valid: bool
    reason: str | None
    criteria: str
    drivers: list[str]
    coefficients: dict[str, float]
    r2: float | None
    cv_rmse: float | None
    first: str | None
    last: str | None
    months: int


class NextMonth(_Out):
    month: str
    planned_output: float | None
    kwh: float | None
    cost: str | None
    note: str | None = Field(description="Why there is no planned output or kWh")


class AdviceSavingPublic(_Out):
    ticket_id: int
    advice_key: str
    advice_month: str
    title: str
    done_on: date
    measurable: bool
    reason: str | None
    months_before: list[str]
    months_after: list[str]
    kwh_per_month: float | None
    money_per_month: str | None
    promised_money_per_month: str | None
    currency: str


class PerformancePublic(_Out):
    """SEC per day and month, the ISO 50006 baseline, CUSUM, CO2, next month from the plan, advice measured."""

    customer: str
    timezone: str
    from_: str = Field(alias="from")
    to: str
    unit: str | None
    grid_region: str | None
    months: list[MonthPerformance]
    days: list[DayPerformance]
    lines: list[LineOutput]
    baseline: BaselinePublic
    next_month: NextMonth
    currency: str | None
    advice: list[AdviceSavingPublic] | None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class BudgetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    month: str = Field(pattern=MONTH)
    cost_centre: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
    amount: Decimal = Field(ge=0, le=Decimal("1e12"), decimal_places=2, allow_inf_nan=False)
    currency: str = Field("CNY", pattern=r"^[A-Z]{3}$")


class BudgetsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    budgets: list[BudgetIn] = Field(max_length=1200)


class BudgetPublic(_Out):
    month: str
    cost_centre: str | None
    amount: str
    currency: str
    projected_bill: str | None
    basis: Literal["bill", "projection", "none"]
    over: bool | None
    note: str | None


class BudgetsPublic(_Out):
    customer: str
    budgets: list[BudgetPublic]
    updated_by: str | None
    updated_at: datetime | None


class SettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grid_region: str | None = Field(None, pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,20}){0,2}$")
    baseline_first: str | None = Field(None, pattern=MONTH)
    baseline_last: str | None = Field(None, pattern=MONTH)


class SettingsPublic(_Out):
    customer: str
    grid_region: str | None
    baseline_first: str | None
    baseline_last: str | None
    regions: list[str] = Field(description="The regions with an emission factor on file")


def _lang(request: Request, lang: str | None, customer_language: str) -> str:
    from gateway.portal.i18n import negotiate

    if lang:
        return lang
    header = request.headers.get("accept-language")
    return negotiate(header) if header else customer_language


@router.post("/{customer_id}/production", status_code=201)
def upload_production(customer_id: CustomerId, file: Annotated[UploadFile, File()], perf: PerformanceDep,
                      actor: ActorDep, request: Request,
                      kind: Annotated[Literal["actual", "plan"], Query()] = "actual", lang: Lang = None,
                      ) -> ProductionUploadPublic:
    """Upload production actuals (days that are over) or plans as CSV or XLSX, 5 MB at most.

    Columns `date` (YYYY-MM-DD), `output`, `unit`, optional `line`, `hdd`, `cdd`, `shifts` (0-3), `operating` (1/0,
    yes/no, 是/否) (or 日期, 产量, 单位, 产线, 采暖度日, 制冷度日, 班次, 生产); a plan's shifts and operating flags feed
    the forecast, the advice and the base-load alert too. A file with any bad row stores nothing: 422 with every
    problem (row, column, reason in the reader's language). An accepted file replaces every row of the days it holds.
    """
    from crm_bridge.services.production_io import MAX_BYTES

    data = file.file.read(MAX_BYTES + 1)
    try:
        return ProductionUploadPublic.model_validate(perf.upload(actor.username, customer_id, data, kind))
    except ProductionRejected as exc:
        from gateway.portal.i18n import text

        reader = _lang(request, lang, customer_config(perf.v.gw, customer_id).language)
        raise ApiError(422, text("production_rejected", reader, n=exc.count), code="invalid_file",
                       detail={"where": "file", "count": exc.count, "errors": problems_in(exc.errors, reader)},
                       ) from None


@router.get("/{customer_id}/performance")
def performance(customer_id: CustomerId, perf: PerformanceDep, access: AccessDep,
                from_: Annotated[str | None, Query(alias="from", pattern=MONTH,
                                                   description="First month YYYY-MM; default 11 months before `to`")]
                = None,
                to: Annotated[str | None, Query(pattern=MONTH, description="Last month YYYY-MM; default this month")]
                = None) -> PerformancePublic:
    """SEC per day and month, the ISO 50006 baseline (coefficients, R², CV(RMSE), adequacy), CUSUM, CO2.

    The baseline period is the account's (PUT .../performance/settings), else the first 12 months asked. A month
    with missing or pending intervals, or without output for every day, is shown but left out of the model, and
    says why. Money (next month's cost, measured savings of advice done) only for roles that may see money.
    """
    tz = ZoneInfo(customer_config(perf.v.gw, customer_id).timezone)
    last = month_of(to, "to") if to else parse_month(None, tz)
    if from_:
        first = month_of(from_, "from")
    else:
        first = last
        for _ in range(11):
            first = (first - timedelta(days=1)).replace(day=1)
    result = perf.performance(customer_id, first, last, allowed(access.principal.role, Capability.MONEY))
    return PerformancePublic.model_validate(result)


@router.get("/{customer_id}/performance/settings")
def get_settings(customer_id: CustomerId, perf: PerformanceDep) -> SettingsPublic:
    """The account's grid region (for CO2) and ISO 50006 baseline period, and the regions with a factor on file."""
    return SettingsPublic.model_validate(perf.settings(customer_id))


@router.put("/{customer_id}/performance/settings", dependencies=[needs(Capability.CUSTOMER_FILE)])
def put_settings(customer_id: CustomerId, body: SettingsIn, perf: PerformanceDep, actor: ActorDep) -> SettingsPublic:
    """Set the grid region and the baseline period (both ends or neither); 422 naming the field otherwise."""
    return SettingsPublic.model_validate(perf.put_settings(actor.username, customer_id, body.grid_region,
                                                           body.baseline_first, body.baseline_last))


@router.get("/{customer_id}/budgets", dependencies=[needs(Capability.MONEY)])
def get_budgets(customer_id: CustomerId, perf: PerformanceDep) -> BudgetsPublic:
    """Budgets per month (and cost centre) with the month's bill: actual when over, projected for this month."""
    return BudgetsPublic.model_validate(perf.budgets(customer_id))


@router.put("/{customer_id}/budgets", dependencies=[needs(Capability.MONEY)])
def put_budgets(customer_id: CustomerId, body: BudgetsIn, perf: PerformanceDep, actor: ActorDep,
                auth: Annotated[AuthService, Depends(get_auth)]) -> BudgetsPublic:
    """Replace the budgets (amounts exact to the cent); audited like the portal's budget form.

    The alerts job warns when this month's projected bill exceeds the account's or a cost centre's budget (once a
    month each).
    """
    out = BudgetsPublic.model_validate(perf.put_budgets(actor.username, customer_id, body.budgets))
    auth.audit(actor.username, "performance.budgets", f"customer:{customer_id}", body.model_dump_json(), actor.client)
    return out
