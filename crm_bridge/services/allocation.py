"""Cost allocation of one month bill to sites, lines and cost centres, adding up to the bill to the cent.

Inputs: the month bill (crm_bridge.tariffs.bill.month_bill) and the rows it adds up (`priced_rows(bill)`, or
`priced_intervals` on the same intervals), each cost centre's virtual meter (versioned formulas over meter ids) and
the meters' 15-min intervals, put on the month's grid by the bill's own rules (`meter_grids`: MonthGrid.place).
Nothing is re-priced: every interval keeps the band and price the bill gave it.

- **Virtual meters.** `main - sub1 - sub2`, `a + b`: meter ids joined by `+` or `-` with spaces around them (ids may
  contain `-`). Evaluated per interval with the version in force on the interval's local day. An interval whose
  inputs are not all measured takes the worst status (missing > pending > estimated > measured); one with an input
  missing or pending has no energy, and the answer names the meter and its intervals.
- **Unmetered and losses** (`RESIDUAL`) is its own line: per interval the bill's energy minus the cost centres'
  energy, including the energy of a cost centre whose inputs are missing (that interval of the residual is then
  missing). Negative residuals are reported (a meter error), never clipped.
- **Money.** Energy charge per TOU band and government funds: each line's interval energy x the interval's price
  (the bill's own versions, so a price change mid-month is followed). Basic charge and PF adjustment: by the rule
  (`kwh`: month kWh; `coincident_peak`: energy in the bill's peak interval; `fixed`: the customer's shares).
- **Cents.** The bill's total is rounded to the cent as the month view shows it (Python's `round`, i.e. half-even on
  the exact binary value); its lines are rounded the same way and a cent the lines' rounding gains or loses is moved
  by largest remainder. Each line is then split over the cost centres by largest remainder in exact fractions, so
  every element and the whole add up to the bill's cents exactly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from crm_bridge.errors import CrmError, ServiceError
from crm_bridge.tariffs.bill import RANK, IntervalCounts, MonthBill, MonthGrid, status_ranks

RESIDUAL = "UNMETERED"  # the code of the "unmetered and losses" line
KINDS = ("site", "line", "cost_centre")
ELEMENTS_FIXED = ("basic_charge", "pf_adjustment", "government_funds")
_METER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
_CENT = Decimal("0.01")
_LISTED = 20  # interval starts listed per missing meter (the count is always whole)


class AllocationError(ServiceError):
    """Allocation inputs that do not fit: a bad formula, unknown shares, rows that are not the bill's."""


class Rule(StrEnum):
    KWH = "kwh"
    COINCIDENT_PEAK = "coincident_peak"
    FIXED = "fixed"


@dataclass(frozen=True)
class Formula:
    """A parsed virtual meter: (sign, meter id) terms."""

    text: str
    terms: tuple[tuple[int, str], ...]

    @property
    def meters(self) -> list[str]:
        return sorted({m for _, m in self.terms})


def parse_formula(text: str) -> Formula:
    """`a + b - c` into signed terms; AllocationError naming the token and its position when it is not one."""
    tokens = text.split()
    if not tokens:
        raise AllocationError("formula is empty: give meter ids joined by ' + ' or ' - '")
    terms: list[tuple[int, str]] = []
    sign, want_meter = 1, True
    for k, tok in enumerate(tokens, start=1):
        if want_meter:
            if tok in ("+", "-") and k == 1:
                sign = -1 if tok == "-" else 1
                continue
            if not _METER.match(tok) or len(tok) > 128:
                raise AllocationError(f"formula token {k} {tok!r} is not a meter id (operators need spaces: "
                                      "'main - sub1')")
            terms.append((sign, tok))
            want_meter = False
        else:
            if tok not in ("+", "-"):
                raise AllocationError(f"formula token {k} {tok!r}: expected '+' or '-' between meter ids")
            sign, want_meter = (1 if tok == "+" else -1), True
    if want_meter:
        raise AllocationError(f"formula {text!r} ends with an operator")
    return Formula(" ".join(tokens), tuple(terms))


@dataclass(frozen=True)
class FormulaVersion:
    formula: Formula
    valid_from: date
    valid_to: date | None = None  # first day it no longer holds


@dataclass(frozen=True)
class CostCentreDef:
    code: str
    name: str
    kind: str
    versions: tuple[FormulaVersion, ...]


