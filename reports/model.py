"""What each report holds: plain data gathered by gateway/usecases/reports.py, read by the HTML, PDF and XLSX writers.

Every figure here comes from crm_bridge's one month bill (`MonthUsage`, `MonthBill`), the use cases' day curve or the
registry; the writers format them and never compute a figure of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from crm_bridge.tariffs import MonthBill, MonthUsage
from crm_bridge.tiering import reason_message
from forecasting.metrics import ForecastAccuracy
from reports.i18n import Lang, text


@dataclass(frozen=True)
class Month:
    """One month's figures: the metered part, and the bill when there is money to show."""

    first: date
    usage: MonthUsage
    bill: MonthBill | None


@dataclass(frozen=True)
class AlertRow:
    opened_at: datetime
    severity: str
    type: str
    status: str
    message: str


@dataclass(frozen=True)
class RequestRow:
    id: int
    title: str
    kind: str
    category: str
    status: str
    created_at: datetime


@dataclass(frozen=True)
class ForecastCheck:
    """The stored day-ahead forecast against the actual, over the intervals that have both.

    The month report shows the totals; its one accuracy figure is `CustomerMonthReport.forecast_accuracy` (MAE and
    bias over measured intervals only), never `accuracy`, which scores every shown forecast (estimated intervals
    too) and would give the month a second, different figure.
    """

    actual_kwh: float
    forecast_kwh: float
    intervals: int
    accuracy: float | None  # 1 - WAPE over the same intervals; not shown in the month report (see above)


@dataclass(frozen=True)
class CustomerMonthReport:
    customer: str
    name: str
    lang: Lang
    timezone: str
    made_at: datetime
    month: Month
    before: Month | None  # the month before
    last_year: Month | None  # the same month a year earlier
    peak_day: dict[str, Any] | None  # the use cases' day curve of the peak day
    forecast: ForecastCheck | None
    alerts: list[AlertRow]
    advice: list[dict[str, Any]] | None  # the services' advice ranked by money; None: no money in this report
    requests: list[RequestRow]
    # MAE and bias of the month's day-ahead forecasts over its measured intervals (gateway/usecases/forecast_accuracy)
    forecast_accuracy: ForecastAccuracy | None = None

    @property
    def money(self) -> bool:
        return self.month.bill is not None

    @property
    def currency(self) -> str:
        return self.month.bill.currency if self.month.bill is not None else "CNY"


@dataclass(frozen=True)
class DailyBrief:
    customer: str
    name: str
    lang: Lang
    timezone: str
    made_at: datetime
    day: date
    curve: dict[str, Any]  # the use cases' day curve: points (actual, forecast, last week, band) and summary
    last_week: dict[str, Any] | None  # the day curve's summary of the same weekday a week before
    forecast: ForecastCheck | None
    cost: float | None  # the day's energy charge by TOU band; None without money
    currency: str
    alerts: list[AlertRow]


@dataclass(frozen=True)
class PortfolioRow:
    customer: str
    name: str
    tier: str | None
    months: list[Month | None]  # oldest first, the report's month last
    open_advice_per_month: float | None  # money per month of the advice not yet acted on
    open_alerts: int
    open_requests: int

    @property
    def change(self) -> float | None:
        """The month's kWh against the month before, as a share (-0.4: 40 % less)."""
        if len(self.months) < 2 or self.months[-1] is None or self.months[-2] is None:
            return None
        before = self.months[-2].usage.energy_kwh
        return None if not before else self.months[-1].usage.energy_kwh / before - 1


@dataclass(frozen=True)
class TierChangeRow:
    customer: str
    old: str | None
    new: str
    reason: str
    at: datetime

    def reason_in(self, lang: str) -> str:
        """The reason in `lang`: crm_bridge.tiering's own wordings by their message key, else as recorded."""
        key, params = reason_message(self.reason)
        return text(key, lang, **params) if key else self.reason


@dataclass(frozen=True)
class DeskFigures:
    """Request response times of the manager's desk against target (crm_bridge.desk.desk_stats)."""

    count: int
    acknowledged: int
    resolved: int
    mean_ack_min: float | None
    mean_resolve_min: float | None
    ack_breaches: int
    resolve_breaches: int
    mean_satisfaction: float | None


@dataclass(frozen=True)
class PortfolioReport:
    manager: str
    manager_name: str
    lang: Lang
    timezone: str
    made_at: datetime
    month: date
    month_firsts: list[date]  # the months of each row's `months`
    rows: list[PortfolioRow]
    tier_changes: list[TierChangeRow]
    desk: DeskFigures | None
    currency: str = "CNY"
    notes: list[str] = field(default_factory=list)


Report = CustomerMonthReport | DailyBrief | PortfolioReport
