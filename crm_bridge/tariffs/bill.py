"""One month's bill from 15-min intervals: the only place peak, load factor, PF and money are computed.

Rules (DOMAIN.md §2; the regulations win where it summarises them):
- The month is the customer's local calendar month; every interval is priced on the local clock by the tariff
  version in force on its local day (a price change mid-month re-prices nothing before it).
- Interval status: measured and estimated intervals carry energy; missing ones (past, no value) and pending ones
  (not yet reached, or not yet reported by a live meter) count as neither energy nor zero. Without a `status`
  column an interval with a value is measured, one without is missing if it has ended by `now`, else pending.
- Peak demand: the largest 15-min demand (kWh x 4) of an interval with energy. Load factor: mean kW over the
  elapsed intervals with energy (not over pending or missing time) / peak kW.
- Basic charge (发改办价格〔2016〕1583号): capacity, actual max demand and contract demand, each version's monthly
  price x its days in the month / days in the month; the contract is raised to its 40 % floor first
  (crm_bridge.tariffs.contract). The mode in force is the contract's `basic_charge_mode`.
- PF (〔83〕水电财字第215号): kWh / sqrt(kWh^2 + kvarh^2) over the intervals with both, rounded half up to 0.01; its
  table's percentage applies to energy charge + basic charge, not to government funds.
- Total = energy charge + basic charge + PF adjustment + government funds. Money is not rounded here.
"""

from __future__ import annotations

import weakref
from datetime import date, datetime, timedelta, tzinfo
from typing import Protocol

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from crm_bridge.errors import NoData, ServiceError, TariffError
from crm_bridge.tariffs.billing import basic_charges
from crm_bridge.tariffs.contract import BasicChargeMode, effective_contract_kw
from crm_bridge.tariffs.model import Tariff, next_month, zone_of
from crm_bridge.tariffs.power_factor import monthly_pf, pf_adjustment_pct, pf_table

STATUSES = ("measured", "estimated", "missing", "pending")
WITH_ENERGY = ("measured", "estimated")
# Status ranks, the worst highest: a sum of meters is as good as its worst input.
RANK = {"measured": 0, "estimated": 1, "pending": 2, "missing": 3}
RANK_NAMES = np.array(["measured", "estimated", "pending", "missing"], dtype=object)
_Q_NS = 900 * 10**9
# Each live bill's priced rows by id(bill) (priced_rows): not a field, so bills compare, dump and pickle as before.
_ROWS: dict[int, pd.DataFrame] = {}


class ContractTerms(Protocol):
    """What a bill needs of a contract (services.ContractInputs, or a registry Contract row)."""

    @property
    def transformer_kva(self) -> float: ...

    @property
    def hv_motors_kw(self) -> float | None: ...

    @property
    def contract_demand_kw(self) -> float: ...

    @property
    def basic_charge_mode(self) -> str: ...

    @property
    def pf_standard(self) -> float: ...


class BandLine(BaseModel):
    """Energy and its money in one TOU band."""

    model_config = ConfigDict(frozen=True)
    kwh: float
    money: float


class IntervalCounts(BaseModel):
    """How many of the month's 15-min intervals are measured, estimated, missing and pending."""

    model_config = ConfigDict(frozen=True)
    measured: int
    estimated: int
    missing: int
    pending: int

    @property
    def total(self) -> int:
        return self.measured + self.estimated + self.missing + self.pending

    @property
    def with_energy(self) -> int:
        return self.measured + self.estimated


class BasicCharge(BaseModel):
    """The basic charge in each mode (prorated across versions) and the one in force."""

    model_config = ConfigDict(frozen=True)
    mode: BasicChargeMode
    amount: float
    capacity: float
    demand: float
    contract: float
    cheapest: BasicChargeMode
    capacity_kva: float  # transformer kVA + HV motor kW
    contract_kw: float  # as agreed
    effective_contract_kw: float  # raised to the floor when set below it (the version in force at month end)
    demand_limit_kw: float  # 1.05 x the effective contract: above it the excess is billed twice
    excess_kw: float  # peak above the limit


