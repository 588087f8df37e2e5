"""Billing maths of the two-part tariff per version: energy by band, the three basic charges, load-shift money.

The month's bill that combines them (versions prorated, PF adjustment, funds) is crm_bridge.tariffs.bill.month_bill;
the PF rules live in crm_bridge.tariffs.power_factor and the contract-demand rule in crm_bridge.tariffs.contract.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import tzinfo

import pandas as pd

from crm_bridge.tariffs.contract import BasicChargeMode, contract_charge, contract_floor_kw, total_capacity
from crm_bridge.tariffs.model import Tariff, TariffVersion
from crm_bridge.tariffs.power_factor import capacitor_kvar, monthly_pf, pf_adjustment_pct

__all__ = [
    "BasicChargeComparison", "basic_charges", "capacitor_kvar", "energy_cost", "monthly_pf", "pf_adjustment_pct",
    "shift_saving",
]


def energy_cost(kwh: pd.Series, tariff: Tariff, tz: str | tzinfo | None = None) -> pd.DataFrame:
    """Energy (kWh) and cost per band, each interval priced by the version in force on its local day.

    Returns one row per band plus a `total` row; columns kwh, energy_cost, funds_cost. Missing intervals (NaN) cost
    nothing and are counted in `missing_intervals` of the total row. `tz`: the customer's zone (else the tariff's).
    """
    table = tariff.price_table(pd.DatetimeIndex(kwh.index), tz)
    frame = table.assign(kwh=kwh.to_numpy(dtype=float))
    frame["energy_cost"] = frame["kwh"] * frame["price"]
    frame["funds_cost"] = frame["kwh"] * frame["funds"]
    per_band = frame.groupby("band")[["kwh", "energy_cost", "funds_cost"]].sum(min_count=1).fillna(0.0)
    total = per_band.sum().to_frame("total").T
    total["missing_intervals"] = int(frame["kwh"].isna().sum())
    return pd.concat([per_band, total])


@dataclass(frozen=True)
class BasicChargeComparison:
    capacity: float
    demand: float
    contract: float | None
    cheapest: BasicChargeMode
    break_even_pmax_kw: float  # below this Pmax, demand billing beats capacity billing
    recommended_contract_kw: float  # C* = expected Pmax / 1.05, raised to the 40 % floor
    effective_contract_kw: float | None  # the contract in force (raised to the floor when set below it)


def basic_charges(
    version: TariffVersion,
    transformer_kva: float,
    pmax_kw: float,
    contract_kw: float | None = None,
    hv_motors_kw: float = 0.0,
) -> BasicChargeComparison:
    """One version's month basic charge under each mode (capacity, actual max demand, contract demand).

    Capacity = (kVA + HV motor kW) x price per kVA; demand = Pmax x price per kW; contract: see
    crm_bridge.tariffs.contract.contract_charge (the 40 % floor raises C for the charge and its 105 % threshold).
    """
    capacity_kva = total_capacity(transformer_kva, hv_motors_kw)
    p_kw, p_kva = version.basic_per_kw_month, version.basic_per_kva_month
    capacity = capacity_kva * p_kva
    demand = pmax_kw * p_kw
    contract = effective = None
    if contract_kw is not None:
        effective = max(float(contract_kw), contract_floor_kw(transformer_kva, hv_motors_kw, version))
        contract = contract_charge(version, contract_kw, pmax_kw, transformer_kva, hv_motors_kw)
    options = {BasicChargeMode.CAPACITY: capacity, BasicChargeMode.DEMAND: demand}
    if contract is not None:
        options[BasicChargeMode.CONTRACT] = contract
    return BasicChargeComparison(
        capacity=capacity, demand=demand, contract=contract, cheapest=min(options, key=lambda k: options[k]),
        break_even_pmax_kw=p_kva / p_kw * capacity_kva if p_kw else math.inf,
        recommended_contract_kw=max(pmax_kw / version.contract_excess_threshold,
                                    contract_floor_kw(transformer_kva, hv_motors_kw, version)),
        effective_contract_kw=effective,
    )


def shift_saving(kwh: float, price_from: float, price_to: float) -> float:
    """Money saved by moving `kwh` from a band priced `price_from` to one priced `price_to`."""
    return kwh * (price_from - price_to)
