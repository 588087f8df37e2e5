"""Versioned tariffs as data (TOU bands, prices, basic charge, PF tables) and the billing maths over them."""

from crm_bridge.tariffs.billing import (
    BasicChargeComparison,
    basic_charges,
    capacitor_kvar,
    energy_cost,
    monthly_pf,
    pf_adjustment_pct,
    shift_saving,
)
from crm_bridge.tariffs.model import Tariff, TariffVersion, available_tariffs, load_tariff

__all__ = [
    "BasicChargeComparison", "Tariff", "TariffVersion", "available_tariffs", "basic_charges", "capacitor_kvar",
    "energy_cost", "load_tariff", "monthly_pf", "pf_adjustment_pct", "shift_saving",
]