class VersionUse(BaseModel):
    """A tariff version used by the bill and the local days it covers."""

    model_config = ConfigDict(frozen=True)
    valid_from: date
    first_day: date
    last_day: date
    days: int


class DayFigures(BaseModel):
    """One local day of the month: energy, peak and PF by the same rules as the month."""

    model_config = ConfigDict(frozen=True)
    day: date
    kwh: float | None  # None: no interval with energy that day
    kvarh: float | None
    peak_kw: float | None
    pf: float | None
    measured: int
    estimated: int
    missing: int
    pending: int


class MonthUsage(BaseModel):
    """The month's metered figures, with or without a tariff: energy, peak, load factor, PF, interval statuses."""

    model_config = ConfigDict(frozen=True)
    month: str  # YYYY-MM
    timezone: str
    start: datetime
    end: datetime
    energy_kwh: float
    kvarh: float | None  # over the intervals with both kWh and kvarh
    peak_kw: float
    peak_at: datetime  # start of the 15-min window, local time
    average_kw: float  # over the elapsed intervals with energy
    load_factor: float | None
    elapsed_hours: float  # hours of measured and estimated intervals
    intervals: IntervalCounts
    pf: float | None  # None: no energy with kvarh
    complete: bool  # the month is over and no interval is missing or pending
    days: list[DayFigures]


class MonthBill(MonthUsage):
    """The month's figures and money, as every surface shows them."""

    tariff_id: str
    currency: str
    energy_by_band: dict[str, BandLine]  # dearest band first
    energy_charge: float
    basic: BasicCharge
    basic_charge: float
    pf_standard: float
    pf_adjustment_pct: float | None  # negative: a reward
    pf_adjustment: float  # money on energy + basic charge
    government_funds: float
    total: float
    versions: list[VersionUse]


def month_start(month: date | str) -> date:
    """The first day of `month` (a date in it, or "YYYY-MM" / "YYYY-MM-DD")."""
    if isinstance(month, str):
        try:
            parsed = date.fromisoformat(month if len(month) > 7 else f"{month}-01")
        except ValueError:
            raise ServiceError(f"month {month!r} is not YYYY-MM") from None
        return parsed.replace(day=1)
    if isinstance(month, datetime):
        return month.date().replace(day=1)
    return month.replace(day=1)


def local_midnight(day: date, zone: tzinfo | str) -> pd.Timestamp:
    """The start of a local day: the first of two midnights at a clock change, the next valid time when skipped."""
    return pd.Timestamp(day).tz_localize(zone, nonexistent="shift_forward", ambiguous=True)