@dataclass(frozen=True)
class RuleDef:
    rule: Rule
    shares: Mapping[str, Decimal]  # fixed only: code -> share, adding up to 1

    def check(self, codes: Sequence[str]) -> None:
        """AllocationError naming the share at fault (fixed: known codes, not negative, adding up to 1)."""
        if self.rule is not Rule.FIXED:
            return
        known = set(codes) | {RESIDUAL}
        for code, share in self.shares.items():
            if code not in known:
                raise AllocationError(f"shares.{code}: no cost centre {code!r} (known: {', '.join(sorted(known))})")
            if share < 0:
                raise AllocationError(f"shares.{code}: {share} is negative")
        total = sum(self.shares.values(), Decimal(0))
        if total != 1:
            raise AllocationError(f"shares: add up to {total}, not 1")


class MissingInput(BaseModel):
    """A meter of a cost centre's formula without energy in intervals where the bill has energy."""

    model_config = ConfigDict(frozen=True)
    cost_centre: str
    meter: str
    status: str  # missing, or pending
    intervals: int
    first: datetime
    last: datetime
    starts: list[datetime]  # the first _LISTED of them


class LineMoney(BaseModel):
    model_config = ConfigDict(frozen=True)
    element: str  # energy_<band>, basic_charge, pf_adjustment, government_funds
    kwh: float | None  # energy elements: the kWh the money is for
    amount: Decimal


class AllocationLine(BaseModel):
    """One cost centre (or the unmetered-and-losses residual): its energy, interval statuses and money."""

    model_config = ConfigDict(frozen=True)
    code: str
    name: str
    kind: str  # site, line, cost_centre or residual
    formulas: list[str]  # the versions used this month
    kwh: float
    intervals: IntervalCounts
    share: Decimal  # of the basic charge and PF adjustment, by the rule (4 decimals, shown)
    money: list[LineMoney]
    total: Decimal


class NegativeResidual(BaseModel):
    model_config = ConfigDict(frozen=True)
    intervals: int
    kwh: float  # the negative energy summed
    first: datetime


class Allocation(BaseModel):
    """The month bill split to cost centres; `lines` include the residual, and everything adds up to `total`."""

    model_config = ConfigDict(frozen=True)
    month: str
    currency: str
    rule: Rule
    shares: dict[str, Decimal]  # the weights used for basic charge and PF adjustment, per line
    bill_lines: dict[str, Decimal]  # element -> the bill's cents
    total: Decimal  # the bill's total to the cent
    bill_kwh: float
    lines: list[AllocationLine]
    missing: list[MissingInput]
    negative_residual: NegativeResidual | None
    rounding: list[str]  # bill lines a cent was moved to or from so the lines add up to the rounded total


def cents(x: float) -> Decimal:
    """A float amount to the cent exactly as round(x, 2) gives it (the month view's rule)."""
    return Decimal(repr(round(float(x), 2))).quantize(_CENT)


