"""One cost centre's view: its interval curve, month bill share, SEC per day and month, baseline and budget.

Every figure comes from its one place: the interval series is the cost centre's formula versions evaluated as the
allocation evaluates them (crm_bridge.services.allocation.meter_grids and evaluate: each interval by the version of
its local day, the worst input status, no energy where an input is missing or pending); the month bill share is the
cost centre's line of gateway.usecases.allocation.allocation; the baseline is crm_bridge.services.performance's
energy_performance; the budget and its projection are Performance.budgets' (the budget alert's figure).

SEC of a cost centre: production actuals whose `line` is the cost centre's code over the cost centre's energy. A day
with any interval not measured (estimated, missing or pending) is left out and counted, never filled; the month's SEC
is the whole days' kWh over their output (as the customer's), the model's months are whole months only.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_bridge.errors import CrmError
from crm_bridge.registry.performance_models import PerformanceSettings, ProductionDay
from crm_bridge.services.allocation import (
    RANK,
    CostCentreDef,
    MissingInput,
    _Days,
    evaluate,
)
from crm_bridge.services.allocation_setup import month_grids
from crm_bridge.services.performance import energy_performance
from crm_bridge.tariffs.bill import local_midnight, month_bounds
from crm_bridge.tariffs.model import next_month
from gateway.usecases import allocation as uc_alloc
from gateway.usecases.errors import BadInput, NotFound, UseCaseError
from gateway.usecases.figures import UseCases, _num, customer_config
from gateway.usecases.performance import Performance, month_of, months_between

Range = Literal["day", "week", "month"]
STATUS = ("measured", "estimated", "pending", "missing")  # by RANK value
_Q = pd.Timedelta(minutes=15)
BASELINE_MONTHS = 12  # without a baseline period on file: the 12 months up to the month asked


@dataclass
class Series:
    """A cost centre's 15-min intervals: kWh (NaN without energy), status rank, the versions used, inputs lacking."""

    index: pd.DatetimeIndex
    kwh: np.ndarray
    rank: np.ndarray
    formulas: list[str]
    missing: list[MissingInput]

    def cut(self, start: pd.Timestamp, end: pd.Timestamp) -> Series:
        sel = (self.index >= start) & (self.index < end)
        return Series(self.index[sel], self.kwh[sel], self.rank[sel], self.formulas,
                      [m for m in self.missing if start <= pd.Timestamp(m.last) and pd.Timestamp(m.first) < end])


def counts(rank: np.ndarray) -> dict[str, int]:
    return {name: int((rank == RANK[name]).sum()) for name in STATUS}


def known_kwh(s: Series) -> float | None:
    """The energy of the intervals that have it (None when none has): a sum that never fills a gap."""
    ok = np.isfinite(s.kwh)
    return float(s.kwh[ok].sum()) if ok.any() else None