def month_bounds(month: date | str, zone: tzinfo) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) of the local calendar month in `zone`."""
    first = month_start(month)
    nxt = next_month(first)
    return local_midnight(first, zone), local_midnight(nxt, zone)


def _now(now: datetime | None) -> pd.Timestamp:
    if now is None:
        return pd.Timestamp.now(tz="UTC")
    ts = pd.Timestamp(now)
    if ts.tz is None:
        raise ServiceError(f"`now` {now} must be timezone-aware")
    return ts


def local_zone(tariff: Tariff, contract: object | None = None, tz: str | tzinfo | None = None) -> tzinfo:
    """The zone a bill is made in: `tz`, else the contract's `timezone`, else the tariff's."""
    return tariff.local_zone(tz if tz is not None else getattr(contract, "timezone", None))


def status_ranks(status: np.ndarray, where: str) -> np.ndarray:
    """Status names as RANK (-1 where blank: None or NaN); ServiceError naming `where` and the first unknown one."""
    ranks = np.full(len(status), -1, dtype=np.int8)
    for name, r in RANK.items():
        ranks[status == name] = r
    unset = ranks < 0
    if unset.any():
        odd = unset & ~pd.isna(status)
        if odd.any():
            raise ServiceError(f"{where}: unknown interval status {status[odd][0]!r}; known: {', '.join(STATUSES)}")
    return ranks


class MonthGrid:
    """Every 15-min interval of one local month in a zone, and which of them have ended by `now` (default: wall clock).

    `place` puts a frame of intervals on it: the one place an interval's status and energy are decided for a month
    (month_intervals, the bill's rows, and the allocation's meters all go through it).
    """

    def __init__(self, month: date | str, zone: tzinfo, now: datetime | None = None) -> None:
        self.first = month_start(month)
        self.zone = zone
        self.label = f"{self.first:%Y-%m}"
        self.start, self.end = month_bounds(self.first, zone)
        self.index = pd.date_range(self.start, self.end, freq="15min", inclusive="left")
        self._ns = self.index.to_numpy(dtype="datetime64[ns]").view(np.int64)  # UTC instants
        self.ended = self._ns + _Q_NS <= _now(now).value

    def _on_grid(self, intervals: pd.DataFrame, where: str) -> pd.DataFrame:
        """The frame reindexed to the month (NaN rows where it has none); errors for times that are not the month's."""
        index = intervals.index
        if (isinstance(index, pd.DatetimeIndex) and index.tz is not None and len(index) == len(self._ns)
                and np.array_equal(index.to_numpy(dtype="datetime64[ns]").view(np.int64), self._ns)):
            return intervals  # already the month's intervals in order (the query layer's frames): nothing to check
        idx = pd.DatetimeIndex(index) if len(intervals) else self.index[:0]
        if idx.tz is None:
            raise TariffError(f"{self.label}: interval times are naive (no time zone); figures are made on the "
                              "customer's local clock, so give tz-aware times")
        idx = idx.tz_convert(self.zone)
        if idx.has_duplicates:
            raise ServiceError(f"{where}: interval {idx[idx.duplicated()][0]} appears more than once")
        off = ~idx.isin(self.index)
        if off.any():
            raise ServiceError(f"{where}: interval {idx[off][0]} is not a 15-min interval of {self.label} "
                               f"in {self.zone} ({self.start} to {self.end})")
        return intervals.set_axis(idx).reindex(self.index)

    def place(self, intervals: pd.DataFrame, where: str | None = None, *,
              kvarh: bool = True) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """kWh, kvarh (None unless asked; both NaN without energy) and the status rank (RANK) of every interval.

        Without a status (no column, or a blank one) an interval with a value is measured, one without is missing
        once it has ended, else pending; measured or estimated without a value is missing once ended, else pending;
        only measured and estimated intervals carry energy. `where` names the frame in errors (default "bill
        YYYY-MM"): TariffError for a naive index, ServiceError for a missing kwh column, intervals off the month's
        15-min grid, duplicated, or with an unknown status.
        """
        where = where or f"bill {self.label}"
        if "kwh" not in intervals.columns:
            raise ServiceError(f"{where}: the intervals lack column kwh")
        frame = self._on_grid(intervals, where)
        kwh = frame["kwh"].to_numpy(dtype=float)
        has_value = np.isfinite(kwh)
        if "status" in frame.columns:
            rank = status_ranks(frame["status"].to_numpy(dtype=object), where)
            rank[(rank < 0) & has_value] = RANK["measured"]
            void = (rank <= RANK["estimated"]) & ~has_value  # blank without a value, or said to have energy: none
        else:
            rank = np.zeros(len(kwh), dtype=np.int8)
            void = ~has_value
        rank[void] = np.where(self.ended[void], RANK["missing"], RANK["pending"])
        none = rank >= RANK["pending"]
        q = None
        if kvarh:
            q = (frame["kvarh"].to_numpy(dtype=float) if "kvarh" in frame.columns else np.full(len(kwh), np.nan))
            q = np.where(none, np.nan, q)
        return np.where(none, np.nan, kwh), q, rank


def month_intervals(intervals: pd.DataFrame, month: date | str, zone: tzinfo, *,
                    now: datetime | None = None) -> pd.DataFrame:
    """Every 15-min interval of the local month in `zone` with kwh, kvarh (NaN without energy) and its status.

    The rules are MonthGrid.place's: without a `status` column an interval with a value is measured, one without is
    missing once it has ended by `now` (default: the wall clock), else pending. Raises TariffError for a naive
    index, ServiceError for intervals off the month's 15-min grid, duplicated, or with an unknown status.
    """
    grid = MonthGrid(month, zone, now)
    kwh, kvarh, rank = grid.place(intervals)
    return pd.DataFrame({"kwh": kwh, "kvarh": kvarh, "status": RANK_NAMES[rank]}, index=grid.index)


