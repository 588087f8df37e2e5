"""Versioned tariffs as data (TOU bands, prices, basic charge, PF tables), the billing rules and the month bill."""

from crm_bridge.tariffs.bill import (
    BandLine,
    BasicCharge,
    DayFigures,
    IntervalCounts,
    MonthBill,
    MonthUsage,
    SpanFigures,
    VersionUse,
    month_bill,
    month_intervals,
    month_usage,
    peak_demand,
    priced_intervals,
    span_figures,
)
from crm_bridge.tariffs.billing import BasicChargeComparison, basic_charges, energy_cost, shift_saving
from crm_bridge.tariffs.contract import (
    BasicChargeMode,
    contract_charge,
    contract_floor_kw,
    demand_limit_kw,
    effective_contract_kw,
)
from crm_bridge.tariffs.model import Tariff, TariffVersion, available_tariffs, load_tariff
from crm_bridge.tariffs.power_factor import capacitor_kvar, monthly_pf, pf_adjustment_pct, pf_table, round_pf

__all__ = [
    "BandLine", "BasicCharge", "BasicChargeComparison", "BasicChargeMode", "DayFigures", "IntervalCounts",
    "MonthBill", "MonthUsage", "Tariff", "TariffVersion", "VersionUse", "available_tariffs", "basic_charges",
    "capacitor_kvar", "contract_charge", "contract_floor_kw", "demand_limit_kw", "effective_contract_kw",
    "energy_cost", "load_tariff", "month_bill", "month_intervals", "month_usage", "monthly_pf", "peak_demand",
    "pf_adjustment_pct", "pf_table", "priced_intervals", "round_pf", "shift_saving", "SpanFigures",
    "span_figures",
]
