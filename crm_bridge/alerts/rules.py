"""Alert rules as pure functions over 15-min interval frames; each returns findings, never touches the DB."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from crm_bridge.services.inputs import production_hours
from crm_bridge.tariffs import TariffVersion, effective_contract_kw, monthly_pf, peak_demand
from crm_bridge.tariffs.contract import excess_threshold


@dataclass(frozen=True)
class Finding:
    """A crossed condition: `key` identifies it for de-duplication while open.

    `message` is the English text (the API's); `text_key` and `params` are the same message for the portal's
    catalogue, so every reader gets it in their own language.
    """

    key: str
    type: str
    severity: str
    window_start: datetime
    window_end: datetime
    message: str
    meter: str | None = None
    text_key: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


_Q = timedelta(minutes=15)


def demand_watch(frame: pd.DataFrame, customer: str, period: str, contract_kw: float, transformer_kva: float,
                 hv_motors_kw: float = 0.0, version: TariffVersion | None = None) -> list[Finding]:
    """Month-to-date peak 15-min demand at >= 90 % / >= 100 % of 1.05 x the contract demand, naming the window.

    The contract is the effective one (raised to 40 % of transformer kVA + HV motor kW when set below it; the
    version's rules, else the national ones), the peak the month bill's (kWh x 4 of an interval with energy).
    """
    found = peak_demand(frame["kwh"])
    if found is None:
        return []
    pmax, t = found
    contract = effective_contract_kw(contract_kw, transformer_kva, hv_motors_kw, version)
    over = excess_threshold(version)
    limit = over * contract
    raised = f", the contract's {contract_kw:.0f} kW raised to its floor" if contract > contract_kw else ""
    out = []
    for level, sev in ((1.0, "critical"), (0.9, "warning")):
        if pmax >= level * limit:
            start = t.to_pydatetime()
            out.append(Finding(
                key=f"demand{int(level * 100)}:{customer}:{period}", type=f"demand_{int(level * 100)}", severity=sev,
                window_start=start, window_end=start + _Q,
                text_key="alert_demand_raised" if raised else "alert_demand",
                params={"value": pmax, "at": start.isoformat(), "share": pmax / limit, "factor": over,
                        "limit": limit, "contract": contract_kw},
                message=(f"{customer}: month-to-date demand {pmax:.0f} kW in the 15-min window starting "
                         f"{start:%Y-%m-%d %H:%M} is {pmax / limit:.0%} of {over:g} x contract demand "
                         f"({limit:.0f} kW{raised})"),
            ))
            break
    return out


def pf_below_standard(frame: pd.DataFrame, customer: str, period: str, standard: float) -> list[Finding]:
    """Month-to-date PF as billed (kWh and kvarh sums, rounded half up to 0.01) below the contract's PF standard."""
    ok = frame[frame["kwh"].notna() & frame["kvarh"].notna()]
    kwh, kvarh = float(ok["kwh"].sum()), float(ok["kvarh"].sum())
    if kwh <= 0:
        return []
    pf = monthly_pf(kwh, kvarh)
    if pf >= standard:
        return []
    return [Finding(
        key=f"pf:{customer}:{period}", type="pf_low", severity="warning",
        window_start=ok.index[0].to_pydatetime(), window_end=ok.index[-1].to_pydatetime() + _Q,
        text_key="alert_pf_low", params={"value": pf, "limit": standard},
        message=f"{customer}: month-to-date power factor {pf:.2f} is below the standard {standard:.2f}",
    )]


def threshold(frame: pd.DataFrame, customer: str, column: str, limit: float) -> list[Finding]:
    """The newest complete interval's `kw` or `kwh` above a customer's own threshold."""
    ok = frame[~frame["missing"]]
    if ok.empty:
        return []
    t, value = ok.index[-1], float(ok[column].iloc[-1])
    if value <= limit:
        return []
    start = t.to_pydatetime()
    return [Finding(
        key=f"threshold_{column}:{customer}", type=f"threshold_{column}", severity="warning",
        window_start=start, window_end=start + _Q,
        text_key=f"alert_threshold_{column}", params={"where": customer, "value": value, "limit": limit,
                                                      "at": start.isoformat()},
        message=f"{customer}: {column} {value:.1f} in the interval starting {start:%Y-%m-%d %H:%M} exceeds {limit:g}",
    )]


def data_gap(frame: pd.DataFrame, meter: str, customer: str, min_missing: int) -> list[Finding]:
    """A run of at least `min_missing` consecutive missing intervals ending at the newest interval."""
    missing = frame["missing"].to_numpy()
    run = 0
    for m in missing[::-1]:
        if not m:
            break
        run += 1
    if run < min_missing:
        return []
    start = frame.index[len(missing) - run].to_pydatetime()
    return [Finding(
        key=f"gap:{meter}", type="data_gap", severity="warning", meter=meter,
        window_start=start, window_end=frame.index[-1].to_pydatetime() + _Q,
        text_key="alert_data_gap", params={"meter": meter, "n": run, "at": start.isoformat()},
        message=f"{customer}: meter {meter} has no data for {run} intervals since {start:%Y-%m-%d %H:%M}",
    )]


def base_load_rise(frame: pd.DataFrame, customer: str, night_hours: range, rise: float,
                   plan: pd.DataFrame | None = None) -> list[Finding]:
    """Yesterday's base load (5th percentile kW of its idle intervals) more than `rise` above the 4-week median.

    Idle means outside production, read as the saving advice reads it (crm_bridge.services.inputs.production_hours):
    from the customer's production plan where it has rows for the days (`plan`, forecasting.plan_from_frame's rows;
    its shift counts, so a 3-shift day has no idle night), else the configured `night_hours`. A day without an idle
    interval has no base load: when yesterday is one (or its idle intervals are all missing) nothing is said.
    The finding says which basis it used (`basis`: plan, calendar or plan+calendar).
    """
    if frame.empty:
        return []
    idx = pd.DatetimeIndex(frame.index)
    hours = production_hours(idx, plan, idx.hour.isin(list(night_hours)))
    idle = ~hours.producing.to_numpy(dtype=bool)
    base = frame[~frame["missing"].to_numpy(dtype=bool) & idle]["kw"]
    if base.empty:
        return []
    daily = base.groupby(pd.DatetimeIndex(base.index).normalize()).quantile(0.05)
    if len(daily) < 8 or daily.index[-1] != idx[-1].normalize():
        return []
    last, ref = float(daily.iloc[-1]), float(daily.iloc[-29:-1].median())
    if ref <= 0 or last <= (1 + rise) * ref:
        return []
    day = daily.index[-1].to_pydatetime()
    night = f"{night_hours.start:02d}:00–{night_hours.stop:02d}:00"
    what = {"plan": "base load in the production plan's idle hours",
            "plan+calendar": f"base load in the production plan's idle hours (night {night} where it has no rows)",
            }.get(hours.source, f"night base load ({night})")
    return [Finding(
        key=f"baseload:{customer}", type="base_load_rise", severity="info",
        window_start=day, window_end=day + timedelta(days=1),
        text_key="alert_base_load_rise_plan" if hours.source == "plan" else "alert_base_load_rise_plan_night"
        if hours.source == "plan+calendar" else "alert_base_load_rise_night",
        params={"value": last, "share": last / ref - 1, "limit": ref, "basis": hours.source, "hours": night},
        message=f"{customer}: {what} {last:.1f} kW is {last / ref - 1:.0%} above its 4-week median {ref:.1f} kW",
    )]


def consumption_change(recent_kwh: float, reference_kwh: float, customer: str, change: float,
                       start: datetime, end: datetime) -> list[Finding]:
    """Key account: recent kWh falling or growing by more than `change` against last year's same days."""
    if reference_kwh <= 0:
        return []
    ratio = recent_kwh / reference_kwh - 1
    if abs(ratio) <= change:
        return []
    kind = "drop" if ratio < 0 else "growth"
    return [Finding(
        key=f"change_{kind}:{customer}", type=f"consumption_{kind}", severity="warning" if ratio < 0 else "info",
        window_start=start, window_end=end,
        text_key="alert_consumption_change", params={"value": recent_kwh, "share": ratio},
        message=f"{customer}: last 7 days {recent_kwh:.0f} kWh, {ratio:+.0%} against the same days last year",
    )]


def meter_offline(meter: str, customer: str, last_seen: datetime | None, now: datetime,
                  after: timedelta) -> list[Finding]:
    """No good reading from `meter` for longer than `after` (or never)."""
    if last_seen is not None and now - last_seen <= after:
        return []
    since = last_seen or now
    what = f"since {last_seen:%Y-%m-%d %H:%M %Z}" if last_seen else "never reported"
    return [Finding(
        key=f"offline:{meter}", type="meter_offline", severity="critical", meter=meter,
        window_start=since, window_end=now, message=f"{customer}: meter {meter} is offline ({what})",
        text_key="alert_meter_offline" if last_seen else "alert_meter_never",
        params={"meter": meter, "at": last_seen.isoformat() if last_seen else None},
    )]


def budget_exceeded(forecast: float, budget: float, currency: str, customer: str, period: str, start: datetime,
                    end: datetime, cost_centre: str | None = None, share: float | None = None) -> list[Finding]:
    """The month's bill forecast (the bill-threshold rule's projection) above the account's budget for the month.

    With `cost_centre`: that cost centre's projection (the account's forecast x `share`, its part of the
    month-to-date allocation) above its own budget; keyed per cost centre and period.
    """
    if forecast <= budget:
        return []
    if cost_centre is not None:
        return [Finding(
            key=f"budget:{customer}:{cost_centre}:{period}", type="budget_exceeded", severity="warning",
            window_start=start, window_end=end, text_key="alert_budget_exceeded_centre",
            params={"value": forecast, "limit": budget, "month": period, "currency": currency,
                    "centre": cost_centre, "share": share},
            message=(f"{customer}: cost centre {cost_centre}: projected bill {forecast:,.2f} {currency} for {period} "
                     f"(account forecast x its share so far {(share or 0.0):.1%}) exceeds its budget "
                     f"{budget:,.2f} {currency}"),
        )]
    return [Finding(
        key=f"budget:{customer}:{period}", type="budget_exceeded", severity="warning", window_start=start,
        window_end=end, text_key="alert_budget_exceeded",
        params={"value": forecast, "limit": budget, "month": period, "currency": currency},
        message=(f"{customer}: forecast bill {forecast:,.0f} {currency} for {period} exceeds the budget "
                 f"{budget:,.0f} {currency}"),
    )]