def priced_intervals(intervals: pd.DataFrame, tariff: Tariff, month: date | str, *, tz: str | tzinfo | None = None,
                     now: datetime | None = None) -> pd.DataFrame:
    """Every 15-min interval of the local month with its status, price and money (the rows month_bill adds up).

    Columns: kwh and kvarh (NaN unless measured or estimated), status, band, price, funds (per kWh), money and
    funds_money (kWh x each; 0 without energy), valid_from (the version's start). Index: local interval starts.
    Raises TariffError for a naive index (or TariffNotInForce before the tariff's first version), ServiceError for
    intervals off the month's 15-min grid, duplicated, or with an unknown status.
    """
    zone = tariff.local_zone(tz)
    rows = month_intervals(intervals, month, zone, now=now)
    table = tariff.price_table(pd.DatetimeIndex(rows.index), zone)
    used = np.nan_to_num(rows["kwh"].to_numpy())
    price, funds = table["price"].to_numpy(), table["funds"].to_numpy()
    return rows.assign(band=table["band"].to_numpy(), price=price, funds=funds, money=used * price,
                       funds_money=used * funds, valid_from=table["valid_from"])


def _pf_of(kwh: np.ndarray, kvarh: np.ndarray) -> tuple[float | None, float | None]:
    both = np.isfinite(kwh) & np.isfinite(kvarh)
    if not both.any():
        return None, None
    p, q = float(kwh[both].sum()), float(kvarh[both].sum())
    return (monthly_pf(p, q) if p > 0 else None), q


def peak_demand(kwh: pd.Series) -> tuple[float, pd.Timestamp] | None:
    """The largest 15-min demand (kWh x 4) and its window start; None without energy. The rule bill and alerts share."""
    values = kwh.to_numpy(dtype=float)
    if not np.isfinite(values).any():
        return None
    k = int(np.nanargmax(values))
    return 4 * float(values[k]), pd.Timestamp(kwh.index[k])


def month_usage(intervals: pd.DataFrame, month: date | str, zone: str | tzinfo, *,
                now: datetime | None = None) -> MonthUsage:
    """The metered figures of `month` on the clock of `zone` (no tariff or contract needed).

    NoData for a month that has not begun or has no interval with energy.
    """
    local = zone_of(zone) if isinstance(zone, str) else zone
    first = month_start(month)
    start, clock = local_midnight(first, local), _now(now)
    if start >= clock:
        raise NoData(f"no data yet for {first:%Y-%m}: the month begins {start.isoformat()}")
    return _usage(month_intervals(intervals, first, local, now=clock.to_pydatetime()), first, local, clock)


class SpanFigures(BaseModel):
    """Energy, peak, load factor and PF of any span of intervals (a day, a month), by the bill's rules."""

    model_config = ConfigDict(frozen=True)
    energy_kwh: float | None  # None: no interval with energy
    kvarh: float | None
    peak_kw: float | None
    peak_at: datetime | None
    average_kw: float | None  # over the elapsed intervals with energy
    load_factor: float | None
    elapsed_hours: float
    intervals: IntervalCounts
    pf: float | None


def span_figures(rows: pd.DataFrame) -> SpanFigures:
    """The figures of `rows` (kwh, kvarh, status per 15-min interval, as month_intervals gives them)."""
    status = rows["status"].to_numpy()
    counts = IntervalCounts(**{s: int((status == s).sum()) for s in STATUSES})
    found = peak_demand(rows["kwh"])
    kwh, kvarh = rows["kwh"].to_numpy(dtype=float), rows["kvarh"].to_numpy(dtype=float)
    pf, kvarh_sum = _pf_of(kwh, kvarh)
    if found is None:
        return SpanFigures(energy_kwh=None, kvarh=kvarh_sum, peak_kw=None, peak_at=None, average_kw=None,
                           load_factor=None, elapsed_hours=0.0, intervals=counts, pf=None)
    peak_kw, peak_at = found
    energy_kwh = float(np.nansum(kwh))
    elapsed_hours = counts.with_energy / 4
    average_kw = energy_kwh / elapsed_hours
    return SpanFigures(energy_kwh=energy_kwh, kvarh=kvarh_sum, peak_kw=peak_kw, peak_at=peak_at.to_pydatetime(),
                       average_kw=average_kw, load_factor=average_kw / peak_kw if peak_kw > 0 else None,
                       elapsed_hours=elapsed_hours, intervals=counts, pf=pf)


