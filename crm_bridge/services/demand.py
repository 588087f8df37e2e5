"""Services 3 and 4: demand watch with the basic-charge advisor, and the PF adjustment estimator."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime

import pandas as pd
from pydantic import BaseModel

from crm_bridge.services.inputs import (
    ContractInputs,
    Evidence,
    ServiceError,
    bill_of,
    check_frame,
    evidence,
    kw_of,
    settings,
)
from crm_bridge.tariffs import (
    Tariff,
    capacitor_kvar,
    contract_charge,
    contract_floor_kw,
    effective_contract_kw,
    pf_adjustment_pct,
)
from crm_bridge.tariffs.contract import BasicChargeMode
from crm_bridge.tariffs.model import month_days


class DemandAdvice(BaseModel):
    """Month-to-date maximum demand against the contract, the three basic-charge modes, and capacity advice."""

    currency: str
    pmax_kw: float | None
    pmax_window_start: datetime | None
    contract_kw: float  # as agreed
    contract_floor_kw: float  # 40 % of transformer kVA + HV motor kW: no contract below it
    effective_contract_kw: float  # the contract, raised to the floor when set below it
    limit_kw: float  # 1.05 x the effective contract demand
    demand_beats_capacity_below_kw: float  # Pmax under which max-demand billing is cheaper than capacity
    share_of_limit: float | None
    levels_reached: list[float]  # of the limit, e.g. [0.9] or [0.9, 1.0]
    charges: dict[str, float]  # by BasicChargeMode: capacity, demand, contract (the month bill's figures)
    current_mode: str
    cheapest_mode: str
    saving_by_switching: float  # per month
    recommended_contract_kw: float | None  # C* = expected Pmax / 1.05, raised to the 40 % floor
    recommended_contract_charge: float | None  # contract-demand charge at C* for this month's Pmax
    saving_by_recommended_contract: float  # per month, against the current mode's charge
    upgrade_advised: bool
    upgrade_reason: str | None
    evidence: Evidence


def demand_advice(frame: pd.DataFrame, contract: ContractInputs, tariff: Tariff,
                  monthly_pmax_kw: Sequence[float | None] | None = None, expected_pmax_kw: float | None = None,
                  upgrade_share_of_kva: float | None = None, upgrade_months: int | None = None) -> DemandAdvice:
    """Demand watch and basic-charge advice for the one local month in `frame` (to date), from its month bill.

    `monthly_pmax_kw`: the peak demand (MonthBill.peak_kw) of each month before this one, oldest first and
    consecutive up to the month before; None for a month without data (it breaks a run). The caller reads them from
    the store (e.g. the month bills of the last `upgrade_months` - 1 months); without them the capacity-upgrade rule
    sees this month only and, with the default 3 months, never fires. The capacity-upgrade rule (share of kVA,
    months running) comes from the data file unless given here.
    """
    check_frame(frame, "demand advice")
    cfg = settings()["demand"]
    bill = bill_of(frame, contract, tariff, "demand advice")
    basic = bill.basic
    pmax, at = bill.peak_kw, bill.peak_at
    first = date.fromisoformat(f"{bill.month}-01")
    closing = tariff.version_at(bill.versions[-1].first_day)
    over = closing.contract_excess_threshold  # 1.05: demand above 1.05 C is billed twice
    limit = basic.demand_limit_kw
    share = pmax / limit
    levels = [float(lv) for lv in cfg["alert_levels"] if share >= lv]
    charges = {m.value: getattr(basic, m.value) for m in BasicChargeMode}
    history = [*(monthly_pmax_kw or []), pmax]
    earlier = [p for p in (monthly_pmax_kw or [])[-3:] if p is not None]
    expected = expected_pmax_kw if expected_pmax_kw is not None else max([*earlier, pmax])
    n_days = month_days(first)
    used = [(tariff.version_at(u.first_day), u.days / n_days) for u in bill.versions]
    kw_price = sum(v.basic_per_kw_month * w for v, w in used)
    kva_price = sum(v.basic_per_kva_month * w for v, w in used)
    c_star = c_star_charge = None
    if expected:
        c_star = effective_contract_kw(expected / over, contract.transformer_kva, contract.hv_motors_kw, closing)
        c_star_charge = sum(contract_charge(v, c_star, pmax, contract.transformer_kva, contract.hv_motors_kw) * w
                            for v, w in used)
    current_charge = basic.amount
    months = int(upgrade_months if upgrade_months is not None else cfg["upgrade_months"])
    share_kva = float(upgrade_share_of_kva if upgrade_share_of_kva is not None else cfg["upgrade_share_of_kva"])
    if months < 1 or not 0 < share_kva <= 2:
        raise ServiceError(f"demand advice: capacity-upgrade rule {share_kva:g} of kVA for {months} months is "
                           "impossible (share in (0, 2], at least 1 month)")
    recent = history[-months:]
    upgrade = len(recent) >= months and all(p is not None and p > share_kva * contract.transformer_kva
                                            for p in recent)
    floor_note = ""
    if basic.effective_contract_kw > basic.contract_kw:
        floor_note = (f" (the contract's {basic.contract_kw:g} kW raised to the floor of "
                      f"{closing.contract_floor_share_of_capacity:.0%} of {basic.capacity_kva:g} kVA + HV motor kW)")
    assumptions = [f"limit = {over:g} x contract demand {basic.effective_contract_kw:g} kW{floor_note}",
                   f"C* = expected Pmax {expected or 0:.0f} kW / {over:g}, at least the floor"
                   + (" (given)" if expected_pmax_kw is not None else " (the largest of the last 3 months)"),
                   f"capacity upgrade advised when Pmax > {share_kva:.0%} of kVA for {months} months running",
                   f"basic charges of {bill.month} by tariff {tariff.id}"
                   + (f", prorated over {len(bill.versions)} versions" if len(bill.versions) > 1 else "")]
    return DemandAdvice(
        currency=tariff.currency, pmax_kw=pmax, pmax_window_start=at, contract_kw=basic.contract_kw,
        contract_floor_kw=contract_floor_kw(contract.transformer_kva, contract.hv_motors_kw, closing),
        effective_contract_kw=basic.effective_contract_kw, limit_kw=limit,
        demand_beats_capacity_below_kw=kva_price / kw_price * basic.capacity_kva if kw_price else math.inf,
        share_of_limit=share, levels_reached=levels, charges=charges, current_mode=basic.mode.value,
        cheapest_mode=basic.cheapest.value, saving_by_switching=max(0.0, current_charge - charges[basic.cheapest]),
        recommended_contract_kw=c_star, recommended_contract_charge=c_star_charge,
        saving_by_recommended_contract=max(0.0, current_charge - c_star_charge) if c_star_charge is not None else 0.0,
        upgrade_advised=upgrade,
        upgrade_reason=(f"Pmax above {share_kva:.0%} of {contract.transformer_kva:g} kVA for {months} months: "
                        + ", ".join(f"{p:.0f}" for p in recent if p is not None) + " kW") if upgrade else None,
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
    """PF adjustment on basic + energy charge (not government funds); capacitor Q = P (tan phi1 - tan phi2).

    PF, its percentage, the energy charge and the basic charge are the month bill's for the one local month in
    `frame`; a month to date has its energy charge scaled to the whole month by elapsed time (pending intervals
    are not elapsed). `basic_charge` overrides the bill's basic charge in force.
    """
    check_frame(frame, "PF advice", ("kwh", "kvarh"))
    cfg = settings()["power_factor"]
    target = target_pf if target_pf is not None else float(cfg["target_pf"])
    bill = bill_of(frame, contract, tariff, "PF advice")
    counts = bill.intervals
    elapsed = counts.total - counts.pending
    energy = bill.energy_charge * counts.total / elapsed  # a month's energy charge
    has_energy = frame["kwh"].notna()
    kw = kw_of(frame)[has_energy].dropna()
    design = float(kw.quantile(float(cfg["design_power_quantile"]))) if len(kw) else None
    base = energy + (bill.basic_charge if basic_charge is None else basic_charge)
    pf, pct = bill.pf, bill.pf_adjustment_pct
    money = base * pct / 100 if pct is not None else None
    at_target = base * pf_adjustment_pct(target, contract.pf_standard) / 100
    gain = (money - at_target) if money is not None else 0.0
    q = capacitor_kvar(design, pf, target) if design and pf is not None and 0 < pf < target else None
    cost = q * float(cfg["capacitor_cost_per_kvar"]) if q else None
    return PfAdvice(
        currency=tariff.currency, kwh=bill.energy_kwh, kvarh=bill.kvarh or 0.0, pf=pf, standard=contract.pf_standard,
        adjustment_pct=pct, adjustment_money=money, target_pf=target, design_kw=design, capacitor_kvar=q,
        capacitor_cost=cost, money_per_month=max(0.0, gain), payback_months=cost / gain if cost and gain > 0 else None,
        evidence=evidence(frame, "month's kWh and kvarh", [
            f"sizing power P = {cfg['design_power_quantile']:.0%} quantile of 15-min kW",
            f"capacitor cost {cfg['capacitor_cost_per_kvar']} {tariff.currency}/kvar installed",
            "adjustment applied to basic + energy charge, not government funds",
            f"PF {pf} rounded half up to 0.01, table of standard {contract.pf_standard:.2f} (〔83〕水电财字第215号)",
            f"energy charge scaled to a month from {elapsed / 96:g} days of data"]),
    )
