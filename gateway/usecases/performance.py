"""Energy performance of one customer: production uploads, SEC, the ISO 50006 baseline and CUSUM, CO2, budgets.

Energy comes from the one month bill (UseCases.month_bill: the month's and each day's kWh with their interval
counts), never summed a second way; the model, CO2 and measured savings are crm_bridge.services.performance's; the
projected bill a budget is held against is the one the bill and budget alerts compare
(crm_bridge.alerts.evaluate.bill_projection). A month or day with a missing or pending interval keeps its figures
but is left out of SEC and the model, and says so.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from crm_bridge.registry.models import AdviceRequest, Contract, Ticket, TicketTransition
from crm_bridge.registry.performance_models import EnergyBudget, PerformanceSettings, ProductionDay
from crm_bridge.services.performance import advice_saving, co2, emission_factors, energy_performance
from crm_bridge.services.production_io import ProductionFileError, RowError, plant_shifts, read_production
from crm_bridge.tariffs import MonthBill, MonthUsage
from crm_bridge.tariffs.bill import month_bounds
from crm_bridge.tariffs.model import next_month
from gateway.usecases.errors import BadInput, UseCaseError
from gateway.usecases.figures import UseCases, _num, contract_of, customer_config

MAX_MONTHS = 36  # asked at once
MAX_SPAN = 60  # months read: the baseline period and the months asked together
CENT = Decimal("0.01")


class ProductionRejected(BadInput):
    """A production file with bad rows: nothing was stored; `errors` lists each with its row and column."""

    def __init__(self, exc: ProductionFileError) -> None:
        super().__init__(str(exc), where="file", code="invalid_file")
        self.errors: list[RowError] = exc.errors
        self.count = exc.count


def problems_in(errors: Sequence[RowError], lang: str) -> list[dict[str, Any]]:
    """The rows of a refused file, each with its message in `lang` (the portal's catalogue) and in English."""
    from gateway.portal.i18n import text

    return [{"row": e.row, "column": e.column, "code": e.code, "value": e.value,
             "message": text(e.key, lang, row=e.row or "", column=e.column or "", value=e.value or "",
                             **{k: str(v) for k, v in e.params.items()}),
             "english": e.english()} for e in errors]


def money(x: float | Decimal | None) -> str | None:
    """An amount exact to the cent, as text (JSON numbers would be binary floats)."""
    if x is None:
        return None
    return str(Decimal(str(x)).quantize(CENT, ROUND_HALF_UP))


def month_of(value: str, where: str) -> date:
    try:
        first = date.fromisoformat(f"{value}-01")
    except ValueError:
        raise BadInput(f"{where}: {value!r} is not a month (YYYY-MM)", where) from None
    if not date(2000, 1, 1) <= first <= date(2099, 12, 1):
        raise BadInput(f"{where}: {value!r} is outside 2000-01..2099-12", where)
    return first


def months_between(first: date, last: date) -> list[date]:
    out = [first]
    while out[-1] < last:
        out.append(next_month(out[-1]))
    return out


@dataclass(frozen=True, slots=True)
class _Running:
    """A running month's bill projection and its inputs, or `note`: why there is none."""

    value: float | None = None
    currency: str | None = None
    contract: Contract | None = None
    mtd: pd.DataFrame | None = None
    now: datetime | None = None
    note: str | None = None


class Performance:
    """One request's view of a customer's energy performance: the gateway's figures and a registry session."""

    def __init__(self, v: UseCases, session: Session) -> None:
        self.v, self.s = v, session
        self._runs: dict[date, _Running] = {}  # the running month's projection, by month (_running)

    def _tz(self, customer: str) -> ZoneInfo:
        return ZoneInfo(customer_config(self.v.gw, customer).timezone)

    # -- production ------------------------------------------------------------------------------------------------

    def upload(self, username: str, customer: str, data: bytes, kind: str) -> dict[str, Any]:
        """Store a production file's rows, replacing every row of the days it holds; all or nothing."""
        today = datetime.now(self._tz(customer)).date()
        try:
            rows = read_production(data, kind, today=today - timedelta(days=1))
        except ProductionFileError as exc:
            raise ProductionRejected(exc) from None
        days = sorted({r.day for r in rows})
        unit = rows[0].unit
        other = self.s.scalar(select(ProductionDay.unit).where(
            ProductionDay.customer_code == customer, ProductionDay.kind == kind, ProductionDay.unit != unit,
            ProductionDay.day.not_in(days)).limit(1))
        if other is not None:
            raise ProductionRejected(ProductionFileError([RowError(2, "unit", "mixed_unit", unit, {"unit": other})]))
        now = datetime.now(UTC)
        replaced = self.s.execute(delete(ProductionDay).where(
            ProductionDay.customer_code == customer, ProductionDay.kind == kind, ProductionDay.day.in_(days)))
        self.s.add_all([ProductionDay(customer_code=customer, kind=kind, day=r.day, line=r.line, output=r.output,
                                      unit=r.unit, hdd=r.hdd, cdd=r.cdd, shifts=r.shifts, operating=r.operating,
                                      uploaded_at=now, uploaded_by=username)
                        for r in rows])
        self.s.commit()
        return {"customer": customer, "kind": kind, "rows": len(rows), "days": len(days), "first_day": days[0],
                "last_day": days[-1], "replaced_rows": int(getattr(replaced, "rowcount", 0) or 0), "unit": unit}

    def _production(self, customer: str, kind: str, first: date, end: date) -> list[ProductionDay]:
        return list(self.s.scalars(select(ProductionDay).where(
            ProductionDay.customer_code == customer, ProductionDay.kind == kind, ProductionDay.day >= first,
            ProductionDay.day < end).order_by(ProductionDay.day, ProductionDay.line)))

    # -- settings ----------------------------------------------------------------------------------------------------

    def settings(self, customer: str) -> dict[str, Any]:
        row = self.s.get(PerformanceSettings, customer)
        return {"customer": customer, "grid_region": row.grid_region if row else None,
                "baseline_first": row.baseline_first if row else None,
                "baseline_last": row.baseline_last if row else None,
                "regions": sorted({r for r, _ in emission_factors()})}

    def put_settings(self, username: str, customer: str, grid_region: str | None, baseline_first: str | None,
                     baseline_last: str | None) -> dict[str, Any]:
        if grid_region is not None and grid_region not in {r for r, _ in emission_factors()}:
            raise BadInput(f"grid_region: no emission factor is kept for {grid_region!r}", "grid_region")
        if (baseline_first is None) != (baseline_last is None):
            raise BadInput("baseline_last: give both ends of the baseline period or neither", "baseline_last")
        if baseline_first and baseline_last:
            a, b = month_of(baseline_first, "baseline_first"), month_of(baseline_last, "baseline_last")
            if b < a or len(months_between(a, b)) > MAX_MONTHS:
                raise BadInput(f"baseline_last: the period must run forwards, at most {MAX_MONTHS} months",
                               "baseline_last")
        row = self.s.get(PerformanceSettings, customer) or PerformanceSettings(customer_code=customer)
        row.grid_region, row.baseline_first, row.baseline_last = grid_region, baseline_first, baseline_last
        row.updated_at, row.updated_by = datetime.now(UTC), username
        self.s.add(row)
        self.s.commit()
        return self.settings(customer)

    # -- budgets -----------------------------------------------------------------------------------------------------

    def put_budgets(self, username: str, customer: str, budgets: Sequence[Any]) -> dict[str, Any]:
        """Replace the customer's budgets (month, cost centre or None for the account, amount, currency)."""
        seen: set[tuple[str, str]] = set()
        for i, b in enumerate(budgets):
            month_of(b.month, f"budgets.{i}.month")
            key = (b.month, b.cost_centre or "")
            if key in seen:
                raise BadInput(f"budgets.{i}: {b.month} {b.cost_centre or '(account)'} is given twice",
                               f"budgets.{i}.month")
            seen.add(key)
        now = datetime.now(UTC)
        self.s.execute(delete(EnergyBudget).where(EnergyBudget.customer_code == customer))
        self.s.add_all([EnergyBudget(customer_code=customer, month=b.month, cost_centre=b.cost_centre or "",
                                     amount=Decimal(b.amount).quantize(CENT, ROUND_HALF_UP), currency=b.currency,
                                     updated_at=now, updated_by=username) for b in budgets])
        self.s.commit()
        return self.budgets(customer)

    def put_budget(self, username: str, customer: str, month: str, cost_centre: str | None, amount: Decimal | None,
                   currency: str = "CNY") -> None:
        """Set one month's budget of the account or of one cost centre, or remove it (amount None); the rest stay.

        The portal's form: PUT .../budgets replaces them all. A cost centre must be one of the customer's.
        """
        from crm_bridge.registry.allocation_models import CostCentre
        from crm_bridge.registry.models import Customer
        from gateway.usecases.errors import NotFound

        month_of(month, "month")
        key = cost_centre or ""
        row = self.s.scalar(select(EnergyBudget).where(EnergyBudget.customer_code == customer,
                                                       EnergyBudget.month == month, EnergyBudget.cost_centre == key))
        if amount is None:
            if row is None:
                raise NotFound(f"month: no budget for {month} {key or '(account)'} to remove", "month")
            self.s.delete(row)
            self.s.commit()
            return
        if key and self.s.scalar(select(CostCentre.id).join(Customer, Customer.id == CostCentre.customer_id)
                                 .where(Customer.code == customer, CostCentre.code == key)) is None:
            raise BadInput(f"cost_centre: {key!r} is not a cost centre of {customer!r}", "cost_centre")
        row = row or EnergyBudget(customer_code=customer, month=month, cost_centre=key)
        row.amount, row.currency = Decimal(amount).quantize(CENT, ROUND_HALF_UP), currency
        row.updated_at, row.updated_by = datetime.now(UTC), username
        self.s.add(row)
        self.s.commit()

    def budgets(self, customer: str, centre_cache: dict[date, Any] | None = None) -> dict[str, Any]:
        """Each budget with the month's bill against it.

        The bill of a month that is over, the projection of this month (the alerts'), nothing for a month ahead. A
        cost centre's: its line of the month's allocation when over, this month the account's projection x its share
        of the month-to-date allocation (the alerts' figure), the basis said in `note` (_centre_bill).
        """
        rows = list(self.s.scalars(select(EnergyBudget).where(EnergyBudget.customer_code == customer)
                                   .order_by(EnergyBudget.month, EnergyBudget.cost_centre)))
        tz = self._tz(customer)
        this = datetime.now(tz).date().replace(day=1)
        bills: dict[str, tuple[float | None, str, str | None, str | None]] = {}
        centre_cache = {} if centre_cache is None else centre_cache  # per month: shared with a caller's own look
        out = []
        for r in rows:
            projected: float | Decimal | None
            basis: str
            currency: str | None
            note: str | None
            if r.cost_centre:
                got = self._centre_bill(customer, r.cost_centre, date.fromisoformat(f"{r.month}-01"), this, tz,
                                        centre_cache)
                projected, basis, currency, note = got["amount"], got["basis"], got["currency"], got["note"]
            else:
                if r.month not in bills:
                    bills[r.month] = self._bill_for(customer, date.fromisoformat(f"{r.month}-01"), this, tz)
                projected, basis, currency, note = bills[r.month]
            if projected is not None and currency != r.currency:
                note = f"the bill is in {currency}, the budget in {r.currency}: not compared"
                projected, basis = None, "none"
            amount = Decimal(r.amount).quantize(CENT)
            proj = money(projected)
            out.append({"month": r.month, "cost_centre": r.cost_centre or None, "amount": str(amount),
                        "currency": r.currency, "projected_bill": proj, "basis": basis,
                        "over": None if proj is None else Decimal(proj) > amount, "note": note})
        last = max(rows, key=lambda r: r.updated_at, default=None)
        return {"customer": customer, "budgets": out, "updated_by": last.updated_by if last else None,
                "updated_at": last.updated_at if last else None}

    def _centre_bill(self, customer: str, code: str, month: date, this: date, tz: ZoneInfo,
                     cache: dict[date, Any]) -> dict[str, Any]:
        """A cost centre's bill for a budget: amount, basis, currency, note (English, the basis said) and the parts.

        A month that is over: the cost centre's line of the month's allocation (gateway.usecases.allocation, the
        same cents). This month: the account's projection (the alerts' bill_projection) x the cost centre's share of
        the month-to-date allocation, both from crm_bridge.alerts.evaluate as the budget alert computes them.
        `share` and `account` are Decimal or None; `why` a short key when there is no amount. `cache`: per month.
        """
        from gateway.usecases import allocation as uc_alloc

        out: dict[str, Any] = {"amount": None, "basis": "none", "currency": None, "note": None, "share": None,
                               "account": None, "why": None}
        if month > this:
            return out | {"note": "the month has not begun", "why": "not_begun"}
        if month not in cache:
            try:
                if month < this:
                    cache[month] = uc_alloc.allocation(self.v, customer, month)
                else:
                    cache[month] = self._centre_projections(customer, month, tz)
            except UseCaseError as exc:
                cache[month] = exc
        got = cache[month]
        if isinstance(got, UseCaseError):
            return out | {"note": str(got), "why": "no_allocation"}
        if month < this:
            line = next((x for x in got.lines if x.code == code), None)
            if line is None:
                return out | {"note": f"no cost centre {code!r} in the allocation of {month:%Y-%m}", "why": "unknown"}
            share = line.total / got.total if got.total else None
            return out | {"amount": line.total, "basis": "bill", "currency": got.currency, "share": share,
                          "note": f"bill: the cost centre's line of the {month:%Y-%m} allocation"
                                  + ("; the month has missing intervals" if got.missing else "")}
        account, currency, shares, why = got
        if account is None:
            return out | {"note": why, "why": "no_projection"}
        if code not in shares:
            return out | {"note": f"no month-to-date allocation for cost centre {code!r} yet", "why": "unknown",
                          "account": account}
        share, amount = shares[code]
        shown = (share * 100).quantize(Decimal("0.1"), ROUND_HALF_UP)
        return out | {"amount": amount, "basis": "projection", "currency": currency, "share": share,
                      "account": account, "note": f"projection: account projection x share so far {shown} %"}

    def _running(self, customer: str, month: date, tz: ZoneInfo) -> _Running:
        """The running month's bill projection (the alerts' bill_projection) and what it was made from.

        Read once per request and month: the account's budget and every cost centre's share the same store read.
        """
        if month in self._runs:
            return self._runs[month]
        from crm_bridge.alerts.evaluate import bill_projection
        from crm_bridge.tariffs import available_tariffs, load_tariff

        contract = contract_of(self.v.gw, customer, month, next_month(month))
        now = datetime.now(tz)
        end = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
        start, _ = month_bounds(month, tz)
        if contract is None:
            run = _Running(note="no contract on file: no projection")
        elif end <= start:
            run = _Running(note="the month has just begun")
        else:
            currency = load_tariff(contract.tariff_id).currency if contract.tariff_id in available_tariffs() else None
            mtd = self.v.gw.query.customer_intervals(customer, start, end)
            row = self.s.merge(contract)
            run = _Running(bill_projection(self.s, row, mtd, now), currency, row, mtd, now)
        self._runs[month] = run
        return run

    def _centre_projections(self, customer: str, month: date, tz: ZoneInfo
                            ) -> tuple[Decimal | None, str | None, dict[str, tuple[Decimal, Decimal]], str | None]:
        """The running month's account projection, its currency, each cost centre's (share, projection), or why none."""
        from crm_bridge.alerts.evaluate import cost_centre_projections

        run = self._running(customer, month, tz)
        if run.note is not None:
            return None, None, {}, run.note
        if run.value is None or run.contract is None or run.mtd is None or run.now is None:  # all set with a value
            return None, run.currency, {}, "no projection: the contract's tariff gives no price"
        shares = cost_centre_projections(self.s, self.v.gw.query, run.contract, run.mtd, run.now, run.value)
        return Decimal(repr(float(run.value))), run.currency, shares, None  # the value the shares multiply

    def _bill_for(self, customer: str, month: date, this: date,
                  tz: ZoneInfo) -> tuple[float | None, str, str | None, str | None]:
        """(amount, basis, currency, note) of a month's bill: actual when over, the projection for this month."""
        if month > this:
            return None, "none", None, "the month has not begun"
        if month < this:
            try:
                _, bill = self.v.month_bill(customer, month)
            except UseCaseError as exc:
                return None, "none", None, str(exc)
            if bill is None:
                return None, "none", None, "no contract on file: no bill"
            return bill.total, "bill", bill.currency, None if bill.complete else "the month has missing intervals"
        run = self._running(customer, month, tz)
        if run.note is not None:
            return None, "none", None, run.note
        return run.value, "projection", run.currency, None

    # -- performance -------------------------------------------------------------------------------------------------

    def performance(self, customer: str, first: date, last: date, money_allowed: bool) -> dict[str, Any]:
        """SEC per day and month, the ISO 50006 baseline and CUSUM, CO2 per month, budgets and measured advice."""
        tz = self._tz(customer)
        this = datetime.now(tz).date().replace(day=1)
        if last < first:
            raise BadInput(f"to: {last:%Y-%m} is before from {first:%Y-%m}", "to")
        if last > this:
            raise BadInput(f"to: {last:%Y-%m} has not begun", "to")
        asked = months_between(first, last)
        if len(asked) > MAX_MONTHS:
            raise BadInput(f"to: at most {MAX_MONTHS} months at once, asked {len(asked)}", "to")
        cfg = self.s.get(PerformanceSettings, customer)
        region = cfg.grid_region if cfg else None
        base = (months_between(month_of(cfg.baseline_first, "baseline_first"),
                               month_of(cfg.baseline_last, "baseline_last"))
                if cfg and cfg.baseline_first and cfg.baseline_last else asked[:12])
        span = months_between(min(base[0], first), max(min(base[-1], this), last))
        if len(span) > MAX_SPAN:
            raise BadInput(f"from: the baseline period and the months asked span more than {MAX_SPAN} months",
                           "from")
        figures = self._figures(customer, span)
        prod = self._production(customer, "actual", span[0], next_month(span[-1]))
        unit = prod[0].unit if prod else None
        by_day: dict[date, Decimal] = defaultdict(Decimal)
        hdd: dict[date, Decimal] = defaultdict(Decimal)
        cdd: dict[date, Decimal] = defaultdict(Decimal)
        has_hdd: set[date] = set()
        has_cdd: set[date] = set()
        lines: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        rows_of: dict[date, list[ProductionDay]] = defaultdict(list)  # the day's shifts and operating flag
        for p in prod:
            rows_of[p.day].append(p)
            by_day[p.day] += p.output
            lines[(p.line, f"{p.day:%Y-%m}")] += p.output
            if p.hdd is not None:  # the day's weather: the same on every line
                hdd[p.day] = max(hdd[p.day], p.hdd)
                has_hdd.add(p.day)
            if p.cdd is not None:
                cdd[p.day] = max(cdd[p.day], p.cdd)
                has_cdd.add(p.day)
        months: list[dict[str, Any]] = []
        days: list[dict[str, Any]] = []
        rows: list[dict[str, float]] = []
        charge = kwh_priced = 0.0
        for m in span:
            usage, bill = figures.get(m, (None, None))
            month_days = [m + timedelta(days=i) for i in range((next_month(m) - m).days)]
            outputs = [by_day.get(d) for d in month_days]
            covered = all(o is not None for o in outputs)
            complete = usage is not None and usage.complete
            sec_kwh = sec_out = 0.0
            for d in (usage.days if usage is not None else []):
                whole = d.missing == 0 and d.pending == 0 and d.kwh is not None
                out = by_day.get(d.day)
                if whole and out is not None and out > 0:
                    sec_kwh, sec_out = sec_kwh + float(d.kwh or 0.0), sec_out + float(out)
                if m in asked:
                    days.append({"day": d.day, "kwh": _num(d.kwh, 1), "complete": whole,
                                 "estimated_intervals": d.estimated, "missing_intervals": d.missing,
                                 "pending_intervals": d.pending, "output": _num(out, 3) if out is not None else None,
                                 "sec": _num(float(d.kwh or 0.0) / float(out), 4)
                                 if whole and out is not None and out > 0 else None,
                                 **dict(zip(("shifts", "operating"), plant_shifts(rows_of.get(d.day, [])),
                                            strict=True))})
            output = float(sum(o for o in outputs if o is not None)) if any(o is not None for o in outputs) else None
            rows.append({"kwh": usage.energy_kwh if complete and covered and usage is not None else float("nan"),
                         "output": output if covered and output is not None else float("nan"),
                         "hdd": float(sum(hdd[d] for d in month_days)) if all(d in has_hdd for d in month_days)
                         else float("nan"),
                         "cdd": float(sum(cdd[d] for d in month_days)) if all(d in has_cdd for d in month_days)
                         else float("nan")})
            if complete and bill is not None and usage is not None and usage.energy_kwh > 0:
                charge, kwh_priced = charge + bill.energy_charge, kwh_priced + bill.energy_kwh
            why = None
            if usage is None:
                why = "no energy measured"
            elif usage.intervals.pending:
                why = f"the month is not over ({usage.intervals.pending} intervals pending)"
            elif not complete:
                why = f"{usage.intervals.missing} intervals missing: the month's energy is not whole"
            elif not covered:
                why = f"production given for {sum(o is not None for o in outputs)} of {len(month_days)} days"
            emission = co2(usage.energy_kwh, region, m.year) if usage is not None else None
            months.append({
                "month": f"{m:%Y-%m}", "kwh": _num(usage.energy_kwh, 1) if usage else None, "complete": complete,
                "estimated_intervals": usage.intervals.estimated if usage else 0,
                "missing_intervals": usage.intervals.missing if usage else 0,
                "pending_intervals": usage.intervals.pending if usage else 0,
                "output": _num(output, 3), "production_days": sum(o is not None for o in outputs),
                "days": len(month_days), "sec": _num(sec_kwh / sec_out, 4) if sec_out > 0 else None,
                "sec_days": sum(1 for d in (usage.days if usage else []) if d.missing == 0 and d.pending == 0
                                and d.kwh is not None and by_day.get(d.day) is not None and by_day[d.day] > 0),
                "in_model": why is None, "excluded_because": why, "in_baseline": m in base,
                "co2": None if emission is None else {
                    "kg": _num(emission.kg, 1), "kg_per_unit": _num(emission.kg / sec_out * sec_kwh
                                                                    / usage.energy_kwh, 4)
                    if emission.kg is not None and sec_out > 0 and usage is not None and usage.energy_kwh > 0
                    else None,
                    "factor_kg_per_kwh": emission.factor_kg_per_kwh, "factor_year": emission.factor_year,
                    "region": emission.region, "source": emission.source, "note": emission.note},
            })
        frame = pd.DataFrame(rows, index=pd.DatetimeIndex([pd.Timestamp(m) for m in span]))
        price = charge / kwh_priced if kwh_priced > 0 else None
        plan_month = next_month(this)
        plan = self._production(customer, "plan", plan_month, next_month(plan_month))
        plan_days = {p.day for p in plan}
        plan_out: float | None = None
        plan_note = None
        if len(plan_days) < (next_month(plan_month) - plan_month).days:
            plan_note = f"the plan covers {len(plan_days)} days of {plan_month:%Y-%m}"
        elif unit is not None and any(p.unit != unit for p in plan):
            plan_note = f"the plan is in {plan[0].unit}, the actuals in {unit}: not comparable"
        else:
            plan_out = float(sum(p.output for p in plan))
        currency = next((b.currency for _, b in figures.values() if b is not None), "CNY")
        perf = energy_performance(frame, next_output=plan_out, price_per_kwh=price, currency=currency,
                                  baseline=[m in base for m in span])
        at = {m: i for i, m in enumerate(perf.months)}
        for row in months:
            i = at[str(row["month"])]
            row.update({"predicted_kwh": _num(perf.predicted_kwh[i], 1), "savings_kwh": _num(perf.savings_kwh[i], 1),
                        "cusum_savings_kwh": _num(perf.cusum_kwh[i], 1), "enpi_ratio": _num(perf.enpi_ratio[i], 4)})
        result: dict[str, Any] = {
            "customer": customer, "timezone": str(tz), "from": f"{first:%Y-%m}", "to": f"{last:%Y-%m}",
            "unit": unit, "grid_region": region,
            "months": [r for r in months if date.fromisoformat(f"{r['month']}-01") in asked or r["in_baseline"]],
            "days": days,
            "lines": [{"line": ln or None, "month": mo, "output": _num(o, 3)} for (ln, mo), o in sorted(lines.items())
                      if date.fromisoformat(f"{mo}-01") in asked],
            "baseline": {"valid": perf.valid, "reason": perf.reason, "criteria": perf.criteria,
                         "drivers": perf.drivers, "coefficients": perf.coefficients, "r2": _num(perf.r2, 4),
                         "cv_rmse": _num(perf.cv_rmse, 4) if perf.cv_rmse is not None
                         and perf.cv_rmse != float("inf") else None,
                         "first": perf.baseline_first, "last": perf.baseline_last, "months": perf.baseline_n},
            "next_month": {"month": f"{plan_month:%Y-%m}", "planned_output": _num(plan_out, 3),
                           "kwh": _num(perf.next_month_kwh, 1),
                           "cost": money(perf.next_month_cost) if money_allowed else None,
                           "note": plan_note if plan_out is None else None if perf.next_month_kwh is not None
                           else perf.reason or "the baseline uses degree days: next month's are not known"},
            "currency": currency if money_allowed else None,
            "advice": self._advice(customer, perf, price, currency) if money_allowed else None,
        }
        return result

    def _figures(self, customer: str, span: list[date]) -> dict[date, tuple[MonthUsage, MonthBill | None]]:
        """Each month's figures from the one month bill (one store read for them all); a month without data none."""
        frames = self.v.month_frames(customer, span)
        out: dict[date, tuple[MonthUsage, MonthBill | None]] = {}
        for m in span:
            try:
                out[m] = self.v.month_bill(customer, m, frames[m])
            except UseCaseError:
                continue  # no energy that month, or a month before the tariff: no figures, said per month
        return out

    def _advice(self, customer: str, perf: Any, price: float | None, currency: str) -> list[dict[str, Any]]:
        """Each advice request whose ticket was resolved: its measured saving next to what it promised."""
        out = []
        links = self.s.execute(select(AdviceRequest, Ticket).join(Ticket, Ticket.id == AdviceRequest.ticket_id)
                               .where(AdviceRequest.customer_code == customer)
                               .order_by(AdviceRequest.ticket_id)).all()
        for link, ticket in links:
            done = self.s.scalar(select(TicketTransition.at).where(
                TicketTransition.ticket_id == ticket.id, TicketTransition.to_status.in_(("resolved", "closed")))
                .order_by(TicketTransition.at).limit(1))
            if done is None:
                continue
            day = done.astimezone(self._tz(customer)).date()
            saving = advice_saving(perf, day, link.money_per_month, link.currency, price)
            out.append({"ticket_id": ticket.id, "advice_key": link.advice_key, "advice_month": link.advice_month,
                        "title": link.title, "done_on": day, "measurable": saving.measurable,
                        "reason": saving.reason, "months_before": saving.months_before,
                        "months_after": saving.months_after, "kwh_per_month": _num(saving.kwh_per_month, 1),
                        "money_per_month": money(saving.money_per_month),
                        "promised_money_per_month": money(link.money_per_month), "currency": link.currency})
        return out


__all__ = ["Performance", "ProductionRejected", "months_between", "problems_in"]