def _usage(rows: pd.DataFrame, first: date, zone: tzinfo, clock: pd.Timestamp) -> MonthUsage:
    nxt = next_month(first)
    label = f"{first:%Y-%m}"
    start, end = local_midnight(first, zone), local_midnight(nxt, zone)
    span = span_figures(rows)
    counts = span.intervals
    if span.energy_kwh is None or span.peak_kw is None or span.peak_at is None or span.average_kw is None:
        raise NoData(f"no data for {label}: no interval with energy ({counts.missing} missing, "
                     f"{counts.pending} pending)")
    return MonthUsage(
        month=label, timezone=str(zone), start=start.to_pydatetime(), end=end.to_pydatetime(),
        energy_kwh=span.energy_kwh, kvarh=span.kvarh, peak_kw=span.peak_kw, peak_at=span.peak_at,
        average_kw=span.average_kw, load_factor=span.load_factor, elapsed_hours=span.elapsed_hours,
        intervals=counts, pf=span.pf,
        complete=bool(end <= clock and counts.missing == 0 and counts.pending == 0), days=_days(rows))


def month_bill(intervals: pd.DataFrame, contract: ContractTerms, tariff: Tariff, month: date | str, *,
               tz: str | tzinfo | None = None, now: datetime | None = None) -> MonthBill:
    """The bill of `month` from its 15-min `intervals` (kwh, optional kvarh and status; any tz-aware index).

    `contract`: transformer_kva, hv_motors_kw, contract_demand_kw, basic_charge_mode (any spelling
    BasicChargeMode.parse takes), pf_standard, and optionally timezone (the customer's zone). `tz` overrides the
    zone; without either the tariff's zone is the local clock. `now` (default: the wall clock) separates the past
    (missing) from the future (pending) where the frame has no status. NoData for a month that has not begun or
    has no interval with energy; TariffNotInForce for a month before the tariff's first version. The metered
    figures are `month_usage`'s, to the last digit.
    """
    zone = local_zone(tariff, contract, tz)
    mode = BasicChargeMode.parse(contract.basic_charge_mode)
    pf_table(contract.pf_standard)  # an unknown standard is refused whatever the month's PF
    first = month_start(month)
    start, clock = local_midnight(first, zone), _now(now)
    if start >= clock:
        raise NoData(f"no data yet for {first:%Y-%m}: the month begins {start.isoformat()}")
    rows = priced_intervals(intervals, tariff, first, tz=zone, now=clock.to_pydatetime())
    bill = _month_bill(rows, contract, tariff, mode, first, zone, clock)
    _ROWS[id(bill)] = rows
    weakref.finalize(bill, _ROWS.pop, id(bill), None)
    return bill


def priced_rows(bill: MonthBill) -> pd.DataFrame | None:
    """The priced_intervals rows that month_bill made `bill` of; None for a bill from elsewhere (JSON, a pickle).

    Kept while the bill lives, shared, not copied: do not change them.
    """
    return _ROWS.get(id(bill))


