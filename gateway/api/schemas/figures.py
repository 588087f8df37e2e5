"""The customer's figures as the API answers them: the day curve, interval series and the month view."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonDict

Kw = float | None  # None: not known (a missing or pending interval, no data), never filled with a guess


class IntervalCounts(BaseModel):
    measured_intervals: int
    estimated_intervals: int
    missing_intervals: int
    pending_intervals: int


class DayPoint(BaseModel):
    start: str = Field(description="Start of the 15-min interval, ISO 8601 on the customer's clock")
    actual_kw: Kw
    status: str | None = Field(description="measured, estimated, missing or pending")
    forecast_kw: Kw
    last_week_kw: Kw = Field(description="The same wall-clock time on the same weekday a week before")
    band: str | None = Field(description="TOU band of the interval (peak, flat, valley ...); null without a tariff")


class DaySummary(IntervalCounts):
    kwh: float | None
    peak_kw: Kw
    peak_at: str | None
    min_kw: Kw
    mean_kw: Kw
    load_factor: float | None
    pf: float | None
    intervals: int
    tariff: str | None


_POINT: JsonDict = {"start": "2026-03-02T00:00:00+08:00", "actual_kw": 412.5, "status": "measured",
                    "forecast_kw": 400.0, "last_week_kw": 398.2, "band": "valley"}
_COUNTS: JsonDict = {"measured_intervals": 96, "estimated_intervals": 0, "missing_intervals": 0, "pending_intervals": 0}


class DayCurve(BaseModel):
    """15-min kW of one local day: actual, forecast and the same weekday a week before, with TOU bands."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer": "acme", "date": "2026-03-02", "timezone": "Asia/Shanghai", "interval_minutes": 15,
        "points": [_POINT],
        "summary": {"kwh": 9840.0, "peak_kw": 612.0, "peak_at": "2026-03-02T10:15:00+08:00", "min_kw": 288.1,
                    "mean_kw": 410.0, "load_factor": 0.67, "pf": 0.94, **_COUNTS, "intervals": 96,
                    "tariff": "cn-example-industrial"}}]})

    customer: str
    date: str
    timezone: str
    interval_minutes: int
    points: list[DayPoint]
    summary: DaySummary


class SeriesRow(BaseModel):
    start: str
    kw_mean: Kw
    kwh: float | None
    demand_max_kw: Kw
    kvarh: float | None
    pf: float | None
    intervals: int | None = None
    measured_intervals: int | None = None
    estimated_intervals: int | None = None
    missing_intervals: int | None = None
    pending_intervals: int | None = None
    missing: bool
    status: str | None = Field(description="measured, estimated, missing or pending (the worst of its intervals)")


_SERIES_EXAMPLE: JsonDict = {"timezone": "Asia/Shanghai", "freq": "1h", "intervals": [{
    "start": "2026-03-02T00:00:00+08:00", "kw_mean": 405.2, "kwh": 405.2, "demand_max_kw": 418.0, "kvarh": 131.7,
    "pf": 0.951, "intervals": 4, **_COUNTS, "measured_intervals": 4, "missing": False, "status": "measured"}]}


class SeriesPublic(BaseModel):
    """Interval series on the owner's local clock, each row with its status and its intervals counted by status."""

    timezone: str
    freq: str
    intervals: list[SeriesRow]


class CustomerSeries(SeriesPublic):
    model_config = ConfigDict(json_schema_extra={"examples": [{"customer": "acme", **_SERIES_EXAMPLE}]})
    customer: str


class SiteSeries(SeriesPublic):
    model_config = ConfigDict(json_schema_extra={"examples": [{"site": "acme-plant", **_SERIES_EXAMPLE}]})
    site: str


class MeterSeries(SeriesPublic):
    model_config = ConfigDict(json_schema_extra={"examples": [{"meter": "acme-main", **_SERIES_EXAMPLE}]})
    meter: str


class MonthDay(IntervalCounts):
    day: str
    kwh: float | None
    peak_kw: Kw
    pf: float | None


class TouLine(BaseModel):
    band: str = Field(description="A TOU band, or `total` for the last line")
    kwh: float | None
    cost: float | None


class BasicChargePublic(BaseModel):
    capacity: float | None
    demand: float | None
    contract: float | None
    cheapest: str
    current_mode: str
    amount: float | None
    capacity_kva: float | None
    contract_kw: float | None
    effective_contract_kw: float | None
    demand_limit_kw: float | None
    excess_kw: float | None
    recommended_contract_kw: float | None


class PfAdjustment(BaseModel):
    pf: float | None
    standard: float
    percent: float = Field(description="Negative: a reward")
    amount: float | None


class TariffVersionDays(BaseModel):
    valid_from: str
    first_day: str
    last_day: str
    days: int


class MonthView(IntervalCounts):
    """A month's energy, peak and when, load factor and PF; with money: TOU costs, basic charge, PF adjustment.

    Roles that may not see money get the view without `tou`, `basic_charge`, `pf_adjustment`, `government_funds`,
    `total`, `currency` and `versions` (the keys are left out); for the others they are null when the customer has
    no contract on a shipped tariff.
    """

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer": "acme", "month": "2026-02", "timezone": "Asia/Shanghai", "complete": True, "kwh": 275520.0,
        "kvarh": 90110.0, "pf": 0.95, "peak_kw": 640.0, "peak_at": "2026-02-12T10:15:00+08:00", "average_kw": 410.0,
        "load_factor": 0.64, "elapsed_hours": 672.0, **_COUNTS, "measured_intervals": 2688, "intervals": 2688,
        "daily": [{"day": "2026-02-01", "kwh": 9840.0, "peak_kw": 612.0, "pf": 0.95, **_COUNTS}],
        "tariff": "cn-example-industrial", "currency": "CNY",
        "tou": [{"band": "peak", "kwh": 90000.0, "cost": 98000.0},
                {"band": "total", "kwh": 275520.0, "cost": 190000.0}],
        "basic_charge": {"capacity": 25600.0, "demand": 24960.0, "contract": 23400.0, "cheapest": "contract",
                         "current_mode": "capacity", "amount": 25600.0, "capacity_kva": 800.0, "contract_kw": 600.0,
                         "effective_contract_kw": 600.0, "demand_limit_kw": 630.0, "excess_kw": 10.0,
                         "recommended_contract_kw": 609.5},
        "pf_adjustment": {"pf": 0.95, "standard": 0.9, "percent": -0.75, "amount": -1617.0},
        "government_funds": 8265.6, "total": 230248.6,
        "versions": [{"valid_from": "2025-06-01", "first_day": "2026-02-01", "last_day": "2026-02-28", "days": 28}],
    }]})

    customer: str
    month: str = Field(description="YYYY-MM")
    timezone: str
    complete: bool = Field(description="The month is over and no interval is missing or pending")
    kwh: float | None
    kvarh: float | None
    pf: float | None
    peak_kw: Kw
    peak_at: str
    average_kw: Kw
    load_factor: float | None
    elapsed_hours: float
    intervals: int
    daily: list[MonthDay]
    tariff: str | None
    tou: list[TouLine] | None = None
    basic_charge: BasicChargePublic | None = None
    pf_adjustment: PfAdjustment | None = None
    government_funds: float | None = None
    total: float | None = None
    currency: str | None = None
    versions: list[TariffVersionDays] | None = None
