"""Registry tables of energy performance: production actuals and plans, the account's settings, and budgets."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, Date, Numeric, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_bridge.registry.models import Base, UtcDateTime


class ProductionDay(Base):
    """One local day's output of a customer (and of one line; "" is the whole plant), measured or planned.

    An upload replaces every row of the days it holds (of its kind), so re-sending a day gives the same rows.
    `shifts` (0..3) and `operating` are the day's shift count and whether it produces, NULL when the file had none:
    a plan's feed the forecast, the saving advice and the base-load alert (gateway.jobs.load_plan).
    """

    __tablename__ = "production_day"
    __table_args__ = (UniqueConstraint("customer_code", "kind", "day", "line"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_code: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # actual | plan
    day: Mapped[date] = mapped_column(Date)
    line: Mapped[str] = mapped_column(String(40), default="")
    output: Mapped[Decimal] = mapped_column(Numeric(18, 3))
    unit: Mapped[str] = mapped_column(String(40))
    hdd: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    cdd: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    shifts: Mapped[int | None] = mapped_column(SmallInteger)
    operating: Mapped[bool | None] = mapped_column(Boolean)
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    uploaded_by: Mapped[str] = mapped_column(String(100))


class PerformanceSettings(Base):
    """The account's grid region (for its CO2 emission factor) and its ISO 50006 baseline period (YYYY-MM)."""

    __tablename__ = "performance_settings"
    customer_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    grid_region: Mapped[str | None] = mapped_column(String(40))
    baseline_first: Mapped[str | None] = mapped_column(String(7))
    baseline_last: Mapped[str | None] = mapped_column(String(7))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(100))


class EnergyBudget(Base):
    """A month's energy budget (money) of the account ("" cost centre) or of one of its cost centres."""

    __tablename__ = "energy_budget"
    __table_args__ = (UniqueConstraint("customer_code", "month", "cost_centre"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_code: Mapped[str] = mapped_column(String(64), index=True)
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM, local month
    cost_centre: Mapped[str] = mapped_column(String(64), default="")
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(100))


__all__ = ["EnergyBudget", "PerformanceSettings", "ProductionDay"]