class CostCentreView:
    """One request's view of a cost centre: the gateway's figures and a registry session; month series cached."""

    def __init__(self, v: UseCases, session: Session) -> None:
        self.v, self.s = v, session
        self._months: dict[tuple[str, str, date], Series] = {}

    def centre(self, customer: str, code: str, first: date) -> CostCentreDef:
        """The cost centre's definition (every formula version); NotFound naming the code."""
        centres = uc_alloc.setup(self.s, customer, first).centres
        found = next((c for c in centres if c.code == code), None)
        if found is None:
            raise NotFound(f"code: no cost centre {code!r} of customer {customer!r}", "code")
        return found

    def month_series(self, customer: str, cc: CostCentreDef, first: date, tz: ZoneInfo, now: datetime) -> Series:
        """The month's intervals of the cost centre, as the allocation evaluates them (same meters, same grid)."""
        key = (customer, cc.code, first)
        if key in self._months:
            return self._months[key]
        meters = sorted({m for v in cc.versions for m in v.formula.meters})
        uc_alloc.check_owned(self.v, customer, meters)
        start, end = month_bounds(first, tz)
        index = pd.date_range(start, end, freq="15min", inclusive="left")
        ended = np.asarray((index + _Q) <= pd.Timestamp(now))
        try:
            grids = month_grids(meters, first, tz, now, self.v.gw.query.meter_intervals)
            ev = evaluate(cc, _Days(index), grids, ended)
        except CrmError as exc:
            raise BadInput(f"cost centre {cc.code} {first:%Y-%m}: {exc}", "formula") from None
        rank = np.where(ended, ev.rank, np.maximum(ev.rank, RANK["pending"])).astype(np.int8)
        kwh = np.where(rank >= RANK["pending"], np.nan, ev.kwh)
        self._months[key] = Series(index, kwh, rank, ev.formulas, ev.missing)
        return self._months[key]

    def series(self, customer: str, cc: CostCentreDef, first_day: date, last_day: date, tz: ZoneInfo,
               now: datetime) -> Series:
        """The intervals of the local days [first_day, last_day], months evaluated one by one and joined."""
        parts = []
        m = first_day.replace(day=1)
        while m <= last_day:
            parts.append(self.month_series(customer, cc, m, tz, now))
            m = next_month(m)
        index = parts[0].index.append([p.index for p in parts[1:]]) if len(parts) > 1 else parts[0].index
        whole = Series(pd.DatetimeIndex(index), np.concatenate([p.kwh for p in parts]),
                       np.concatenate([p.rank for p in parts]), sorted({f for p in parts for f in p.formulas}),
                       [x for p in parts for x in p.missing])
        return whole.cut(local_midnight(first_day, tz), local_midnight(last_day + timedelta(days=1), tz))

    # -- the view ------------------------------------------------------------------------------------------------------

    def view(self, customer: str, code: str, first: date, range_: Range, day: date | None,
             money: bool) -> dict[str, Any]:
        """The whole view of cost centre `code` for the month `first` (see the module docstring)."""
        tz = ZoneInfo(customer_config(self.v.gw, customer).timezone)
        now = pd.Timestamp.now(tz="UTC").to_pydatetime()
        cc = self.centre(customer, code, first)
        today = now.astimezone(tz).date()
        if day is None:
            day = today if first <= today < next_month(first) else first
        if range_ == "month":
            span = (first, next_month(first) - timedelta(days=1))
        elif range_ == "week":
            monday = day - timedelta(days=day.weekday())
            span = (monday, monday + timedelta(days=6))
        else:
            span = (day, day)
        curve = self.series(customer, cc, span[0], span[1], tz, now)
        month = self.month_series(customer, cc, first, tz, now)
        return {
            "customer": customer, "code": cc.code, "name": cc.name, "kind": cc.kind, "timezone": str(tz),
            "month": f"{first:%Y-%m}",
            "formulas": [{"formula": v.formula.text, "valid_from": v.valid_from, "valid_to": v.valid_to}
                         for v in cc.versions],
            "curve": {"range": range_, "first": span[0], "last": span[1], "interval_minutes": 15,
                      "intervals": intervals(curve), "counts": counts(curve.rank), "kwh": _num(known_kwh(curve), 3),
                      "missing_inputs": [m.model_dump() for m in curve.missing]},
            "month_energy": {"kwh": _num(known_kwh(month), 3), "counts": counts(month.rank),
                             "formulas": month.formulas, "missing_inputs": [m.model_dump() for m in month.missing]},
            "share": self._share(customer, code, first, money),
            "sec": self._sec(customer, cc, first, tz, now),
            "budget": self._budget(customer, code, first, tz) if money else None,
        }

    def _share(self, customer: str, code: str, first: date, money: bool) -> dict[str, Any]:
        """The cost centre's line of the month's allocation (the same numbers); money only with `money`."""
        try:
            a = uc_alloc.allocation(self.v, customer, first)
        except UseCaseError as exc:
            return {"line": None, "reason": str(exc), "rule": None, "bill_kwh": None, "bill_total": None,
                    "currency": None, "share_of_total": None, "share_of_kwh": None}
        line = next((x for x in a.lines if x.code == code), None)
        if line is None:  # a cost centre added after the allocation was read: not in this month's split
            return {"line": None, "reason": f"no line for {code!r} in the allocation of {first:%Y-%m}", "rule": None,
                    "bill_kwh": None, "bill_total": None, "currency": None, "share_of_total": None,
                    "share_of_kwh": None}
        body = line.model_dump(mode="json")
        if not money:
            body.pop("money")
            body.pop("total")
        share_kwh = Decimal(repr(line.kwh)) / Decimal(repr(a.bill_kwh)) if a.bill_kwh else None
        return {"line": body, "reason": None, "rule": a.rule.value, "bill_kwh": a.bill_kwh,
                "bill_total": str(a.total) if money else None, "currency": a.currency if money else None,
                "share_of_total": str((line.total / a.total).quantize(Decimal("0.0001")))
                if money and a.total else None,
                "share_of_kwh": str(share_kwh.quantize(Decimal("0.0001"))) if share_kwh is not None else None,
                "missing_inputs": [m.model_dump(mode="json") for m in a.missing if m.cost_centre == code]}

    def _budget(self, customer: str, code: str, first: date, tz: ZoneInfo) -> dict[str, Any]:
        """The budget of the month for the cost centre with its projection: Performance.budgets' row and basis."""
        perf = Performance(self.v, self.s)
        cache: dict[date, Any] = {}
        row = next((b for b in perf.budgets(customer, cache)["budgets"]
                    if b["month"] == f"{first:%Y-%m}" and b["cost_centre"] == code), None)
        this = datetime.now(tz).date().replace(day=1)
        got = perf._centre_bill(customer, code, first, this, tz, cache)
        amount = got["amount"]
        return {"amount": row["amount"] if row else None, "currency": row["currency"] if row else got["currency"],
                "projected": str(amount) if amount is not None else None, "basis": got["basis"],
                "share": str(got["share"]) if got["share"] is not None else None,  # exact: projected = account x share
                "account_projection": str(got["account"]) if got["account"] is not None else None,
                "over": row["over"] if row else None, "note": row["note"] if row else got["note"],
                "why": got["why"]}

    def _sec(self, customer: str, cc: CostCentreDef, first: date, tz: ZoneInfo, now: datetime) -> dict[str, Any]:
        """SEC per day and month of the line `cc.code`, and the ISO 50006 baseline on the cost centre's months."""
        cfg = self.s.get(PerformanceSettings, customer)
        base = (months_between(month_of(cfg.baseline_first, "baseline_first"),
                               month_of(cfg.baseline_last, "baseline_last"))
                if cfg and cfg.baseline_first and cfg.baseline_last else None)
        if base is None:
            start = first
            for _ in range(BASELINE_MONTHS - 1):
                start = (start - timedelta(days=1)).replace(day=1)
            base = months_between(start, first)
        span = sorted(set(base) | {first})
        prod = list(self.s.scalars(select(ProductionDay).where(
            ProductionDay.customer_code == customer, ProductionDay.kind == "actual", ProductionDay.line == cc.code,
            ProductionDay.day >= span[0], ProductionDay.day < next_month(span[-1]))))
        unit = prod[0].unit if prod else None
        output: dict[date, Decimal] = defaultdict(Decimal)
        for p in prod:
            output[p.day] += p.output
        days, sec_month = sec_of(self.month_series(customer, cc, first, tz, now), output, first)
        rows = []
        for m in span:
            month_days = [m + timedelta(days=i) for i in range((next_month(m) - m).days)]
            covered = all(d in output for d in month_days)
            kwh = float("nan")
            if covered or m == first:
                s = self.month_series(customer, cc, m, tz, now)
                if (s.rank == RANK["measured"]).all():
                    kwh = float(np.nansum(s.kwh))
            rows.append({"kwh": kwh, "output": float(sum(output[d] for d in month_days)) if covered
                         else float("nan")})
        perf = energy_performance(pd.DataFrame(rows, index=pd.DatetimeIndex([pd.Timestamp(m) for m in span])),
                                  baseline=[m in base for m in span])
        return {
            "unit": unit, "line": cc.code, "days": days, "month": sec_month,
            "baseline": {"valid": perf.valid, "reason": perf.reason, "criteria": perf.criteria,
                         "drivers": perf.drivers, "coefficients": perf.coefficients, "r2": _num(perf.r2, 4),
                         "cv_rmse": _num(perf.cv_rmse, 4) if perf.cv_rmse not in (None, float("inf")) else None,
                         "first": perf.baseline_first, "last": perf.baseline_last, "months": perf.baseline_n,
                         "by_month": [{"month": mo, "kwh": _num(r["kwh"], 1), "output": _num(r["output"], 3),
                                       "sec": _num(sec, 4), "predicted_kwh": _num(pr, 1),
                                       "cusum_savings_kwh": _num(cu, 1), "in_baseline": m in base}
                                      for m, mo, r, sec, pr, cu in zip(span, perf.months, rows,
                                                                       perf.sec_kwh_per_unit, perf.predicted_kwh,
                                                                       perf.cusum_kwh, strict=True)]},
        }

