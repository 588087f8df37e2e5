"""The figures every surface shows, computed in one place: day curves, interval series, month views, exports.

The API, the portal, the CLI, the reports and the scheduler's jobs all call `UseCases`; it takes typed inputs,
raises `gateway.usecases.errors` (only gateway/api turns them into HTTP) and owns the caching: results of past days
are kept (they no longer change), today's for a short time, so 50 users opening the same curve cost one query.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from crm_bridge.errors import CrmError, TariffError, TariffNotInForce
from crm_bridge.errors import NoData as CrmNoData
from crm_bridge.registry.models import Contract
from crm_bridge.registry.repo import contract_versions
from crm_bridge.services import ContractInputs
from crm_bridge.services.inputs import contract_in_force, priced_by_band
from crm_bridge.tariffs import MonthBill, MonthUsage, Tariff, month_bill, month_usage, span_figures
from crm_bridge.tariffs.bill import month_bounds
from crm_bridge.tariffs.model import next_month
from gateway.config import CustomerConfig, GatewayConfig
from gateway.directory import Directory, UnknownId
from gateway.query import Freq, QueryError, QueryService, Scope, day_bounds
from gateway.usecases.errors import BadInput, BeforeTariff, NoContract, NoData, NotFound, UseCaseError

T = TypeVar("T")


class Sources(Protocol):
    """What the use cases read: the config, the query layer, the registry; `stopping` ends background work.

    A running `gateway.runtime.Gateway` is one; the CLI makes `OfflineSources` from a config file.
    """

    config: GatewayConfig
    query: QueryService
    db: sessionmaker[Session]
    directory: Directory
    stopping: threading.Event


@dataclass
class OfflineSources:
    """Sources for one-shot commands: no collectors, no pipeline, just the stores."""

    config: GatewayConfig
    query: QueryService
    db: sessionmaker[Session]
    directory: Directory
    stopping: threading.Event = field(default_factory=threading.Event)
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


# The month view's money: TOU costs, the basic-charge modes compared (with the contract's terms), the PF adjustment,
# government funds and the total (the figures of crm_bridge's one month bill).
MONEY_FIELDS = ("tou", "basic_charge", "pf_adjustment", "government_funds", "total", "currency", "versions")


def without_money(view: dict[str, Any]) -> dict[str, Any]:
    """A copy of a month view without MONEY_FIELDS (the cached view itself is shared and stays whole)."""
    return {k: v for k, v in view.items() if k not in MONEY_FIELDS}


def customer_config(gw: Sources, customer: str) -> CustomerConfig:
    try:
        return gw.directory.customer(customer)
    except UnknownId as exc:
        raise NotFound(str(exc), "customer") from None


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


def contract_of(gw: Sources, customer: str, on: date | None = None, end: date | None = None) -> Contract | None:
    """The contract version that bills [on, end) (a month), or the day `on` (default: today, UTC), or None.

    The rule is `crm_bridge.services.inputs.contract_in_force`: the version in force on the first day.
    """
    with gw.db() as s:
        return contract_in_force(contract_versions(s, customer), on or datetime.now(UTC).date(), end)


def tariff_of(gw: Sources, contract: Contract | None) -> Tariff | None:
    """The tariff a contract is billed by, with every version; None when nothing prices it.

    Its versions are the shipped file's and those imported into the registry (`energy-gateway tariffs import`).
    """
    if contract is None:
        return None
    from gateway.usecases.errors import UseCaseError
    from gateway.usecases.tariffs import Tariffs

    try:
        with gw.db() as s:
            return Tariffs(s, lambda *_: None).effective(contract.tariff_id)
    except (TariffError, UseCaseError):
        return None


def _num(x: Any, digits: int = 3) -> float | None:
    if x is None:
        return None
    f = float(x)
    return None if f != f or f in (np.inf, -np.inf) else round(f, digits)


class UseCases:
    """Day curve, interval series, month view and exports of one gateway, with caching."""

    def __init__(self, gw: Sources) -> None:
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
        tariff = tariff_of(self.gw, contract_of(self.gw, customer, day))
        bands = (self._bands(tariff, pd.DatetimeIndex(actual.index), tz) if tariff else [None] * len(actual))
        # Last week's curve is laid over today's by position in the day (local wall clock).
        idx = pd.DatetimeIndex(actual.index)
        walls = idx.strftime("%H:%M")
        by_wall = pd.Series(last_week["kw_mean"].to_numpy(),
                            index=pd.DatetimeIndex(last_week.index).strftime("%H:%M"))
        lw = by_wall[~by_wall.index.duplicated()].reindex(walls).to_numpy(dtype=float)
        act = actual["kw_mean"].to_numpy(dtype=float)
        status = actual["status"].astype(str).tolist() if "status" in actual.columns else [None] * len(actual)
        fc = forecast["forecast"].reindex(idx).to_numpy(dtype=float) * 4
        points = [{"start": s, "actual_kw": _num(a), "status": st, "forecast_kw": _num(f), "last_week_kw": _num(w),
                   "band": b}
                  for s, a, st, f, w, b in zip(idx.map(pd.Timestamp.isoformat), act, status, fc, lw, bands,
                                               strict=True)]
        fig = span_figures(_rows(actual))
        counts = fig.intervals
        kw = actual["kw_mean"].dropna()
        return {
            "customer": customer, "date": day.isoformat(), "timezone": str(tz), "interval_minutes": 15,
            "points": points,
            "summary": {
                "kwh": _num(fig.energy_kwh, 1), "peak_kw": _num(fig.peak_kw),
                "peak_at": fig.peak_at.isoformat() if fig.peak_at else None,
                "min_kw": _num(kw.min()) if not kw.empty else None, "mean_kw": _num(fig.average_kw),
                "load_factor": _num(fig.load_factor), "pf": fig.pf,
                "measured_intervals": counts.measured, "estimated_intervals": counts.estimated,
                "missing_intervals": counts.missing, "pending_intervals": counts.pending, "intervals": counts.total,
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
        _, end = month_bounds(month, ZoneInfo(customer_config(self.gw, customer).timezone))
        return self.cache.get(("month", customer, month), self._ttl(end),
                              lambda: month_json(customer, *self.month_bill(customer, month)))

    def month_frame(self, customer: str, month: date) -> tuple[pd.DataFrame, ZoneInfo]:
        """The 15-min intervals of a local month of the customer, and its zone."""
        tz = ZoneInfo(customer_config(self.gw, customer).timezone)
        start, end = month_bounds(month, tz)
        return self.gw.query.customer_intervals(customer, start, end), tz

    def month_frames(self, customer: str, firsts: Sequence[date]) -> dict[date, pd.DataFrame]:
        """The 15-min intervals of several local months of the customer from one store read, each as month_frame's.

        The query layer reads boundaries beyond a range on both sides (a gap across its edges is estimated as a
        whole), so a month cut from a longer read holds the same intervals as a read of the month alone; one read
        instead of one per month is what makes a report's earlier months cheap.
        """
        tz = ZoneInfo(customer_config(self.gw, customer).timezone)
        bounds = {m: month_bounds(m, tz) for m in firsts}
        frame = self.gw.query.customer_intervals(customer, min(s for s, _ in bounds.values()),
                                                 max(e for _, e in bounds.values()))
        idx = pd.DatetimeIndex(frame.index)
        out: dict[date, pd.DataFrame] = {}
        for m, (start, end) in bounds.items():
            out[m] = frame.iloc[idx.searchsorted(start):idx.searchsorted(end)].copy()
        return out

    def month_bill(self, customer: str, month: date,
                   frame: pd.DataFrame | None = None) -> tuple[MonthUsage, MonthBill | None]:
        """The month's figures: crm_bridge's one month bill, or only its metered part without a contract.

        `frame`: the month's intervals when the caller has read them already (month_frame's or month_frames').
        """
        if frame is None:
            frame, tz = self.month_frame(customer, month)
        else:
            tz = ZoneInfo(customer_config(self.gw, customer).timezone)
        return self._month_figures(customer, month, frame, tz)

    def _month_figures(self, customer: str, month: date, frame: pd.DataFrame,
                       tz: ZoneInfo) -> tuple[MonthUsage, MonthBill | None]:
        contract = contract_of(self.gw, customer, month, next_month(month))
        tariff = tariff_of(self.gw, contract)
        bill: MonthBill | None = None
        usage: MonthUsage
        try:
            if contract is not None and tariff is not None:
                terms = ContractInputs.from_contract(contract, timezone=str(tz))
                usage = bill = month_bill(frame, terms, tariff, month, tz=tz)
            else:
                usage = month_usage(frame, month, tz)
        except CrmNoData as exc:
            raise NoData(str(exc)) from None
        except TariffNotInForce as exc:
            raise BeforeTariff(exc.tariff_id, exc.first_date, exc.asked) from None
        except CrmError as exc:
            raise NoContract(f"month {month:%Y-%m} of {customer}: {exc}") from None
        return usage, bill

    def day_cost(self, customer: str, day: date) -> tuple[float, str] | None:
        """The day's energy charge (each measured or estimated interval priced by its TOU band) and the currency.

        None without a contract on a shipped tariff, or on a day before the tariff's first version.
        """
        tariff = tariff_of(self.gw, contract_of(self.gw, customer, day))
        if tariff is None:
            return None
        tz = ZoneInfo(customer_config(self.gw, customer).timezone)
        start, end = day_bounds(str(day), tz)
        frame = self.gw.query.customer_intervals(customer, start, end)
        with_energy = frame["status"].isin(("measured", "estimated")) if "status" in frame.columns \
            else frame["kwh"].notna()
        try:
            _, cost = priced_by_band(frame["kwh"].where(with_energy), tariff, tz)
        except TariffNotInForce:
            return None
        return sum(cost.values()), tariff.currency

    def greenbutton(self, customer: str, first: date, last: date, money: bool = True,
                    currency: str | None = None) -> bytes:
        """Green Button (ESPI) XML of local days [first, last].

        Costs, and a UsageSummary per whole month from the one month bill, when `money` and the customer has a
        contract on a shipped tariff.
        """
        from reports.greenbutton import BandEnergy, BillSummary, GreenButtonError, export_espi, whole_months

        frame = self.intervals(customer, first, last)
        c = customer_config(self.gw, customer)
        tariff = tariff_of(self.gw, contract_of(self.gw, customer, first)) if money else None
        bills: list[BillSummary] | None = None
        if tariff is not None:
            bills = []
            for m in whole_months(frame):
                _, bill = self.month_bill(customer, m)
                if bill is None:
                    raise NoContract(f"no bill for {customer} {m:%Y-%m}")
                bills.append(BillSummary(
                    bill.start, bill.end, total=bill.total, kwh=bill.energy_kwh, peak_demand_kw=bill.peak_kw,
                    peak_demand_at=bill.peak_at, basic_charge=bill.basic_charge, pf_adjustment=bill.pf_adjustment,
                    government_funds=bill.government_funds,
                    energy_by_band=[BandEnergy(k, line.kwh, line.money) for k, line in bill.energy_by_band.items()]))
        try:
            return export_espi(frame, customer=customer, title=c.name or customer, tariff=tariff, bills=bills,
                               currency=None if tariff is not None else currency, timezone=c.timezone)
        except TariffNotInForce as exc:
            raise BeforeTariff(exc.tariff_id, exc.first_date, exc.asked) from None
        except GreenButtonError as exc:
            raise BadInput(f"green button export of {customer}: {exc}") from None

    @staticmethod
    def _bands(tariff: Tariff, index: pd.DatetimeIndex, tz: ZoneInfo) -> list[str | None]:
        try:
            return [str(b) for b in tariff.price_table(index, tz)["band"]]
        except TariffNotInForce:
            return [None] * len(index)  # a day before the tariff's first version: no bands to shade

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


def _rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The query layer's 15-min frame as the bill's rows: kwh and kvarh only where there is energy, and the status."""
    status = frame["status"] if "status" in frame.columns else pd.Series(
        np.where(frame["kwh"].notna(), "measured", "missing"), index=frame.index)
    energy = status.isin(("measured", "estimated"))
    return pd.DataFrame({"kwh": frame["kwh"].where(energy), "kvarh": frame["kvarh"].where(energy),
                         "status": status.astype(object)}, index=frame.index)


