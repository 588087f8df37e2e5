"""The account manager's portfolio page, in one pass: every account's tier, months, money at stake and desk counts.

The registry's counts come in a few grouped queries, the money from the one month bill (`UseCases.month_bill`) and
the one advice function (`gateway.usecases.accounts.open_advice_money`), kept in `PortfolioCache` so that a manager
with 200 accounts gets the page without 600 month bills per request.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from crm_bridge.desk.workflow import due
from crm_bridge.registry.models import (
    Alert,
    Contract,
    Customer,
    Interaction,
    Ticket,
    TierChange,
    TierRecord,
)
from crm_bridge.tariffs.bill import month_bounds
from gateway.usecases.accounts import TierChangeRow, _utc, month_before, open_advice_money
from gateway.usecases.errors import BadInput, BeforeTariff, UseCaseError
from gateway.usecases.figures import UseCases, customer_config

log = logging.getLogger(__name__)

SEVERITIES = ("critical", "warning", "info")


def advice_month(today: date) -> date:
    """The first day of the month the advice is drawn from (the desk's rule, `gateway.usecases.desk.advice_month`)."""
    from gateway.usecases.desk import advice_month as month_of_advice

    return date.fromisoformat(f"{month_of_advice(today)}-01")


# -- the portfolio's figures ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MonthFigure:
    """One account's month from the one month bill, rounded as the month view rounds it.

    `state`: ok (a bill), no_contract (energy only), pending (no data yet), before_tariff, computing (not yet known).
    """

    state: str
    kwh: float | None = None
    total: float | None = None
    currency: str | None = None


COMPUTING = MonthFigure("computing")


def month_figure(uc: UseCases, customer: str, first: date) -> MonthFigure:
    """The month's kWh and bill (to date for the current month) through `UseCases.month_bill`."""
    try:
        usage, bill = uc.month_bill(customer, first)
    except BeforeTariff:
        return MonthFigure("before_tariff")
    except UseCaseError:  # no data in the month (yet)
        return MonthFigure("pending")
    kwh = round(float(usage.energy_kwh), 1)
    if bill is None:
        return MonthFigure("no_contract", kwh)
    return MonthFigure("ok", kwh, round(float(bill.total), 2), bill.currency)


@dataclass
class _Entry:
    value: Any
    made: float  # time.monotonic() when computed
    fingerprint: float | None = None  # closed months: the readings it was computed from (see PortfolioCache)
    terms: Hashable = None  # the account's contract terms it was computed with
    checked: float = 0.0


class PortfolioCache:
    """The portfolio's per-account figures, kept between requests.

    - This month's figures (to date) are recomputed after CURRENT_TTL_S (a new 15-min interval closes every 15
      minutes; recomputing 200 month bills every 30 s, as the month view does for one, would take a core).
    - A closed month's figures stay until a reading arrives for it: every CLOSED_RECHECK_S the number of stored
      energy and power readings of each account's meters in the month is counted (one store query per point for
      all accounts of a time zone) and a month whose count changed is recomputed. A late reading shows within
      CLOSED_RECHECK_S. (Writes are idempotent, so the count grows exactly when a reading is new.)
    - Every figure of an account is recomputed at once when its contracts change (a new version, a corrected term:
      the caller passes each account's contract terms, read in one query).
    - Open advice money is recomputed after ADVICE_TTL_S (running every service of 200 accounts is minutes of work).
    Stale entries are served while one background thread recomputes them; a page waits only for figures never
    computed, and for those only SYNC_BUDGET_S (the rest show as being computed and fill in on a later load).
    """

    CURRENT_TTL_S = 300.0
    CLOSED_RECHECK_S = 300.0
    ADVICE_TTL_S = 900.0
    SYNC_BUDGET_S = 5.0

    def __init__(self, uc: UseCases) -> None:
        self.uc = uc
        self._data: dict[tuple[str, str, date], _Entry] = {}
        self._terms: dict[str, Hashable] = {}  # each account's contract terms at the last request
        self._lock = threading.Lock()
        self._refreshing = False
        self.refresher: threading.Thread | None = None  # the last background refresh (tests join it)

    # The fingerprint: how many good readings the account's meters hold in the month.
    def _fingerprints(self, keys: Sequence[tuple[str, date]]) -> dict[tuple[str, date], float]:
        from collectors.reading import (
            ACTIVE_ENERGY_IMPORT_KWH,
            ACTIVE_POWER_KW,
            REACTIVE_ENERGY_IMPORT_KVARH,
            REACTIVE_POWER_KVAR,
        )

        topo, store = self.uc.gw.query.topology, self.uc.gw.query.store
        groups: dict[tuple[str, date], list[str]] = {}
        for customer, first in keys:
            groups.setdefault((customer_config(self.uc.gw, customer).timezone, first), []).append(customer)
        out: dict[tuple[str, date], float] = {}
        for (zone, first), customers in groups.items():
            meters = {c: topo.meters_of("customer", c) for c in customers}
            start, end = month_bounds(first, ZoneInfo(zone))
            every = sorted({m for ms in meters.values() for m in ms})
            counts: dict[str, float] = {}
            # every point the month's figures are made of: the registers, and power where a meter has no register
            for point in (ACTIVE_ENERGY_IMPORT_KWH, REACTIVE_ENERGY_IMPORT_KVARH, ACTIVE_POWER_KW, REACTIVE_POWER_KVAR):
                per_meter = store.buckets(every, point, int(start.timestamp()) * 10**9, int(end.timestamp()) * 10**9,
                                          900, "count").sum()
                for m in every:
                    counts[m] = counts.get(m, 0.0) + float(per_meter.get(m, 0.0))
            for c, ms in meters.items():
                out[(c, first)] = sum(counts[m] for m in ms)
        return out

    def _stale(self, kind: str, e: _Entry, closed: bool, now: float) -> bool:
        if kind == "advice":
            return now - e.made > self.ADVICE_TTL_S
        if closed:
            return now - e.checked > self.CLOSED_RECHECK_S
        return now - e.made > self.CURRENT_TTL_S

    def get(self, wanted: Sequence[tuple[str, str, date, bool]],
            terms: Mapping[str, Hashable] | None = None) -> dict[tuple[str, str, date], Any]:
        """Values for (kind, customer, month, closed) keys; kind is "month" (MonthFigure) or "advice" (money).

        COMPUTING stands for a value not computed yet. `terms`: each account's contract terms; a value computed
        with other terms is not served.
        """
        now = time.monotonic()
        out: dict[tuple[str, str, date], Any] = {}
        missing, stale = [], []
        with self._lock:
            self._terms.update(terms or {})
            for kind, customer, first, closed in wanted:
                e = self._data.get((kind, customer, first))
                if e is not None and e.terms != self._terms.get(customer):
                    e = None
                if e is None:
                    missing.append((kind, customer, first, closed))
                else:
                    out[(kind, customer, first)] = e.value
                    if self._stale(kind, e, closed, now):
                        stale.append((kind, customer, first, closed))
        later = []
        closed_months = [(c, m) for kind, c, m, closed in missing if kind == "month" and closed]
        prints = self._fingerprints(closed_months) if closed_months else {}  # one count for all of them
        # The month figures first: they are what the page is about, and advice reads the months before.
        for key in sorted(missing, key=lambda k: k[0] != "month"):
            if time.monotonic() - now < self.SYNC_BUDGET_S:
                out[key[:3]] = self._compute(*key, prints.get((key[1], key[2])))
            else:
                later.append(key)
                out[key[:3]] = COMPUTING
        if stale or later:
            self._refresh_in_background(stale + later)
        return out

    def _compute(self, kind: str, customer: str, first: date, closed: bool, fingerprint: float | None = None) -> Any:
        # Counted before the bill is made: a reading that lands in between makes the next check recompute.
        if closed and kind == "month" and fingerprint is None:
            fingerprint = self._fingerprints([(customer, first)])[(customer, first)]
        terms = self._terms.get(customer)
        value = (month_figure(self.uc, customer, first) if kind == "month"
                 else open_advice_money(self.uc, customer, first))
        made = time.monotonic()
        with self._lock:
            self._data[(kind, customer, first)] = _Entry(value, made, fingerprint, terms, made)
        return value

    def _refresh_in_background(self, keys: list[tuple[str, str, date, bool]]) -> None:
        with self._lock:
            if self._refreshing:
                return
            self._refreshing = True
        self.refresher = threading.Thread(target=self._refresh, args=(keys,), name="portfolio-refresh", daemon=True)
        self.refresher.start()

    def _refresh(self, keys: list[tuple[str, str, date, bool]]) -> None:
        try:
            closed = [(c, m) for kind, c, m, is_closed in keys if kind == "month" and is_closed]
            prints = self._fingerprints(closed) if closed else {}
            for kind, customer, first, is_closed in keys:
                if self.uc.gw.stopping.is_set():
                    return
                e = self._data.get((kind, customer, first))
                if e is not None and kind == "month" and is_closed and prints.get((customer, first)) == e.fingerprint \
                        and e.terms == self._terms.get(customer):
                    e.checked = time.monotonic()  # no new reading: the bill stands
                    continue
                self._compute(kind, customer, first, is_closed, prints.get((customer, first)))
        except Exception:  # a background refresh must not die silently; the next page load tries again
            log.exception("portfolio figures: background refresh failed")
        finally:
            with self._lock:
                self._refreshing = False


_CACHES: weakref.WeakKeyDictionary[UseCases, PortfolioCache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def portfolio_cache(uc: UseCases) -> PortfolioCache:
    """The one PortfolioCache of a UseCases (of a running gateway)."""
    with _CACHES_LOCK:
        cache = _CACHES.get(uc)
        if cache is None:
            cache = _CACHES[uc] = PortfolioCache(uc)
        return cache


@dataclass
class AccountRow:
    """One account of the portfolio page."""

    customer: str
    name: str
    timezone: str
    tier: str | None = None
    tier_change: TierChangeRow | None = None
    this_month: MonthFigure = COMPUTING
    last_month: MonthFigure = COMPUTING
    last_year: MonthFigure = COMPUTING
    money_at_stake: float | None = None
    money_computing: bool = False
    alerts: dict[str, int] = field(default_factory=dict)  # severity -> open alerts
    overdue_requests: int = 0
    satisfaction: float | None = None
    ratings: int = 0
    days_since_visit: int | None = None

    @property
    def open_alerts(self) -> int:
        return sum(self.alerts.values())

    @property
    def computing(self) -> bool:
        """Some figure of the account is not computed yet."""
        return self.money_computing or "computing" in (self.this_month.state, self.last_month.state,
                                                       self.last_year.state)

    @property
    def currency(self) -> str | None:
        return self.this_month.currency or self.last_month.currency or self.last_year.currency


def portfolio_rows(uc: UseCases, customers: Sequence[str], now: datetime | None = None) -> list[AccountRow]:
    """Every account among `customers` (configured ids) with its portfolio figures, in one pass.

    The registry's part (tier and its last change, open alerts by severity, overdue requests, mean rating, last
    visit) comes from one grouped query each; the money from PortfolioCache.
    """
    now = now or datetime.now(UTC)
    rows = {c: AccountRow(c, customer_config(uc.gw, c).name or c, customer_config(uc.gw, c).timezone)
            for c in customers}
    if not rows:
        return []
    codes = list(rows)
    terms: dict[str, list[tuple[Any, ...]]] = {}
    with uc.gw.db() as s:
        ids = dict(s.execute(select(Customer.id, Customer.code).where(Customer.code.in_(codes))).all())
        for rec in s.scalars(select(TierRecord).where(TierRecord.customer_id.in_(list(ids)))):
            rows[ids[rec.customer_id]].tier = rec.effective
        last_ids = select(func.max(TierChange.id)).where(TierChange.customer_id.in_(list(ids))) \
            .group_by(TierChange.customer_id)
        for ch in s.scalars(select(TierChange).where(TierChange.id.in_(last_ids))):
            rows[ids[ch.customer_id]].tier_change = TierChangeRow.of(ch)
        for code, severity, n in s.execute(select(Alert.customer_code, Alert.severity, func.count(Alert.id))
                                           .where(Alert.customer_code.in_(codes), Alert.status != "resolved")
                                           .group_by(Alert.customer_code, Alert.severity)):
            rows[code].alerts[severity] = n
        for t in s.scalars(select(Ticket).where(Ticket.customer_id.in_(list(ids)),
                                                Ticket.status.in_(("new", "acknowledged", "in_progress")))):
            rows[ids[t.customer_id]].overdue_requests += due(t, now).overdue
        for cid, mean, n in s.execute(select(Ticket.customer_id, func.avg(Ticket.satisfaction),
                                             func.count(Ticket.satisfaction))
                                      .where(Ticket.customer_id.in_(list(ids)), Ticket.satisfaction.is_not(None))
                                      .group_by(Ticket.customer_id)):
            rows[ids[cid]].satisfaction, rows[ids[cid]].ratings = float(mean), int(n)
        for cid, *k in s.execute(select(Contract.customer_id, Contract.id, Contract.valid_from, Contract.valid_to,
                                        Contract.transformer_kva, Contract.hv_motors_kw, Contract.contract_demand_kw,
                                        Contract.basic_charge_mode, Contract.pf_standard, Contract.bill_threshold,
                                        Contract.tariff_id)
                                 .where(Contract.customer_id.in_(list(ids))).order_by(Contract.id)):
            terms.setdefault(ids[cid], []).append(tuple(k))
        for cid, at in s.execute(select(Interaction.customer_id, func.max(Interaction.at))
                                 .where(Interaction.customer_id.in_(list(ids)), Interaction.channel == "visit")
                                 .group_by(Interaction.customer_id)):
            local = ZoneInfo(rows[ids[cid]].timezone)
            rows[ids[cid]].days_since_visit = (now.astimezone(local).date() - _utc(at).astimezone(local).date()).days
    wanted: list[tuple[str, str, date, bool]] = []
    months: dict[str, tuple[date, date, date, date]] = {}
    for c, row in rows.items():
        today = now.astimezone(ZoneInfo(row.timezone)).date()
        first = today.replace(day=1)
        months[c] = (first, month_before(first), first.replace(year=first.year - 1), advice_month(today))
        wanted += [("month", c, months[c][0], False), ("month", c, months[c][1], True),
                   ("month", c, months[c][2], True), ("advice", c, months[c][3], months[c][3] < first)]
    got = portfolio_cache(uc).get(wanted, {c: tuple(terms.get(c, ())) for c in rows})
    for c, row in rows.items():
        this, before, year_ago, advice = months[c]
        row.this_month, row.last_month = got[("month", c, this)], got[("month", c, before)]
        row.last_year = got[("month", c, year_ago)]
        money = got[("advice", c, advice)]
        row.money_computing = money is COMPUTING
        row.money_at_stake = None if money is COMPUTING else money
    return list(rows.values())


# The portfolio page's sort keys; accounts without the figure go last whichever way.
SORTS: dict[str, Callable[[AccountRow], Any]] = {
    "name": lambda r: r.name.casefold(),
    "tier": lambda r: r.tier,
    "kwh": lambda r: r.this_month.kwh,
    "bill": lambda r: r.this_month.total,
    "last_month": lambda r: r.last_month.total,
    "last_year": lambda r: r.last_year.total,
    "money": lambda r: r.money_at_stake,
    "alerts": lambda r: (r.alerts.get("critical", 0), r.alerts.get("warning", 0), r.open_alerts),
    "overdue": lambda r: r.overdue_requests,
    "satisfaction": lambda r: r.satisfaction,
    "visit": lambda r: r.days_since_visit,
}


def sort_and_filter(rows: list[AccountRow], sort: str = "name", descending: bool = False, q: str = "",
                    tier: str = "", attention: bool = False) -> list[AccountRow]:
    """The rows to show, sorted by `sort` (one of SORTS).

    Kept: those whose name or id holds `q`, of `tier` ("none": untiered), and with open alerts or overdue requests
    when `attention`.
    """
    if sort not in SORTS:
        raise BadInput(f"sort: {sort!r} is not one of {', '.join(SORTS)}", where="sort")
    needle = q.strip().casefold()
    kept = [r for r in rows
            if (not needle or needle in r.name.casefold() or needle in r.customer.casefold())
            and (not tier or (r.tier or "none") == tier)
            and (not attention or r.open_alerts > 0 or r.overdue_requests > 0)]
    key = SORTS[sort]
    known = sorted((r for r in kept if key(r) is not None), key=key, reverse=descending)
    return known + sorted((r for r in kept if key(r) is None), key=lambda r: r.name.casefold())


__all__ = ["COMPUTING", "SORTS", "AccountRow", "MonthFigure", "PortfolioCache", "advice_month", "month_before",
           "month_figure", "portfolio_cache", "portfolio_rows", "sort_and_filter"]