def sec_of(month: Series, output: dict[date, Decimal], first: date) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """SEC of each local day of the month `first` and of the month, from the cost centre's intervals and output.

    A day's kWh is its intervals' with energy, its SEC only when every interval is measured (an estimated, missing
    or pending one leaves the day out: counted in `excluded_days` when it has output). The month's SEC is the whole
    days' kWh over their output, as the customer's.
    """
    local_days = pd.DatetimeIndex(month.index).tz_localize(None).normalize()
    days = []
    sec_kwh = sec_out = 0.0
    for i in range((next_month(first) - first).days):
        d = first + timedelta(days=i)
        sel = np.asarray(local_days == pd.Timestamp(d))
        kwh, rank = month.kwh[sel], month.rank[sel]
        c = counts(rank)
        complete = bool(sel.any()) and c["measured"] == int(sel.sum())
        known = np.isfinite(kwh)
        energy = float(kwh[known].sum()) if known.any() else None
        out_d = output.get(d)
        sec = None
        if complete and energy is not None and out_d is not None and out_d > 0:
            sec = energy / float(out_d)
            sec_kwh, sec_out = sec_kwh + energy, sec_out + float(out_d)
        days.append({"day": d, "kwh": _num(energy, 3), "complete": complete, "estimated_intervals": c["estimated"],
                     "missing_intervals": c["missing"], "pending_intervals": c["pending"],
                     "output": _num(out_d, 3) if out_d is not None else None, "sec": _num(sec, 4)})
    whole = sum(1 for d in days if d["sec"] is not None)
    return days, {"kwh": _num(sec_kwh, 3) if whole else None, "output": _num(sec_out, 3) if whole else None,
                  "sec": _num(sec_kwh / sec_out, 4) if sec_out > 0 else None, "sec_days": whole,
                  "production_days": sum(1 for d in days if d["output"] is not None),
                  "excluded_days": sum(1 for d in days if d["output"] is not None and not d["complete"])}


def intervals(s: Series) -> list[dict[str, Any]]:
    """Each interval: start (local ISO 8601), kWh and kW (None without energy) and its status."""
    names = np.array(STATUS, dtype=object)[s.rank]
    return [{"start": t.isoformat(), "kwh": None if not np.isfinite(k) else round(float(k), 4),
             "kw": None if not np.isfinite(k) else round(float(k) * 4, 3), "status": str(st)}
            for t, k, st in zip(s.index, s.kwh, names, strict=True)]


__all__ = ["CostCentreView", "Range", "Series", "intervals", "sec_of"]
