"""The eight value-added services of DOMAIN.md §3: pure functions over interval data and contract terms.

Each returns a pydantic result with its money figures and its evidence (data, period, intervals used and missing,
assumptions). They take frames on the query layer's grid (tz-aware 15-min interval starts; kwh, kvarh, kw; missing
values NaN, never filled), so the API, the jobs and the benchmarks call them alike. Peak, load factor, PF and
money of a month come from the one month bill (crm_bridge.tariffs.month_bill), never re-derived here.
"""

from crm_bridge.services.advice import AdviceItem, run_all, saving_advice
from crm_bridge.services.curves import LoadCurveCard, TouAdvice, load_curve_card, tou_advice
from crm_bridge.services.demand import DemandAdvice, PfAdvice, demand_advice, pf_advice
from crm_bridge.services.inputs import ContractInputs, Evidence, ServiceError
from crm_bridge.services.usage import (
    BaseLoad,
    BillForecast,
    EnergyPerformance,
    base_load,
    bill_forecast,
    energy_performance,
    off_hours_mask,
)

__all__ = [
    "AdviceItem", "BaseLoad", "BillForecast", "ContractInputs", "DemandAdvice", "EnergyPerformance", "Evidence",
    "LoadCurveCard", "PfAdvice", "ServiceError", "TouAdvice", "base_load", "bill_forecast", "demand_advice",
    "energy_performance", "load_curve_card", "off_hours_mask", "pf_advice", "run_all", "saving_advice", "tou_advice",
]
