"""The alert job: `evaluate_alerts(session, source, now)` runs every rule for every contracted customer."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_bridge.alerts.engine import mark_period_once, raise_alert
from crm_bridge.alerts.own_rules import own_limits, rules_of
from crm_bridge.alerts.rules import (
    Finding,
    base_load_rise,
    budget_exceeded,
    consumption_change,
    data_gap,
    demand_watch,
    meter_offline,
    pf_below_standard,
    threshold,
)
from crm_bridge.errors import CrmError, TariffNotInForce
from crm_bridge.ports import IntervalSource
from crm_bridge.registry.models import Contract, Customer, MeterAssignment, Site, TariffVersion, TierRecord
from crm_bridge.registry.performance_models import EnergyBudget
from crm_bridge.registry.repo import meters_of_customer
from crm_bridge.tariffs import Tariff, available_tariffs, effective_contract_kw, load_tariff

if TYPE_CHECKING:
    from crm_bridge.services.allocation import Allocation

log = logging.getLogger(__name__)
# (customer code, its time zone) -> its production plan (forecasting.plan_from_frame's rows), None without one:
# the gateway reads `forecast.plans_dir`; the base-load rule takes its idle hours from the plan's shifts.
PlanSource = Callable[[str, str], pd.DataFrame | None]


class AlertSettings(BaseModel):
    """Alert job settings (per-customer kW/kWh thresholds, windows, sensitivities)."""

    model_config = ConfigDict(extra="forbid")
    kw_thresholds: dict[str, float] = Field(default_factory=dict, description="customer code -> kW limit")
    kwh_thresholds: dict[str, float] = Field(default_factory=dict, description="customer code -> kWh/15 min limit")
    delivery_start: time = time(8, 0)
    delivery_end: time = time(20, 0)
    gap_intervals: int = Field(4, ge=1, description="consecutive missing intervals that make a data-gap alert")
    offline_after: timedelta = Field(timedelta(hours=1), description="no good reading for this long = offline")
    base_load_rise: float = Field(0.2, gt=0)
    night_hours: tuple[int, int] = (0, 5)
    key_account_change: float = Field(0.3, gt=0)


def _month_start(now_local: datetime) -> datetime:
    return now_local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _shipped_tariff(tariff_id: str) -> Tariff | None:
    return load_tariff(tariff_id) if tariff_id in available_tariffs() else None


def _bill_forecast(session: Session, contract: Contract, frame: pd.DataFrame, now_local: datetime) -> float | None:
    """The month's bill forecast: the services' TOU-priced forecast when the contract names a shipped tariff.

    For a tariff kept only in the registry (a document with `average_price_per_kwh`), the month-to-date energy cost
    at that average price, extrapolated to the month, plus basic charge. None if neither gives a price.
    """
    from crm_bridge.services import ContractInputs, bill_forecast

    tariff = _shipped_tariff(contract.tariff_id)
    if tariff is not None and frame["kwh"].notna().any():
        try:
            terms = ContractInputs.from_contract(contract, timezone=str(now_local.tzinfo))
            return bill_forecast(frame, terms, tariff, now_local).total
        except CrmError as exc:  # a tariff that does not cover the month, a contract or frame the service refuses
            log.warning("bill forecast for %s by tariff %s failed (%s); using the registry's document",
                        contract.customer.code, contract.tariff_id, exc)
    tv = session.scalar(
        select(TariffVersion)
        .where(TariffVersion.tariff_id == contract.tariff_id, TariffVersion.valid_from <= now_local.date())
        .order_by(TariffVersion.valid_from.desc())
    )
    if tv is None or "average_price_per_kwh" not in tv.document:
        return None
    price = float(tv.document["average_price_per_kwh"])
    basic = float(tv.document.get("demand_price_per_kw_month", 0.0)) * effective_contract_kw(
        contract.contract_demand_kw, contract.transformer_kva, contract.hv_motors_kw or 0.0)
    start = _month_start(now_local)
    next_month = (start + timedelta(days=32)).replace(day=1)
    elapsed = (now_local - start) / (next_month - start)
    if elapsed <= 0:
        return None
    return float(frame["kwh"].sum()) * price / elapsed + basic


# The month's bill projection the bill-threshold and budget rules compare; the budgets view shows the same figure.
bill_projection = _bill_forecast


def evaluate_alerts(
    session: Session, source: IntervalSource, now: datetime, settings: AlertSettings | None = None,
    plans: PlanSource | None = None,
) -> list[int]:
    """Evaluate every rule for every customer with a contract; returns the ids of alerts opened now.

    `plans`: each customer's production plan, for the base-load rule's idle hours (without: `night_hours`).
    """
    if now.tzinfo is None:
        raise ValueError("evaluate_alerts: `now` must be timezone-aware")
    cfg = settings or AlertSettings()
    opened: list[int] = []
    for customer in session.scalars(select(Customer).order_by(Customer.code)):
        try:
            findings = _evaluate_customer(session, source, customer, now, cfg, plans)
        except Exception:  # one customer's bad data must not stop the others
            log.exception("alert evaluation failed for customer %s", customer.code)
            continue
        for f in findings:
            alert = raise_alert(
                session, key=f.key, type=f.type, severity=f.severity, customer_code=customer.code, meter_code=f.meter,
                window_start=f.window_start, window_end=f.window_end, message=f.message, now=now,
                text_key=f.text_key, params=f.params,
            )
            if alert is not None:
                opened.append(alert.id)
    session.commit()
    return opened


def _evaluate_customer(
    session: Session, source: IntervalSource, customer: Customer, now: datetime, cfg: AlertSettings,
    plans: PlanSource | None = None,
) -> list[Finding]:
    tz = ZoneInfo(customer.timezone)
    now_local = now.astimezone(tz)
    end = now_local.replace(minute=now_local.minute - now_local.minute % 15, second=0, microsecond=0)
    month = _month_start(now_local)
    period = f"{month:%Y-%m}"
    code = customer.code
    out: list[Finding] = []
    mtd = source.customer_intervals(code, month, end) if end > month else None
    contract = customer.contract
    if mtd is not None and not mtd.empty:
        if contract is not None:
            tariff = _shipped_tariff(contract.tariff_id)
            version = None
            if tariff is not None:
                try:
                    version = tariff.version_at(now_local.date())
                except TariffNotInForce:
                    log.warning("tariff %s of %s is not in force on %s: the demand watch uses the national rules",
                                tariff.id, code, now_local.date())
            out += demand_watch(mtd, code, period, contract.contract_demand_kw, contract.transformer_kva,
                                contract.hv_motors_kw or 0.0, version)
            out += pf_below_standard(mtd, code, period, contract.pf_standard)
            out += _bill_rule(session, contract, mtd, now_local, period, cfg)
            out += _budget_rule(session, contract, mtd, now_local, period, cfg, source)
    if mtd is not None and not mtd.empty:
        out += _own_rules(session, source, customer, mtd, month, end, now_local)
        if code in cfg.kw_thresholds:
            out += threshold(mtd, code, "kw", cfg.kw_thresholds[code])
        if code in cfg.kwh_thresholds:
            out += threshold(mtd, code, "kwh", cfg.kwh_thresholds[code])
    for meter in meters_of_customer(session, code, now_local.date()):
        recent = source.meter_intervals(meter.code, end - timedelta(hours=24), end)
        out += data_gap(recent, meter.code, code, cfg.gap_intervals)
        out += meter_offline(meter.code, code, source.meter_last_seen(meter.code), now, cfg.offline_after)
    day = end.replace(hour=0, minute=0)
    hist = source.customer_intervals(code, day - timedelta(days=29), day)
    plan = plans(code, customer.timezone) if plans is not None else None
    try:
        out += base_load_rise(hist, code, range(*cfg.night_hours), cfg.base_load_rise, plan)
    except CrmError as exc:  # a bad [shift_hours] table: the other rules' findings still count
        log.error("base-load rule for %s: %s", code, exc)
    tier = session.get(TierRecord, customer.id)
    if tier is not None and tier.effective == "A":
        week = source.customer_intervals(code, day - timedelta(days=7), day)
        ly = source.customer_intervals(code, day - timedelta(days=371), day - timedelta(days=364))
        if not week["missing"].any() and not ly["missing"].any():
            out += consumption_change(float(week["kwh"].sum()), float(ly["kwh"].sum()), code,
                                      cfg.key_account_change, day - timedelta(days=7), day)
    return out


def _bill_rule(
    session: Session, contract: Contract, mtd: pd.DataFrame, now_local: datetime, period: str, cfg: AlertSettings
) -> list[Finding]:
    if contract.bill_threshold is None:
        return []
    if not cfg.delivery_start <= now_local.time() < cfg.delivery_end:
        return []
    forecast = _bill_forecast(session, contract, mtd, now_local)
    if forecast is None or forecast <= contract.bill_threshold:
        return []
    code = contract.customer.code
    if not mark_period_once(session, "bill_forecast", code, period):
        return []
    return [Finding(
        key=f"bill:{code}:{period}", type="bill_forecast", severity="warning",
        window_start=mtd.index[0].to_pydatetime(), window_end=now_local,
        text_key="alert_bill_forecast", params={"value": forecast, "limit": contract.bill_threshold, "month": period},
        message=(f"{code}: forecast bill {forecast:,.0f} for {period} exceeds the threshold "
                 f"{contract.bill_threshold:,.0f}"),
    )]


def _budget_rule(
    session: Session, contract: Contract, mtd: pd.DataFrame, now_local: datetime, period: str, cfg: AlertSettings,
    source: IntervalSource | None = None,
) -> list[Finding]:
    """The month's budgets (crm_bridge.registry.performance_models) against the bill forecast, each once a month.

    The account's budget against the account's forecast; a cost centre's budget against the forecast times the cost
    centre's share of the month-to-date allocation (cost_centre_projections; needs `source` for its meters).
    """
    code = contract.customer.code
    budgets = list(session.scalars(select(EnergyBudget).where(
        EnergyBudget.customer_code == code, EnergyBudget.month == period).order_by(EnergyBudget.cost_centre)))
    if not budgets or not cfg.delivery_start <= now_local.time() < cfg.delivery_end:
        return []
    tariff = _shipped_tariff(contract.tariff_id)
    compared = []
    for budget in budgets:
        if tariff is not None and tariff.currency != budget.currency:
            log.warning("budget of %s %s for %s is in %s, its bill in %s: not compared", code,
                        budget.cost_centre or "(account)", period, budget.currency, tariff.currency)
            continue
        compared.append(budget)
    if not compared:
        return []
    forecast = _bill_forecast(session, contract, mtd, now_local)
    if forecast is None:
        return []
    start = mtd.index[0].to_pydatetime()
    out: list[Finding] = []
    account = next((b for b in compared if not b.cost_centre), None)
    if account is not None and forecast > float(account.amount) and mark_period_once(session, "budget", code, period):
        out += budget_exceeded(forecast, float(account.amount), account.currency, code, period, start, now_local)
    centres = [b for b in compared if b.cost_centre]
    if not centres or source is None:
        return out
    projections = cost_centre_projections(session, source, contract, mtd, now_local, forecast)
    for budget in centres:
        found = projections.get(budget.cost_centre)
        if found is None or found[1] <= budget.amount:
            continue
        if not mark_period_once(session, _centre_mark(budget.cost_centre), code, period):
            continue
        share, projected = found
        out += budget_exceeded(float(projected), float(budget.amount), budget.currency, code, period, start,
                               now_local, cost_centre=budget.cost_centre, share=float(share))
    return out


def _centre_mark(cost_centre: str) -> str:
    """The once-a-month mark's rule name of a cost centre's budget (a digest: codes may be longer than the column)."""
    return "budget_cc:" + hashlib.sha256(cost_centre.encode()).hexdigest()[:24]


def cost_centre_allocation(session: Session, source: IntervalSource, contract: Contract, mtd: pd.DataFrame,
                           now_local: datetime) -> Allocation | None:
    """The month-to-date bill of the account split over its cost centres.

    Assembled as the gateway's allocation of a month is (crm_bridge.services.allocation_setup): the month bill of the
    intervals so far, its priced rows, the registry's cost centres and the rule in force, each formula meter's
    intervals. None without cost centres or a shipped tariff, or when the split refuses its inputs (logged).
    """
    from crm_bridge.services import ContractInputs
    from crm_bridge.services.allocation_setup import allocate_month, setup_of
    from crm_bridge.tariffs.bill import month_bill, priced_intervals, priced_rows

    customer = contract.customer
    tariff = _shipped_tariff(contract.tariff_id)
    first = now_local.date().replace(day=1)
    zone = now_local.tzinfo
    if tariff is None or mtd.empty or zone is None:
        return None
    try:
        setup = setup_of(session, customer.id, first)
        if not setup.centres:
            return None
        terms = ContractInputs.from_contract(contract, timezone=str(zone))
        bill = month_bill(mtd, terms, tariff, first, tz=zone, now=now_local)
        rows = priced_rows(bill)
        if rows is None:
            rows = priced_intervals(mtd, tariff, first, tz=zone, now=now_local)
        return allocate_month(setup, bill, rows, first, zone, now_local, source.meter_intervals)
    except (CrmError, InvalidOperation, ValueError) as exc:
        log.warning("month-to-date allocation of %s failed (%s): no cost-centre projections", customer.code, exc)
        return None


def cost_centre_projections(session: Session, source: IntervalSource, contract: Contract, mtd: pd.DataFrame,
                            now_local: datetime, forecast: float) -> dict[str, tuple[Decimal, Decimal]]:
    """Cost-centre code -> (its share of the month-to-date allocation's total, `forecast` x that share to the cent).

    The share is the cost centre's allocated money so far over the allocation's total (exact Decimal); empty when
    there is no allocation or its total is zero.
    """
    alloc = cost_centre_allocation(session, source, contract, mtd, now_local)
    if alloc is None or alloc.total == 0:
        return {}
    account = Decimal(repr(float(forecast)))
    shares = {line.code: line.total / alloc.total for line in alloc.lines}
    return {code: (share, (account * share).quantize(Decimal("0.01"), ROUND_HALF_UP)) for code, share in shares.items()}


def _site_intervals(session: Session, source: IntervalSource, site: str, start: datetime, end: datetime,
                    on_day: date) -> pd.DataFrame | None:
    """The site's meters summed (an interval is missing when any meter's is, its status the worst); None without one.

    As the gateway's site series (gateway.query.Topology.meters_of): the site's billing meters, or its sub-meters
    when it has no billing meter, so a line's sub-meter is not counted twice.
    """
    from crm_bridge.tariffs.bill import RANK, RANK_NAMES

    assigned = session.scalars(
        select(MeterAssignment).join(Site, Site.id == MeterAssignment.site_id)
        .where(Site.code == site, MeterAssignment.valid_from <= on_day)
        .where((MeterAssignment.valid_to.is_(None)) | (MeterAssignment.valid_to > on_day))
    ).all()
    meters = sorted(a.meter.code for a in assigned if a.meter.billing) or sorted(a.meter.code for a in assigned)
    frames = [source.meter_intervals(m, start, end) for m in meters]
    if not frames:
        return None
    total = frames[0].copy()
    for f in frames[1:]:
        for col in ("kwh", "kvarh", "kw"):
            total[col] = total[col] + f[col]
        total["missing"] = total["missing"] | f["missing"]
        if "status" in total.columns and "status" in f.columns:
            worst = pd.concat([total["status"].map(RANK), f["status"].map(RANK)], axis=1).max(axis=1)
            total["status"] = RANK_NAMES[worst.to_numpy(dtype=int)]
    if len(frames) > 1 and "pf" in total.columns:
        apparent = (total["kwh"] ** 2 + total["kvarh"] ** 2) ** 0.5
        total["pf"] = (total["kwh"] / apparent).where(apparent > 0)
    return total


def _cost_to_date(session: Session, contract: Contract | None, frame: pd.DataFrame,
                  now_local: datetime) -> tuple[float | None, str]:
    """Month-to-date energy cost of `frame` and its currency, None without a price.

    The shipped tariff's TOU prices when the contract names one, else the registry document's average price.
    """
    if contract is None:
        return None, ""
    tariff = _shipped_tariff(contract.tariff_id)
    if tariff is not None and frame["kwh"].notna().any():
        from crm_bridge.services import ContractInputs, bill_forecast

        try:
            terms = ContractInputs.from_contract(contract, timezone=str(now_local.tzinfo))
            return bill_forecast(frame, terms, tariff, now_local).mtd_energy_cost, tariff.currency
        except CrmError as exc:
            log.warning("cost to date of %s by tariff %s failed (%s)", contract.customer.code, contract.tariff_id,
                        exc)
    tv = session.scalar(
        select(TariffVersion)
        .where(TariffVersion.tariff_id == contract.tariff_id, TariffVersion.valid_from <= now_local.date())
        .order_by(TariffVersion.valid_from.desc())
    )
    if tv is None or "average_price_per_kwh" not in tv.document:
        return None, ""
    return float(frame["kwh"].sum()) * float(tv.document["average_price_per_kwh"]), str(
        tv.document.get("currency", "CNY"))


def _own_rules(session: Session, source: IntervalSource, customer: Customer, mtd: pd.DataFrame, month: datetime,
               end: datetime, now_local: datetime) -> list[Finding]:
    """The customer's own limits (crm_bridge.alerts.own_rules), on the account or on each site it names."""
    out: list[Finding] = []
    day_start = now_local.replace(hour=0, minute=0, second=0, microsecond=0)
    for rule in rules_of(session, customer.code):
        frame = mtd if rule.site_code is None else _site_intervals(
            session, source, rule.site_code, month, end, now_local.date())
        if frame is None or frame.empty:
            continue
        cost, currency = (_cost_to_date(session, customer.contract, frame, now_local)
                          if rule.bill_to_date is not None else (None, ""))
        out += own_limits(frame, customer.code, rule, day_start, cost, currency)
    return out
