"""Billing maths of the Chinese large-industry two-part tariff: energy by band, basic charge, PF adjustment."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import pandas as pd

from crm_bridge.errors import TariffError
from crm_bridge.tariffs.model import Tariff, TariffVersion


def energy_cost(kwh: pd.Series, tariff: Tariff) -> pd.DataFrame:
    """Energy (kWh) and cost per band, each interval priced by the version in force on its local day.

    Returns one row per band plus a `total` row; columns kwh, energy_cost, funds. Missing intervals (NaN) cost
    nothing and are counted in `missing_intervals` of the total row.
    """
    table = tariff.price_table(pd.DatetimeIndex(kwh.index))
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
    cheapest: str
    break_even_pmax_kw: float  # below this Pmax, demand billing beats capacity billing
    recommended_contract_kw: float  # C* = expected Pmax / 1.05


def basic_charges(
    version: TariffVersion,
    transformer_kva: float,
    pmax_kw: float,
    contract_kw: float | None = None,
    hv_motors_kw: float = 0.0,
) -> BasicChargeComparison:
    """The month's basic charge under each mode (capacity, actual max demand, contract demand)."""
    if transformer_kva <= 0:
        raise TariffError("transformer_kva must be positive")
    p_kw, p_kva = version.basic_per_kw_month, version.basic_per_kva_month
    capacity = (transformer_kva + hv_motors_kw) * p_kva
    demand = pmax_kw * p_kw
    contract = None
    if contract_kw is not None:
        billed = max(contract_kw, version.contract_floor_share_of_kva * transformer_kva)
        excess = max(0.0, pmax_kw - version.contract_excess_threshold * contract_kw)
        contract = billed * p_kw + version.contract_excess_multiplier * p_kw * excess
    options = {"capacity": capacity, "demand": demand}
    if contract is not None:
        options["contract"] = contract
    return BasicChargeComparison(
        capacity=capacity, demand=demand, contract=contract, cheapest=min(options, key=lambda k: options[k]),
        break_even_pmax_kw=p_kva / p_kw * (transformer_kva + hv_motors_kw) if p_kw else math.inf,
        recommended_contract_kw=pmax_kw / version.contract_excess_threshold,
    )


def monthly_pf(kwh: float, kvarh: float) -> float:
    """Monthly PF = kWh / sqrt(kWh^2 + kvarh^2), rounded to 0.01 as billed."""
    apparent = math.hypot(kwh, kvarh)
    if apparent == 0:
        raise TariffError("no energy: the power factor is undefined")
    return round(kwh / apparent + 1e-12, 2)


@cache
def _pf_tables() -> dict[str, dict[str, float]]:
    text = resources.files("crm_bridge").joinpath("data", "tariffs", "pf_adjustment.toml").read_text("utf-8")
    doc: dict[str, Any] = tomllib.loads(text)
    return doc["standards"]


def pf_adjustment_pct(pf: float, standard: float = 0.90) -> float:
    """The bill adjustment in % for a monthly PF (negative: reward) under the 0.90, 0.85 or 0.80 standard."""
    table = _pf_tables().get(f"{standard:.2f}")
    if table is None:
        raise TariffError(f"no PF adjustment table for standard {standard}; known: {', '.join(_pf_tables())}")
    steps = round((round(pf, 2) - standard) * 100)
    if round(pf, 2) >= table["reward_cap_pf"]:
        return table["reward_cap_pct"]
    if steps >= 0:
        return round(steps * table["reward_per_001"], 4)
    if round(pf, 2) >= table["steep_from"]:
        return round(-steps * table["penalty_per_001"], 4)
    if round(pf, 2) >= table["steeper_from"]:
        below = round((table["steep_from"] - round(pf, 2)) * 100)
        return round(table["steep_base"] + below * table["steep_per_001"], 4)
    below = round((table["steeper_from"] - round(pf, 2)) * 100)
    return round(table["steeper_base"] + below * table["steeper_per_001"], 4)


def capacitor_kvar(p_kw: float, pf_from: float, pf_to: float) -> float:
    """Reactive compensation to raise PF: Q = P (tan acos PF1 - tan acos PF2)."""
    if not (0 < pf_from <= 1 and 0 < pf_to <= 1):
        raise TariffError("power factors must be in (0, 1]")
    return p_kw * (math.tan(math.acos(pf_from)) - math.tan(math.acos(pf_to)))


def shift_saving(kwh: float, price_from: float, price_to: float) -> float:
    """Money saved by moving `kwh` from a band priced `price_from` to one priced `price_to`."""
    return kwh * (price_from - price_to)