def month_json(customer: str, usage: MonthUsage, bill: MonthBill | None) -> dict[str, Any]:
    """The month view: crm_bridge's one month bill (or, without a contract, its metered part) as JSON."""
    counts = usage.intervals
    out: dict[str, Any] = {
        "customer": customer, "month": usage.month, "timezone": usage.timezone, "complete": usage.complete,
        "kwh": _num(usage.energy_kwh, 1), "kvarh": _num(usage.kvarh, 1), "pf": usage.pf,
        "peak_kw": _num(usage.peak_kw), "peak_at": usage.peak_at.isoformat(), "average_kw": _num(usage.average_kw),
        "load_factor": _num(usage.load_factor), "elapsed_hours": usage.elapsed_hours,
        "measured_intervals": counts.measured, "estimated_intervals": counts.estimated,
        "missing_intervals": counts.missing, "pending_intervals": counts.pending, "intervals": counts.total,
        "daily": [{"day": d.day.isoformat(), "kwh": _num(d.kwh, 1), "peak_kw": _num(d.peak_kw), "pf": d.pf,
                   "measured_intervals": d.measured, "estimated_intervals": d.estimated,
                   "missing_intervals": d.missing, "pending_intervals": d.pending} for d in usage.days],
        "tariff": None, "tou": None, "basic_charge": None, "pf_adjustment": None, "government_funds": None,
        "total": None, "currency": None, "versions": None,
    }
    if bill is None:
        return out
    b = bill.basic
    out.update({
        "tariff": bill.tariff_id, "currency": bill.currency,
        "tou": [{"band": band, "kwh": _num(line.kwh, 1), "cost": _num(line.money, 2)}
                for band, line in bill.energy_by_band.items()]
        + [{"band": "total", "kwh": _num(bill.energy_kwh, 1), "cost": _num(bill.energy_charge, 2)}],
        "basic_charge": {"capacity": _num(b.capacity, 2), "demand": _num(b.demand, 2), "contract": _num(b.contract, 2),
                         "cheapest": b.cheapest.value, "current_mode": b.mode.value, "amount": _num(b.amount, 2),
                         "capacity_kva": _num(b.capacity_kva, 1), "contract_kw": _num(b.contract_kw, 1),
                         "effective_contract_kw": _num(b.effective_contract_kw, 1),
                         "demand_limit_kw": _num(b.demand_limit_kw, 1), "excess_kw": _num(b.excess_kw, 1),
                         # C* = Pmax / the excess threshold: the contract this month's peak would just not exceed
                         "recommended_contract_kw": _num(bill.peak_kw * b.effective_contract_kw / b.demand_limit_kw, 1)
                         if b.demand_limit_kw > 0 else None},
        "pf_adjustment": None if bill.pf_adjustment_pct is None else {
            "pf": bill.pf, "standard": bill.pf_standard, "percent": bill.pf_adjustment_pct,
            "amount": _num(bill.pf_adjustment, 2)},
        "government_funds": _num(bill.government_funds, 2), "total": _num(bill.total, 2),
        "versions": [{"valid_from": v.valid_from.isoformat(), "first_day": v.first_day.isoformat(),
                      "last_day": v.last_day.isoformat(), "days": v.days} for v in bill.versions],
    })
    return out
