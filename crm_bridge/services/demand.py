"""Services 3 and 4: demand watch with the basic-charge advisor, and the PF adjustment estimator."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
from pydantic import BaseModel

from crm_bridge.services.inputs import (
    MODE_OF_COMPARISON,
    ContractInputs,
    Evidence,
    ServiceError,
    check_frame,
    evidence,
    kw_of,
    months_covered,
    settings,
)
from crm_bridge.tariffs import Tariff, basic_charges, capacitor_kvar, monthly_pf, pf_adjustment_pct


class DemandAdvice(BaseModel):
    """Month-to-date maximum demand against the contract, the three basic-charge modes, and capacity advice."""

    currency: str
    pmax_kw: float | None
    pmax_window_start: datetime | None
    limit_kw: float  # 1.05 x contract demand
    demand_beats_capacity_below_kw: float  # Pmax under which max-demand billing is cheaper than capacity
    share_of_limit: float | None
    levels_reached: list[float]  # of the limit, e.g. [0.9] or [0.9, 1.0]
    charges: dict[str, float]  # capacity, max_demand, contract_demand
    current_mode: str
    cheapest_mode: str
    saving_by_switching: float  # per month
    recommended_contract_kw: float | None  # C* = expected Pmax / 1.05
    recommended_contract_charge: float | None  # contract-demand charge at C* for this month's Pmax
    saving_by_recommended_contract: float  # per month, against the current mode's charge
    upgrade_advised: bool
    upgrade_reason: str | None
    evidence: Evidence


def demand_advice(frame: pd.DataFrame, contract: ContractInputs, tariff: Tariff,
                  monthly_pmax_kw: list[float] | None = None, expected_pmax_kw: float | None = None,
                  upgrade_share_of_kva: float | None = None, upgrade_months: int | None = None) -> DemandAdvice:
    """Demand watch for the month in `frame`; `monthly_pmax_kw` are earlier months' Pmax, oldest first.

    The capacity-upgrade rule (share of kVA, months running) comes from the data file unless given here.
    """
    idx = check_frame(frame, "demand advice")
    cfg = settings()["demand"]
    kw = kw_of(frame).where(frame["kwh"].notna())
    pmax = float(kw.max()) if kw.notna().any() else None
    at = pd.Timestamp(kw.idxmax()).to_pydatetime() if pmax is not None else None
    version = tariff.version_at(idx[-1].date())
    over = version.contract_excess_threshold  # 1.05: demand above 1.05 C is billed twice
    limit = contract.contract_demand_kw * over
    share = pmax / limit if pmax is not None else None
    levels = [lv for lv in cfg["alert_levels"] if share is not None and share >= lv]
    bc = basic_charges(version, contract.transformer_kva, pmax or 0.0, contract.contract_demand_kw,
                       contract.hv_motors_kw)
    charges = {"capacity": bc.capacity, "max_demand": bc.demand}
    if bc.contract is not None:
        charges["contract_demand"] = bc.contract
    cheapest = MODE_OF_COMPARISON[bc.cheapest]
    expected = expected_pmax_kw if expected_pmax_kw is not None else (
        max([*(monthly_pmax_kw or [])[-3:], pmax or 0.0]) or None)
    c_star = expected / over if expected else None
    c_star_charge = None
    if c_star is not None and bc.contract is not None:
        c_star_charge = basic_charges(version, contract.transformer_kva, pmax or 0.0, c_star,
                                      contract.hv_motors_kw).contract
    current_charge = charges.get(contract.basic_charge_mode, charges[cheapest])
    history = [*(monthly_pmax_kw or []), *([pmax] if pmax is not None else [])]
    months = int(upgrade_months if upgrade_months is not None else cfg["upgrade_months"])
    share_kva = float(upgrade_share_of_kva if upgrade_share_of_kva is not None else cfg["upgrade_share_of_kva"])
    if months < 1 or not 0 < share_kva <= 2:
        raise ServiceError(f"demand advice: capacity-upgrade rule {share_kva:g} of kVA for {months} months is "
                           "impossible (share in (0, 2], at least 1 month)")
    recent = history[-months:]
    upgrade = len(recent) >= months and all(p > share_kva * contract.transformer_kva for p in recent)
    assumptions = [f"limit = {over:g} x contract demand {contract.contract_demand_kw:g} kW",
                   f"C* = expected Pmax {expected or 0:.0f} kW / {over:g}"
                   + (" (given)" if expected_pmax_kw is not None else " (the largest of the last 3 months)"),
                   f"capacity upgrade advised when Pmax > {share_kva:.0%} of kVA for {months} months running"]
    return DemandAdvice(
        currency=tariff.currency, pmax_kw=pmax, pmax_window_start=at, limit_kw=limit,
        demand_beats_capacity_below_kw=bc.break_even_pmax_kw, share_of_limit=share,
        levels_reached=levels, charges=charges, current_mode=contract.basic_charge_mode, cheapest_mode=cheapest,
        saving_by_switching=max(0.0, current_charge - charges[cheapest]),
        recommended_contract_kw=c_star, recommended_contract_charge=c_star_charge,
        saving_by_recommended_contract=max(0.0, current_charge - c_star_charge) if c_star_charge is not None else 0.0,
        upgrade_advised=upgrade,
        upgrade_reason=(f"Pmax above {share_kva:.0%} of {contract.transformer_kva:g} kVA for {months} months: "
                        + ", ".join(f"{p:.0f}" for p in recent) + " kW") if upgrade else None,
        evidence=evidence(frame, "15-min demand (kWh x 4) of the month to date", assumptions),
    )


class PfAdvice(BaseModel):
    """Monthly PF, the adjustment and its money, the capacitor bank that reaches the target, and its payback."""

    currency: str
    kwh: float
    kvarh: float
    pf: float | None
    standard: float
    adjustment_pct: float | None
    adjustment_money: float | None  # per month; positive: a surcharge, negative: a reward
    target_pf: float
    design_kw: float | None
    capacitor_kvar: float | None
    capacitor_cost: float | None
    money_per_month: float  # surcharge avoided (or reward gained) at the target PF
    payback_months: float | None
    evidence: Evidence


def pf_advice(frame: pd.DataFrame, contract: ContractInputs, tariff: Tariff, target_pf: float | None = None,
              basic_charge: float | None = None) -> PfAdvice:
    """PF adjustment on basic + energy charge (not government funds); capacitor Q = P (tan phi1 - tan phi2)."""
    idx = check_frame(frame, "PF advice", ("kwh", "kvarh"))
    cfg = settings()["power_factor"]
    target = target_pf if target_pf is not None else float(cfg["target_pf"])
    kwh, kvarh = float(frame["kwh"].sum()), float(frame["kvarh"].sum())
    months = months_covered(idx)
    prices = tariff.price_table(idx)["price"].to_numpy()
    energy = float(np.nansum(frame["kwh"].to_numpy(dtype=float) * prices)) / months  # a month's energy charge
    kw = kw_of(frame).dropna()
    design = float(kw.quantile(float(cfg["design_power_quantile"]))) if len(kw) else None
    if basic_charge is None:
        version = tariff.version_at(pd.DatetimeIndex(frame.index)[-1].date())
        bc = basic_charges(version, contract.transformer_kva, float(kw.max()) if len(kw) else 0.0,
                           contract.contract_demand_kw, contract.hv_motors_kw)
        basic_charge = {"capacity": bc.capacity, "max_demand": bc.demand}.get(contract.basic_charge_mode,
                                                                             bc.contract or bc.demand)
    base = energy + basic_charge
    pf = monthly_pf(kwh, kvarh) if kwh > 0 else None
    pct = pf_adjustment_pct(pf, contract.pf_standard) if pf is not None else None
    money = base * pct / 100 if pct is not None else None
    at_target = base * pf_adjustment_pct(target, contract.pf_standard) / 100
    gain = (money - at_target) if money is not None else 0.0
    q = capacitor_kvar(design, pf, target) if design and pf is not None and 0 < pf < target else None
    cost = q * float(cfg["capacitor_cost_per_kvar"]) if q else None
    return PfAdvice(
        currency=tariff.currency, kwh=kwh, kvarh=kvarh, pf=pf, standard=contract.pf_standard, adjustment_pct=pct,
        adjustment_money=money, target_pf=target, design_kw=design, capacitor_kvar=q, capacitor_cost=cost,
        money_per_month=max(0.0, gain), payback_months=cost / gain if cost and gain > 0 else None,
        evidence=evidence(frame, "month's kWh and kvarh", [
            f"sizing power P = {cfg['design_power_quantile']:.0%} quantile of 15-min kW",
            f"capacitor cost {cfg['capacitor_cost_per_kvar']} {tariff.currency}/kvar installed",
            "adjustment applied to basic + energy charge, not government funds",
            f"energy charge scaled to a month from {len(idx) / 96:g} days of data"]),
    )


