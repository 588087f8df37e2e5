"""Customers' own limits (kW demand, daily kWh, PF floor, bill to date), stored in the registry, checked by the job."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from crm_bridge.alerts.rules import Finding
from crm_bridge.registry.models import CustomerAlertRule
from crm_bridge.tariffs import monthly_pf

LIMITS = ("kw_demand", "daily_kwh", "pf_floor", "bill_to_date")
_Q = timedelta(minutes=15)


def rules_of(session: Session, customer: str) -> list[CustomerAlertRule]:
    """The customer's rules, the whole account's first, then by site."""
    rows = session.scalars(select(CustomerAlertRule).where(CustomerAlertRule.customer_code == customer))
    return sorted(rows, key=lambda r: (r.site_code is not None, r.site_code or ""))


def replace_rules(session: Session, customer: str, rules: Sequence[dict[str, Any]], by: str, now: datetime) -> None:
    """Replace every rule of `customer` by `rules` (dicts: `site` and LIMITS); a rule without limits is left out."""
    session.execute(delete(CustomerAlertRule).where(CustomerAlertRule.customer_code == customer))
    for r in rules:
        if all(r.get(k) is None for k in LIMITS):
            continue
        session.add(CustomerAlertRule(customer_code=customer, site_code=r.get("site"), updated_by=by, updated_at=now,
                                      **{k: r.get(k) for k in LIMITS}))
    session.flush()


def own_limits(frame: pd.DataFrame, customer: str, rule: CustomerAlertRule, day_start: datetime,
               bill_to_date: float | None, currency: str) -> list[Finding]:
    """Findings of type threshold_* for every limit of `rule` that the month-to-date `frame` crosses.

    kW demand: the newest interval with energy; daily kWh: the local day so far (from `day_start`); PF: the month
    so far, as billed; bill: `bill_to_date`, the month-to-date energy cost the caller priced.
    """
    where = rule.site_code or customer
    scope = f"{customer}:{rule.site_code or '*'}"
    ok = frame[~frame["missing"]]
    out: list[Finding] = []
    if ok.empty:
        return out
    t0 = ok.index[0].to_pydatetime()
    end = ok.index[-1].to_pydatetime() + _Q
    if rule.kw_demand is not None:
        t, kw = ok.index[-1].to_pydatetime(), float(ok["kw"].iloc[-1])
        if kw > rule.kw_demand:
            out.append(Finding(
                key=f"threshold_kw:{scope}", type="threshold_kw", severity="warning", window_start=t,
                window_end=t + _Q, text_key="alert_threshold_kw",
                params={"where": where, "value": kw, "limit": rule.kw_demand, "at": t.isoformat()},
                message=f"{where}: demand {kw:,.1f} kW in the interval starting {t:%Y-%m-%d %H:%M} exceeds your "
                        f"limit of {rule.kw_demand:,.1f} kW"))
    if rule.daily_kwh is not None:
        today = ok[ok.index >= pd.Timestamp(day_start)]
        kwh = float(today["kwh"].sum())
        if kwh > rule.daily_kwh:
            out.append(Finding(
                key=f"threshold_daily_kwh:{scope}:{day_start:%Y-%m-%d}", type="threshold_daily_kwh",
                severity="warning", window_start=day_start, window_end=end, text_key="alert_threshold_daily_kwh",
                params={"where": where, "value": kwh, "limit": rule.daily_kwh, "day": f"{day_start:%Y-%m-%d}"},
                message=f"{where}: {kwh:,.0f} kWh so far on {day_start:%Y-%m-%d} exceeds your daily limit of "
                        f"{rule.daily_kwh:,.0f} kWh"))
    if rule.pf_floor is not None:
        both = ok[ok["kvarh"].notna()]
        kwh, kvarh = float(both["kwh"].sum()), float(both["kvarh"].sum())
        pf = monthly_pf(kwh, kvarh) if kwh > 0 else None
        if pf is not None and pf < rule.pf_floor:
            out.append(Finding(
                key=f"threshold_pf:{scope}:{t0:%Y-%m}", type="threshold_pf", severity="warning", window_start=t0,
                window_end=end, text_key="alert_threshold_pf",
                params={"where": where, "value": pf, "limit": rule.pf_floor},
                message=f"{where}: month-to-date power factor {pf:.2f} is below your floor of {rule.pf_floor:.2f}"))
    if rule.bill_to_date is not None and bill_to_date is not None and bill_to_date > rule.bill_to_date:
        out.append(Finding(
            key=f"threshold_bill:{scope}:{t0:%Y-%m}", type="threshold_bill", severity="warning", window_start=t0,
            window_end=end, text_key="alert_threshold_bill",
            params={"where": where, "value": bill_to_date, "limit": rule.bill_to_date, "currency": currency},
            message=f"{where}: energy cost so far this month {bill_to_date:,.0f} {currency} exceeds your ceiling of "
                    f"{rule.bill_to_date:,.0f} {currency}"))
    return out
