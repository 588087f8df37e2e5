"""Service 8: saving advice ranked by money, gathered from the other services with their evidence."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from pydantic import BaseModel

from crm_bridge.services.curves import TouAdvice, load_curve_card, tou_advice
from crm_bridge.services.demand import DemandAdvice, PfAdvice, demand_advice, pf_advice
from crm_bridge.services.inputs import ContractInputs, Evidence, check_frame, months_covered, production_hours
from crm_bridge.services.usage import (
    BaseLoad,
    BillForecast,
    EnergyPerformance,
    base_load,
    bill_forecast,
    energy_performance,
    off_hours_mask,
)
from crm_bridge.tariffs import Tariff, load_tariff
from crm_bridge.tariffs.bill import local_zone


class AdviceItem(BaseModel):
    """One thing the customer can do, what it is worth, and what that figure stands on."""

    kind: str
    title: str  # in English; `text_key` and `params` give it in the reader's language
    money_per_month: float
    money_per_year: float
    currency: str
    evidence: Evidence
    assumptions: list[str]
    text_key: str | None = None
    params: dict[str, Any] = {}


def _item(kind: str, title: str, per_month: float, currency: str, ev: Evidence, extra: list[str],
          key: str | None = None, **params: Any) -> AdviceItem:
    return AdviceItem(kind=kind, title=title, money_per_month=round(per_month, 2),
                      money_per_year=round(12 * per_month, 2), currency=currency, evidence=ev,
                      assumptions=[*ev.assumptions, *extra], text_key=key or f"advice_{kind}", params=params)


def saving_advice(tou: TouAdvice | None = None, demand: DemandAdvice | None = None, pf: PfAdvice | None = None,
                  base: BaseLoad | None = None, months_of_data: float = 1.0,
                  energy: EnergyPerformance | None = None, price_per_kwh: float | None = None,
                  hours_from_plan: bool = False) -> list[AdviceItem]:
    """Advice items from whichever results are given, largest money first; items worth nothing are left out.

    `months_of_data` turns the TOU result (money over its data period) into money per month; `price_per_kwh`
    prices the energy-performance gap (last month's kWh above the baseline); `hours_from_plan`: the base load's
    off-hours came from the production plan's shifts (its text says so).
    """
    items: list[AdviceItem] = []
    per = max(months_of_data, 1e-9)
    if tou is not None and tou.saving > 0:
        items.append(_item("load_shift", f"Move {tou.shift_kwh / per:,.0f} kWh a month from {tou.shift_from} to "
                           f"{tou.shift_to}", tou.saving / per, tou.currency, tou.evidence,
                           ["next months like this one"], kwh=tou.shift_kwh / per, band_from=tou.shift_from,
                           band_to=tou.shift_to))
    if demand is not None:
        switch, c_star = demand.saving_by_switching, demand.saving_by_recommended_contract
        if switch > 0 and switch >= c_star:
            other = [f"alternative: contract demand {demand.recommended_contract_kw:,.0f} kW saves {c_star:,.0f}"
                     ] if c_star > 0 else []
            items.append(_item("basic_charge_mode", f"Bill the basic charge by {demand.cheapest_mode} instead of "
                               f"{demand.current_mode}", switch, demand.currency,
                               demand.evidence, ["next months peak like this one", *other],
                               mode_from=demand.current_mode, mode_to=demand.cheapest_mode))
        elif c_star > 0 and demand.recommended_contract_kw is not None:
            other = [f"alternative: billing by {demand.cheapest_mode} saves {switch:,.0f}"] if switch > 0 else []
            why = ("C* = expected Pmax / 1.05" if demand.recommended_contract_kw > demand.contract_floor_kw
                   else f"the lowest allowed: the floor of {demand.contract_floor_kw:,.0f} kW")
            items.append(_item("contract_demand", f"Bill by a contract demand of {demand.recommended_contract_kw:,.0f}"
                               f" kW ({why})", c_star, demand.currency, demand.evidence,
                               ["next months peak like this one", *other], kw=demand.recommended_contract_kw))
        if demand.upgrade_advised and demand.upgrade_reason:
            items.append(_item("capacity_upgrade", f"Plan a transformer capacity upgrade: {demand.upgrade_reason}",
                               0.0, demand.currency, demand.evidence, ["a safety and reliability item, not a saving"],
                               reason=demand.upgrade_reason))
    if pf is not None and pf.money_per_month > 0:
        q = f"{pf.capacitor_kvar:,.0f} kvar" if pf.capacitor_kvar else "compensation"
        payback = f", payback {pf.payback_months:.1f} months" if pf.payback_months else ""
        items.append(_item("power_factor", f"Install {q} to reach PF {pf.target_pf}{payback}", pf.money_per_month,
                           pf.currency, pf.evidence, [],
                           "advice_power_factor" if pf.capacitor_kvar else "advice_power_factor_any",
                           kvar=pf.capacitor_kvar, pf=pf.target_pf, payback_months=pf.payback_months))
    if base is not None and base.money_per_month > 0:
        where = "outside the plan's shifts" if hours_from_plan else "off-hours"
        items.append(_item("base_load", f"Cut {base.cut_kw:,.0f} kW of {where} base load "
                           f"({base.base_kw or 0:,.0f} kW now)", base.money_per_month, base.currency, base.evidence,
                           [], "advice_base_load_plan" if hours_from_plan else "advice_base_load", cut=base.cut_kw,
                           now=base.base_kw or 0.0))
    if energy is not None and energy.valid and price_per_kwh:
        gaps = [(m, g) for m, g in zip(energy.months, energy.savings_kwh, strict=True) if g is not None]
        if gaps and gaps[-1][1] < 0:
            month, gap = gaps[-1]
            items.append(_item("energy_performance", f"{month} used {-gap:,.0f} kWh more than the ISO 50006 "
                               f"baseline predicts for its output (CUSUM {energy.cusum_kwh[-1] or 0:,.0f} kWh): "
                               "find what changed", -gap * price_per_kwh, energy.currency, energy.evidence,
                               [f"priced at the average {price_per_kwh:.3f} per kWh"], month=month, kwh=-gap))
    return sorted(items, key=lambda i: (-i.money_per_month, i.kind))


def run_all(month: pd.DataFrame, contract: ContractInputs, tariff: Tariff | None = None,
            as_of: datetime | None = None, forecast: pd.DataFrame | None = None,
            monthly_pmax_kw: Sequence[float | None] | None = None, operating: pd.Series | None = None,
            monthly: pd.DataFrame | None = None, next_output: float | None = None,
            plan: pd.DataFrame | None = None) -> dict[str, Any]:
    """Every service on one local month of 15-min data (the card for its last full day), keyed by service.

    Keys: card, tou, demand, pf, base_load, bill, advice; plus energy_performance when `monthly` (one row per
    month: kwh, output) is given, whose next month is priced at this month's average energy price. The frame is
    taken on the customer's clock (contract.timezone, else the tariff's). `monthly_pmax_kw`: the peak demand of
    each earlier month, oldest first, up to the month before (see demand_advice): the capacity-upgrade advice
    needs them. `plan`: the customer's production plan (forecasting.plan_from_frame's rows): when given (and no
    `operating`), the base load's off-hours are outside the plan's shifts, the shift calendar only where the plan
    says nothing; its evidence says which was used.
    """
    check_frame(month, "services", ("kwh", "kvarh"))
    tariff = tariff or load_tariff(contract.tariff_id)
    zone = local_zone(tariff, contract)
    month = month.set_axis(tariff.to_local(pd.DatetimeIndex(month.index), zone))
    idx = pd.DatetimeIndex(month.index)
    days = pd.DatetimeIndex(idx.normalize()).unique()
    last_day = days[-1] if len(days) == 1 else days[-2] if (idx.normalize() == days[-1]).sum() < 92 else days[-1]
    card = load_curve_card(month[idx.normalize() == last_day], tariff, tz=zone)
    tou = tou_advice(month, tariff, tz=zone)
    demand = demand_advice(month, contract, tariff, monthly_pmax_kw)
    pf = pf_advice(month, contract, tariff)
    from_plan = False
    hours = None
    if operating is None and plan is not None:
        hours = production_hours(idx, plan, off_hours_mask(idx))
        operating, from_plan = hours.producing, hours.source != "calendar"
    base = base_load(month, tariff, operating, tz=zone)
    if hours is not None and from_plan:
        said = [hours.assumption, *(a for a in base.evidence.assumptions if not a.startswith("off-hours from"))]
        base = base.model_copy(update={"evidence": base.evidence.model_copy(update={"assumptions": said})})
    bill: BillForecast = bill_forecast(month, contract, tariff, as_of or (idx[-1] + pd.Timedelta(minutes=15)),
                                       forecast)
    months = months_covered(idx)
    price = tou.total_cost / tou.total_kwh if tou.total_kwh else None
    out: dict[str, Any] = {"card": card, "tou": tou, "demand": demand, "pf": pf, "base_load": base, "bill": bill}
    energy = None
    if monthly is not None:
        energy = energy_performance(monthly, next_output=next_output, price_per_kwh=price, currency=tariff.currency)
        out["energy_performance"] = energy
    out["advice"] = saving_advice(tou, demand, pf, base, months_of_data=months, energy=energy, price_per_kwh=price,
                                  hours_from_plan=from_plan)
    return out
