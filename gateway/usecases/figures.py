"""The figures every surface shows, computed in one place: day curves, interval series, month views, exports.

The API, the portal, the CLI, the reports and the scheduler's jobs all call `UseCases`; it takes typed inputs,
raises `gateway.usecases.errors` (only gateway/api turns them into HTTP) and owns the caching: results of past days
are kept (they no longer change), today's for a short time, so 50 users opening the same curve cost one query.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import select

from crm_bridge.errors import TariffError
from crm_bridge.registry.models import Company, Contract
from crm_bridge.tariffs import Tariff, basic_charges, energy_cost, load_tariff, monthly_pf, pf_adjustment_pct
from gateway.query import Freq, QueryError, Scope, day_bounds
from gateway.runtime import Gateway
from gateway.usecases.errors import BadInput, NoData, NotFound, UseCaseError

T = TypeVar("T")
MAX_SERIES_DAYS = 93
SERIES_NUMBERS = ("kw_mean", "kwh", "demand_max_kw", "kvarh", "pf")
SERIES_COUNTS = ("intervals", "measured_intervals", "estimated_intervals", "missing_intervals", "pending_intervals")
TODAY_TTL_S = 30.0
MAX_EXPORT_DAYS = 366


class TtlCache:
    """A small LRU with a per-entry lifetime; concurrent misses of one key compute it once."""

    def __init__(self, size: int = 1024) -> None:
        self._data: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()
        self._computing: dict[Any, threading.Lock] = {}

    def _fresh(self, key: Any) -> tuple[bool, Any]:
        with self._lock:
            hit = self._data.get(key)
            if hit is not None and hit[0] > time.monotonic():
                self._data.move_to_end(key)
                return True, hit[1]
            return False, None

    def get(self, key: Any, ttl_s: float, make: Callable[[], T]) -> T:
        found, value = self._fresh(key)
        if found:
            return value  # type: ignore[no-any-return]
        with self._lock:
            key_lock = self._computing.setdefault(key, threading.Lock())
        with key_lock:
            found, value = self._fresh(key)  # another request made it while this one waited
            if found:
                return value  # type: ignore[no-any-return]
            value = make()
            self._put(key, ttl_s, value)
        with self._lock:
            self._computing.pop(key, None)
        return value  # type: ignore[no-any-return]

    def _put(self, key: Any, ttl_s: float, value: Any) -> None:
        now = time.monotonic()
        with self._lock:
            self._data[key] = (now + ttl_s, value)
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)
        return value


# The month view's money: TOU costs, the basic-charge modes compared (with the contract's terms), the PF adjustment.
MONEY_FIELDS = ("tou", "basic_charge", "pf_adjustment", "currency")


def without_money(view: dict[str, Any]) -> dict[str, Any]:
    """A copy of a month view without MONEY_FIELDS (the cached view itself is shared and stays whole)."""
    return {k: v for k, v in view.items() if k not in MONEY_FIELDS}


def customer_config(gw: Gateway, customer: str) -> Any:
    found = next((c for c in gw.config.customers if c.id == customer), None)
    if found is None:
        raise NotFound(f"customer {customer!r} not found", "customer")
    return found


FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)


def _in_range(d: date, where: str, value: str) -> date:
    if not FIRST_DAY <= d <= LAST_DAY:
        raise BadInput(f"{where}: {value!r} is outside {FIRST_DAY}..{LAST_DAY}", where)
    return d


def parse_day(value: str | None, tz: ZoneInfo, where: str = "date") -> date:
    if not value:
        return datetime.now(tz).date()
    try:
        return _in_range(date.fromisoformat(value), where, value)
    except ValueError:
        raise BadInput(f"{where}: {value!r} is not a date (YYYY-MM-DD)", where) from None


def parse_month(value: str | None, tz: ZoneInfo) -> date:
    if not value:
        return datetime.now(tz).date().replace(day=1)
    try:
        return _in_range(date.fromisoformat(f"{value}-01"), "month", value)
    except ValueError:
        raise BadInput(f"month: {value!r} is not a month (YYYY-MM)", "month") from None


def contract_of(gw: Gateway, customer: str) -> Contract | None:
    with gw.db() as s:
        return s.scalar(select(Contract).join(Company, Company.id == Contract.company_id)
                        .where(Company.code == customer))


def tariff_of(contract: Contract | None) -> Tariff | None:
    if contract is None:
        return None
    try:
        return load_tariff(contract.tariff_id)
    except TariffError:
        return None


def _num(x: Any, digits: int = 3) -> float | None:
    if x is None:
        return None
    f = float(x)
    return None if f != f or f in (np.inf, -np.inf) else round(f, digits)


class UseCases:
    """Day curve, interval series, month view and exports of one gateway, with caching."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.cache = TtlCache()

    def _ttl(self, day_end: datetime) -> float:
        return 3600.0 if day_end < datetime.now(day_end.tzinfo) - timedelta(minutes=20) else TODAY_TTL_S

    def day_curve(self, customer: str, day: date) -> dict[str, Any]:
        tz = ZoneInfo(customer_config(self.gw, customer).timezone)
        start, end = day_bounds(str(day), tz)
        return self.cache.get(("day", customer, day), self._ttl(end), lambda: self._day_curve(customer, day, tz))

    def _day_curve(self, customer: str, day: date, tz: ZoneInfo) -> dict[str, Any]:
        start, end = day_bounds(str(day), tz)
        q = self.gw.query
        actual = q.series("customer", customer, start, end, "15min")
        week_start, week_end = day_bounds(str(day - timedelta(days=7)), tz)
        last_week = q.series("customer", customer, week_start, week_end, "15min")
        forecast = q.forecast(customer, start, end)
        tariff = tariff_of(contract_of(self.gw, customer))
        bands = tariff.price_table(pd.DatetimeIndex(actual.index))["band"].tolist() if tariff else [None] * len(actual)
        # Last week's curve is laid over today's by position in the day (local wall clock).
        idx = pd.DatetimeIndex(actual.index)
        walls = idx.strftime("%H:%M")
        by_wall = pd.Series(last_week["kw_mean"].to_numpy(),
                            index=pd.DatetimeIndex(last_week.index).strftime("%H:%M"))
        lw = by_wall[~by_wall.index.duplicated()].reindex(walls).to_numpy(dtype=float)
        act = actual["kw_mean"].where(~actual["missing"].astype(bool)).to_numpy(dtype=float)
        fc = forecast["forecast"].reindex(idx).to_numpy(dtype=float) * 4
        points = [{"start": s, "actual_kw": _num(a), "forecast_kw": _num(f), "last_week_kw": _num(w), "band": b}
                  for s, a, f, w, b in zip(idx.map(pd.Timestamp.isoformat), act, fc, lw, bands, strict=True)]
        kw = actual["kw_mean"]
        measured = kw.dropna()
        peak_at = None if measured.empty else pd.Timestamp(measured.idxmax()).isoformat()  # type: ignore[arg-type]
        return {
            "customer": customer, "date": day.isoformat(), "timezone": str(tz), "interval_minutes": 15,
            "points": points,
            "summary": {
                "kwh": _num(actual["kwh"].sum(min_count=1), 1),
                "peak_kw": _num(measured.max()) if not measured.empty else None, "peak_at": peak_at,
                "min_kw": _num(measured.min()) if not measured.empty else None,
                "mean_kw": _num(measured.mean()) if not measured.empty else None,
                "load_factor": _num(measured.mean() / measured.max()) if not measured.empty and measured.max() > 0
                else None,
                "missing_intervals": int(actual["missing"].sum()), "intervals": len(actual),
                "tariff": tariff.id if tariff else None,
            },
        }

    def warm(self, days: int) -> None:
        """Compute the last `days` day curves and the last two months of every customer ahead of the first user."""
        for c in self.gw.config.customers:
            today = datetime.now(ZoneInfo(c.timezone)).date()
            for back in range(days + 1):
                if self.gw.stopping.is_set():  # the gateway is shutting down: leave the store to close
                    return
                self.day_curve(c.id, today - timedelta(days=back))
            self.month_view_or_none(c.id, today.replace(day=1))
            self.month_view_or_none(c.id, (today.replace(day=1) - timedelta(days=1)).replace(day=1))

    def month_view_or_none(self, customer: str, month: date) -> dict[str, Any] | None:
        try:
            return self.month_view(customer, month)
        except UseCaseError:
            return None

    def month_view(self, customer: str, month: date) -> dict[str, Any]:
        tz = ZoneInfo(customer_config(self.gw, customer).timezone)
        nxt = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
        start, _ = day_bounds(str(month), tz)
        end, _ = day_bounds(str(nxt), tz)
        return self.cache.get(("month", customer, month), self._ttl(end),
                              lambda: self._month_view(customer, month, start, end, tz))

    def _month_view(self, customer: str, month: date, start: datetime, end: datetime, tz: ZoneInfo) -> dict[str, Any]:
        from reports.monthly import ReportError, month_figures

        frame = self.gw.query.customer_intervals(customer, start, end)
        cust = customer_config(self.gw, customer)
        try:
            fig = month_figures(frame, customer, cust.name or customer, month.strftime("%Y-%m"))
        except ReportError as exc:
            raise NoData(str(exc)) from None
        contract = contract_of(self.gw, customer)
        tariff = tariff_of(contract)
        out: dict[str, Any] = {
            "customer": customer, "month": month.strftime("%Y-%m"), "timezone": str(tz),
            "kwh": _num(fig.kwh, 1), "kvarh": _num(fig.kvarh, 1), "pf": fig.pf, "peak_kw": _num(fig.peak_kw),
            "peak_at": fig.peak_at, "load_factor": _num(fig.load_factor), "missing_intervals": fig.missing_intervals,
            "intervals": fig.intervals,
            # A day with nothing measured has no energy figure (not 0 kWh).
            "daily": [{"day": d, "kwh": None if r["peak_kw"] != r["peak_kw"] else _num(r["kwh"], 1),
                       "peak_kw": _num(r["peak_kw"]), "pf": _num(r["pf"]), "missing_intervals": int(r["missing"])}
                      for d, r in fig.daily.iterrows()],
            "tou": None, "basic_charge": None, "pf_adjustment": None, "currency": tariff.currency if tariff else None,
        }
        if tariff is not None:
            costs = energy_cost(frame["kwh"], tariff)
            out["tou"] = [{"band": str(b), "kwh": _num(r["kwh"], 1), "cost": _num(r["energy_cost"], 2)}
                          for b, r in costs.iterrows()]
            energy_total = float(costs["energy_cost"].iloc[-1])  # the `total` row
            if contract is not None and fig.peak_kw is not None:
                version = tariff.version_at(month)
                bc = basic_charges(version, contract.transformer_kva, fig.peak_kw, contract.contract_demand_kw,
                                   contract.hv_motors_kw)
                out["basic_charge"] = {"capacity": _num(bc.capacity, 2), "demand": _num(bc.demand, 2),
                                       "contract": _num(bc.contract, 2), "cheapest": bc.cheapest,
                                       "current_mode": contract.basic_charge_mode,
                                       "recommended_contract_kw": _num(bc.recommended_contract_kw, 1)}
                current = {"capacity": bc.capacity, "max_demand": bc.demand, "demand": bc.demand,
                           "contract_demand": bc.contract, "contract": bc.contract}.get(contract.basic_charge_mode)
                if fig.kwh > 0:
                    pf = monthly_pf(fig.kwh, fig.kvarh)
                    pct = pf_adjustment_pct(pf, contract.pf_standard)
                    base = energy_total + (current or 0.0)
                    out["pf_adjustment"] = {"pf": pf, "standard": contract.pf_standard, "percent": pct,
                                            "amount": _num(base * pct / 100, 2)}
        return out

    def series(self, scope: Scope, ident: str, first: str | date, last: str | date, freq: Freq) -> dict[str, Any]:
        """Interval series of a customer, site or meter over local days [first, last], each row with its status."""
        try:
            tz = self.gw.query.topology.tz_of(scope, ident)
        except QueryError as exc:
            raise NotFound(str(exc), scope) from None
        if not isinstance(first, date):
            first = parse_day(first, tz, "start")
        if not isinstance(last, date):
            last = parse_day(last, tz, "end")
        if last < first or (last - first).days > MAX_SERIES_DAYS - 1:
            raise BadInput(f"end must be within {MAX_SERIES_DAYS} days after start ({first}..{last})", "end")
        try:
            start, _ = day_bounds(str(first), tz)
            _, end = day_bounds(str(last), tz)
            frame = self.gw.query.series(scope, ident, start, end, freq)
        except QueryError as exc:
            raise NotFound(str(exc), scope) from None
        return {scope: ident, "timezone": str(tz), "freq": freq, "intervals": series_rows(frame)}

    def intervals(self, customer: str, first: date, last: date) -> pd.DataFrame:
        if last < first:
            raise BadInput(f"end {last} is before start {first}", "end")
        if (last - first).days >= MAX_EXPORT_DAYS:
            raise BadInput(f"at most {MAX_EXPORT_DAYS} days per export, asked {(last - first).days + 1}", "end")
        tz = ZoneInfo(customer_config(self.gw, customer).timezone)
        start, _ = day_bounds(str(first), tz)
        _, end = day_bounds(str(last), tz)
        return self.gw.query.customer_intervals(customer, start, end)


def series_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON rows of a query-layer series: numbers (None where unknown), the interval counts by status, the status."""
    rows = []
    for ts, r in frame.iterrows():
        row: dict[str, Any] = {"start": pd.Timestamp(ts).isoformat()}  # type: ignore[arg-type]
        row.update({k: _num(r[k], 4) for k in SERIES_NUMBERS})
        row.update({k: int(r[k]) for k in SERIES_COUNTS if k in frame.columns})
        row["missing"] = bool(r["missing"])
        row["status"] = str(r["status"]) if "status" in frame.columns else None
        rows.append(row)
    return rows