def _integers(weights: Sequence[Fraction]) -> list[int]:
    """Weights as integers over their common denominator (floats' denominators are powers of two: cheap)."""
    common = math.lcm(*(w.denominator for w in weights)) if weights else 1
    return [w.numerator * (common // w.denominator) for w in weights]


def apportion(total: int, weights: Sequence[Fraction]) -> list[int]:
    """`total` (whole units, e.g. cents) split by `weights` (signed) so the parts add up to `total` exactly.

    Each part is the floor of its exact share, and the units left go to the largest remainders (earliest first on
    a tie). All-zero weights give everything to the last part (the residual line). Exact integer arithmetic.
    """
    n = len(weights)
    if n == 0:
        raise AllocationError("nothing to share among")
    ints = _integers(weights)
    w_sum = sum(ints)
    if w_sum == 0:
        return [0] * (n - 1) + [total]
    if w_sum < 0:
        ints, w_sum = [-w for w in ints], -w_sum
    split = [divmod(total * w, w_sum) for w in ints]  # floor and remainder (0 <= r < w_sum)
    parts = [q for q, _ in split]
    left = total - sum(parts)
    order = sorted(range(n), key=lambda i: (-split[i][1], i))
    for i in order[:left]:
        parts[i] += 1
    return parts


def shares_shown(weights: Sequence[Fraction]) -> list[Decimal]:
    """Each weight's share of their sum to 4 decimals (all to the last when they add up to nothing)."""
    ints = _integers(weights)
    w_sum = sum(ints)
    if w_sum == 0:
        return [Decimal(0)] * (len(ints) - 1) + [Decimal(1)]
    # round half up on the exact ratio, in integers
    return [Decimal((2 * 10_000 * w + w_sum) // (2 * w_sum)).scaleb(-4) for w in ints]


def bill_cents(bill: MonthBill) -> tuple[dict[str, Decimal], Decimal, list[str]]:
    """The bill's lines and total in cents; lines adjusted by largest remainder to add up to the rounded total."""
    exact = {f"energy_{b}": line.money for b, line in bill.energy_by_band.items()}
    exact |= {"basic_charge": bill.basic_charge, "pf_adjustment": bill.pf_adjustment,
              "government_funds": bill.government_funds}
    total = cents(bill.total)
    lines = {k: cents(v) for k, v in exact.items()}
    gap = int((total - sum(lines.values(), Decimal(0))) / _CENT)
    moved: list[str] = []
    if gap:
        # the cent goes to the line whose rounding lost most in the direction needed
        step = 1 if gap > 0 else -1
        error = {k: (Fraction(exact[k]) - Fraction(lines[k])) * step for k in lines}
        for k in sorted(lines, key=lambda k: -error[k])[:abs(gap)]:
            lines[k] += step * _CENT
            moved.append(k)
    return lines, total, moved


def ranks_of(status: np.ndarray, where: str) -> np.ndarray:
    """Status names as ranks (RANK); AllocationError naming `where` and the first unknown or blank status."""
    try:
        ranks = status_ranks(status, where)
    except ServiceError as exc:
        raise AllocationError(str(exc)) from None
    if (ranks < 0).any():
        raise AllocationError(f"{where}: unknown interval status {status[ranks < 0][0]!r}")
    return ranks


MeterGrid = tuple[np.ndarray, np.ndarray]  # kWh (NaN without energy) and status rank of each interval of the month


def meter_grids(frames: Mapping[str, pd.DataFrame], month: date | str, zone: tzinfo,
                now: datetime) -> dict[str, MeterGrid]:
    """Each meter's intervals on the month's grid as month_intervals makes them (MonthGrid.place), as arrays.

    AllocationError naming the meter for a frame the month's rules refuse (an unknown status, times off the grid).
    """
    grid = MonthGrid(month, zone, now)
    out: dict[str, MeterGrid] = {}
    for meter, frame in frames.items():
        try:
            kwh, _, rank = grid.place(frame, f"meter {meter}", kvarh=False)
        except CrmError as exc:  # a tariff's TariffError (a naive index) too: all bad intervals of this meter
            raise AllocationError(str(exc)) from None
        out[meter] = (kwh, rank)
    return out


def month_grid_status(frame: pd.DataFrame, where: str = "intervals") -> tuple[np.ndarray, np.ndarray]:
    """The kWh (NaN without energy) and status ranks of a month_intervals frame."""
    ranks = ranks_of(frame["status"].to_numpy(dtype=object), where)
    kwh = frame["kwh"].to_numpy(dtype=float).copy()
    kwh[ranks >= RANK["pending"]] = np.nan
    return kwh, ranks


@dataclass
class _Evaluated:
    kwh: np.ndarray  # NaN where not known
    rank: np.ndarray
    formulas: list[str]
    missing: list[MissingInput]


class _Days:
    """The local day of each interval of the month, made only when a formula version starts or ends within it."""

    def __init__(self, index: pd.DatetimeIndex) -> None:
        self.index = index
        self.first: date = index[0].date()
        self.last: date = index[-1].date()
        self._days: np.ndarray | None = None

    def within(self, v: FormulaVersion) -> np.ndarray | bool:
        """Where `v` holds: True for the whole month, False for none of it, else a mask."""
        if v.valid_from <= self.first and (v.valid_to is None or v.valid_to > self.last):
            return True
        if v.valid_from > self.last or (v.valid_to is not None and v.valid_to <= self.first):
            return False
        if self._days is None:
            self._days = self.index.tz_localize(None).normalize().to_numpy().astype("datetime64[D]")
        sel = self._days >= np.datetime64(v.valid_from, "D")
        if v.valid_to is not None:
            sel &= self._days < np.datetime64(v.valid_to, "D")
        return sel


def evaluate(cc: CostCentreDef, days: _Days, meters: Mapping[str, tuple[np.ndarray, np.ndarray]],
             with_energy: np.ndarray) -> _Evaluated:
    """A cost centre's energy per interval of the month, each interval by the formula version of its local day."""
    index = days.index
    n = len(index)
    kwh = np.zeros(n)
    rank = np.zeros(n, dtype=np.int8)
    covered = np.zeros(n, dtype=bool)
    used: list[str] = []
    lacking: dict[str, np.ndarray] = {}
    for v in cc.versions:
        holds = days.within(v)
        if holds is False:
            continue
        sel = (np.ones(n, dtype=bool) if holds is True else holds) & ~covered
        if not sel.any():
            continue
        covered |= sel
        used.append(v.formula.text)
        for sign, meter in v.formula.terms:
            if meter not in meters:
                raise AllocationError(f"cost centre {cc.code}: meter {meter!r} of formula {v.formula.text!r} has "
                                      "no intervals (not a meter of this customer)")
            m_kwh, m_rank = meters[meter]
            kwh[sel] += sign * np.where(np.isfinite(m_kwh[sel]), m_kwh[sel], 0.0)
            rank[sel] = np.maximum(rank[sel], m_rank[sel])
            lack = sel & (m_rank >= RANK["pending"])
            if lack.any():
                lacking[meter] = lacking.get(meter, np.zeros(n, dtype=bool)) | lack
    kwh[rank >= RANK["pending"]] = np.nan
    missing = []
    for meter, lack in sorted(lacking.items()):
        lack &= with_energy
        if not lack.any():
            continue
        at = index[lack]
        status = "missing" if (meters[meter][1][lack] == RANK["missing"]).any() else "pending"
        missing.append(MissingInput(cost_centre=cc.code, meter=meter, status=status, intervals=int(lack.sum()),
                                    first=at[0].to_pydatetime(), last=at[-1].to_pydatetime(),
                                    starts=[t.to_pydatetime() for t in at[:_LISTED]]))
    return _Evaluated(kwh, rank, used, missing)


def _counts(rank: np.ndarray) -> IntervalCounts:
    return IntervalCounts(**{str(name): int((rank == r).sum()) for name, r in RANK.items()})


def _frac(x: float) -> Fraction:
    return Fraction(float(x)) if math.isfinite(x) else Fraction(0)


def allocate(bill: MonthBill, rows: pd.DataFrame, centres: Sequence[CostCentreDef], rule: RuleDef,
             meters: Mapping[str, MeterGrid]) -> Allocation:
    """Split `bill` over `centres` plus the residual; see the module docstring for the rules.

    `rows`: the bill's priced_intervals (kwh, status, band, price, funds). `meters`: each formula meter's
    intervals on the same grid (meter_grids). AllocationError when rows are not this bill's, a formula
    names a meter without intervals, or the fixed shares do not fit.
    """
    codes = [c.code for c in centres]
    if len(set(codes)) != len(codes) or RESIDUAL in codes:
        raise AllocationError(f"cost-centre codes must be unique and not {RESIDUAL!r}")
    rule.check(codes)
    index = pd.DatetimeIndex(rows.index)
    energy = np.isin(rows["status"].to_numpy(), ("measured", "estimated"))
    e_bill = np.where(energy, rows["kwh"].to_numpy(dtype=float), 0.0)
    if not math.isclose(float(e_bill.sum()), bill.energy_kwh, rel_tol=1e-9, abs_tol=1e-6):
        raise AllocationError(f"the intervals give {e_bill.sum()} kWh, the bill {bill.energy_kwh}: not its rows")
    bill_rank = ranks_of(rows["status"].to_numpy(dtype=object), "bill intervals")
    price, funds = rows["price"].to_numpy(dtype=float), rows["funds"].to_numpy(dtype=float)
    bands = rows["band"].to_numpy(dtype=object)
    days = _Days(index)
    grids = meters
    for m, (k, _) in grids.items():
        if len(k) != len(index):
            raise AllocationError(f"meter {m}: {len(k)} intervals, the month has {len(index)}")
    evaluated = [evaluate(c, days, grids, energy) for c in centres]

    # per line: kwh per interval (0 where the bill has none), and rank
    line_kwh: list[np.ndarray] = []
    line_rank: list[np.ndarray] = []
    known_sum = np.zeros(len(index))
    unknown_any = np.zeros(len(index), dtype=bool)
    for ev in evaluated:
        known = energy & np.isfinite(ev.kwh)
        k = np.where(known, ev.kwh, 0.0)
        known_sum += k
        unknown_any |= energy & ~np.isfinite(ev.kwh)
        line_kwh.append(k)
        line_rank.append(np.where(energy, np.maximum(ev.rank, bill_rank), bill_rank).astype(np.int8))
    residual = np.where(energy, e_bill - known_sum, 0.0)
    res_rank = np.maximum(bill_rank, np.max(line_rank, axis=0) if line_rank else bill_rank)
    res_rank = np.where(energy & unknown_any, RANK["missing"], np.where(energy, np.minimum(res_rank, 1), bill_rank))
    line_kwh.append(residual)
    line_rank.append(res_rank.astype(np.int8))

    lines_cents, total, moved = bill_cents(bill)
    n_lines = len(line_kwh)
    money: list[dict[str, Decimal]] = [{} for _ in range(n_lines)]
    kwh_of: list[dict[str, float | None]] = [{} for _ in range(n_lines)]
    for b in bill.energy_by_band:
        in_band = bands == b
        weights = [_frac(float(np.dot(k[in_band], price[in_band]))) for k in line_kwh]
        parts = apportion(int(lines_cents[f"energy_{b}"] / _CENT), weights)
        for i, p in enumerate(parts):
            money[i][f"energy_{b}"] = Decimal(p) * _CENT
            kwh_of[i][f"energy_{b}"] = float(line_kwh[i][in_band].sum())
    funds_w = [_frac(float(np.dot(k, funds))) for k in line_kwh]
    for i, p in enumerate(apportion(int(lines_cents["government_funds"] / _CENT), funds_w)):
        money[i]["government_funds"] = Decimal(p) * _CENT
        kwh_of[i]["government_funds"] = float(line_kwh[i].sum())

    share_w = _rule_weights(rule, bill, index, line_kwh, codes)
    for element in ("basic_charge", "pf_adjustment"):
        for i, p in enumerate(apportion(int(lines_cents[element] / _CENT), share_w)):
            money[i][element] = Decimal(p) * _CENT
            kwh_of[i][element] = None
    shown = shares_shown(share_w)

    order = list(lines_cents)
    out_lines = []
    names = [(c.code, c.name, c.kind, ev.formulas) for c, ev in zip(centres, evaluated, strict=True)]
    names.append((RESIDUAL, "unmetered and losses", "residual", []))
    for i, (code, name, kind, formulas) in enumerate(names):
        items = [LineMoney(element=e, kwh=kwh_of[i][e], amount=money[i][e]) for e in order]
        out_lines.append(AllocationLine(
            code=code, name=name, kind=kind, formulas=formulas, kwh=float(line_kwh[i].sum()),
            intervals=_counts(line_rank[i]), share=shown[i], money=items,
            total=sum((m.amount for m in items), Decimal(0))))
    negative = residual < -1e-9
    neg = None
    if negative.any():
        neg = NegativeResidual(intervals=int(negative.sum()), kwh=float(residual[negative].sum()),
                               first=index[negative][0].to_pydatetime())
    return Allocation(
        month=bill.month, currency=bill.currency, rule=rule.rule,
        shares=dict(zip([*codes, RESIDUAL], shown, strict=True)),
        bill_lines=lines_cents, total=total, bill_kwh=bill.energy_kwh, lines=out_lines,
        missing=[m for ev in evaluated for m in ev.missing], negative_residual=neg, rounding=moved)


def _rule_weights(rule: RuleDef, bill: MonthBill, index: pd.DatetimeIndex, line_kwh: list[np.ndarray],
                  codes: list[str]) -> list[Fraction]:
    if rule.rule is Rule.KWH:
        return [_frac(float(k.sum())) for k in line_kwh]
    if rule.rule is Rule.COINCIDENT_PEAK:
        at = index.get_indexer(pd.DatetimeIndex([pd.Timestamp(bill.peak_at)]).tz_convert(index.tz))[0]
        if at < 0:
            raise AllocationError(f"the bill's peak {bill.peak_at} is not an interval of {bill.month}")
        return [_frac(float(k[at])) for k in line_kwh]
    return [Fraction(rule.shares.get(c, Decimal(0))) for c in [*codes, RESIDUAL]]
