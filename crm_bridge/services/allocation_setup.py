"""A customer's month allocation assembled from the registry: its cost centres, the rule in force, its meters' grids.

The one assembly both callers use: the gateway's allocation of a month (gateway.usecases.allocation, what the API,
the portal and the finance export show) and the budget alert's month-to-date split (crm_bridge.alerts.evaluate).
They differ only in how they read a meter's intervals (`read`), so a cost centre's share can never be worked out two
ways. The split itself is crm_bridge.services.allocation.allocate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_bridge.registry.allocation_models import AllocationRule, CostCentre
from crm_bridge.services.allocation import (
    KINDS,
    Allocation,
    CostCentreDef,
    FormulaVersion,
    MeterGrid,
    Rule,
    RuleDef,
    allocate,
    meter_grids,
    parse_formula,
)
from crm_bridge.services.inputs import contract_in_force
from crm_bridge.tariffs.bill import MonthBill, month_bounds
from crm_bridge.tariffs.model import next_month

# A meter's 15-min intervals over [start, end) with at least `kwh` and `status` (the query layer's meter_intervals).
MeterReader = Callable[[str, datetime, datetime], pd.DataFrame]


@dataclass(frozen=True, slots=True)
class Setup:
    """The cost centres of a customer (every formula version) and the rule row in force in a month (None: by kWh)."""

    centres: list[CostCentreDef]
    rule_row: AllocationRule | None

    @property
    def rule(self) -> RuleDef:
        r = self.rule_row
        return RuleDef(Rule(r.rule), {k: Decimal(str(v)) for k, v in r.shares.items()}) if r else RuleDef(Rule.KWH, {})

    @property
    def meters(self) -> list[str]:
        """Every meter any formula version names, sorted."""
        return sorted({m for c in self.centres for v in c.versions for m in v.formula.meters})


def setup_of(session: Session, customer_id: int, first: date) -> Setup:
    """The registry's cost centres of the customer and the allocation rule in force on the month of `first`."""
    centres = []
    for c in session.scalars(select(CostCentre).where(CostCentre.customer_id == customer_id)
                             .order_by(CostCentre.code)):
        versions = tuple(FormulaVersion(parse_formula(f.formula), f.valid_from, f.valid_to) for f in c.formulas)
        centres.append(CostCentreDef(c.code, c.name, c.kind if c.kind in KINDS else "cost_centre", versions))
    rule = contract_in_force(list(session.scalars(select(AllocationRule).where(
        AllocationRule.customer_id == customer_id).order_by(AllocationRule.valid_from))), first, next_month(first))
    return Setup(centres, rule)


def month_grids(meters: list[str], first: date, zone: tzinfo, now: datetime, read: MeterReader
                ) -> dict[str, MeterGrid]:
    """Each meter's month read with `read` and placed on the month grid (meter_grids): the formulas' inputs."""
    start, end = month_bounds(first, zone)
    frames = {m: read(m, start.to_pydatetime(), end.to_pydatetime())[["kwh", "status"]] for m in meters}
    return meter_grids(frames, first, zone, now)


def allocate_month(setup: Setup, bill: MonthBill, rows: pd.DataFrame, first: date, zone: tzinfo, now: datetime,
                   read: MeterReader) -> Allocation:
    """`bill` (with its priced `rows`) split over the setup's cost centres, each formula meter read with `read`.

    Raises crm_bridge.services.allocation.AllocationError (a CrmError) or decimal.InvalidOperation on inputs the
    split refuses.
    """
    return allocate(bill, rows, setup.centres, setup.rule, month_grids(setup.meters, first, zone, now, read))


__all__ = ["MeterReader", "Setup", "allocate_month", "month_grids", "setup_of"]