def _month_bill(rows: pd.DataFrame, contract: ContractTerms, tariff: Tariff, mode: BasicChargeMode, first: date,
                zone: tzinfo, clock: pd.Timestamp) -> MonthBill:
    nxt = next_month(first)
    usage = _usage(rows, first, zone, clock)
    peak_kw = usage.peak_kw
    hv = float(contract.hv_motors_kw or 0.0)
    energy_charge = float(rows["money"].sum())
    # bands, dearest first
    by_band = rows.groupby("band", sort=False).agg(kwh=("kwh", "sum"), money=("money", "sum"), price=("price", "max"))
    by_band = by_band.sort_values("price", ascending=False, kind="stable")
    bands = {str(b): BandLine(kwh=float(r["kwh"]), money=float(r["money"])) for b, r in by_band.iterrows()}
    # basic charge: each version's month charge x its days / days in the month
    last_day = nxt - timedelta(days=1)
    used = tariff.versions_between(first, last_day)
    n_days = (nxt - first).days
    charges = dict.fromkeys(BasicChargeMode, 0.0)
    for version, _, days in used:
        bc = basic_charges(version, contract.transformer_kva, peak_kw, contract.contract_demand_kw, hv)
        charges[BasicChargeMode.CAPACITY] += bc.capacity * days / n_days
        charges[BasicChargeMode.DEMAND] += bc.demand * days / n_days
        charges[BasicChargeMode.CONTRACT] += (bc.contract or 0.0) * days / n_days
    closing = used[-1][0]
    c_eff = effective_contract_kw(contract.contract_demand_kw, contract.transformer_kva, hv, closing)
    limit = closing.contract_excess_threshold * c_eff
    basic = BasicCharge(
        mode=mode, amount=charges[mode], capacity=charges[BasicChargeMode.CAPACITY],
        demand=charges[BasicChargeMode.DEMAND], contract=charges[BasicChargeMode.CONTRACT],
        cheapest=min(charges, key=lambda m: charges[m]), capacity_kva=contract.transformer_kva + hv,
        contract_kw=float(contract.contract_demand_kw), effective_contract_kw=c_eff, demand_limit_kw=limit,
        excess_kw=max(0.0, peak_kw - limit),
    )
    pf = usage.pf
    pct = pf_adjustment_pct(pf, contract.pf_standard) if pf is not None else None
    pf_money = (energy_charge + basic.amount) * pct / 100 if pct is not None else 0.0
    funds = float(rows["funds_money"].sum())
    return MonthBill(
        **usage.model_dump(), tariff_id=tariff.id, currency=tariff.currency, energy_by_band=bands,
        energy_charge=energy_charge, basic=basic, basic_charge=basic.amount, pf_standard=contract.pf_standard,
        pf_adjustment_pct=pct, pf_adjustment=pf_money, government_funds=funds,
        total=energy_charge + basic.amount + pf_money + funds,
        versions=[VersionUse(valid_from=v.valid_from, first_day=d0, last_day=d0 + timedelta(days=n - 1), days=n)
                  for v, d0, n in used],
    )


def _days(rows: pd.DataFrame) -> list[DayFigures]:
    idx = pd.DatetimeIndex(rows.index)
    days, which = np.unique(idx.tz_localize(None).normalize().to_numpy(), return_inverse=True)
    n = len(days)
    kwh, kvarh = rows["kwh"].to_numpy(), rows["kvarh"].to_numpy()
    status = rows["status"].to_numpy()
    has, both = np.isfinite(kwh), np.isfinite(kwh) & np.isfinite(kvarh)
    energy = np.bincount(which, np.where(has, kwh, 0.0), n)
    with_energy = np.bincount(which, has, n)
    p_both = np.bincount(which, np.where(both, kwh, 0.0), n)
    q_both = np.bincount(which, np.where(both, kvarh, 0.0), n)
    n_both = np.bincount(which, both, n)
    peak = np.full(n, -np.inf)
    np.maximum.at(peak, which[has], kwh[has])
    counts = {s: np.bincount(which, status == s, n).astype(int) for s in STATUSES}
    return [DayFigures(
        day=pd.Timestamp(d).date(), kwh=float(energy[k]) if with_energy[k] else None,
        kvarh=float(q_both[k]) if n_both[k] else None, peak_kw=4 * float(peak[k]) if with_energy[k] else None,
        pf=monthly_pf(float(p_both[k]), float(q_both[k])) if n_both[k] and p_both[k] > 0 else None,
        **{s: int(c[k]) for s, c in counts.items()},
    ) for k, d in enumerate(days)]

