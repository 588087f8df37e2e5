"""Cost allocation: every rule adds up to the bill to the cent, versions per interval, statuses carried, gaps named."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from crm_bridge.services import ContractInputs
from crm_bridge.services.allocation import (
    RESIDUAL,
    Allocation,
    AllocationError,
    CostCentreDef,
    FormulaVersion,
    Rule,
    RuleDef,
    allocate,
    apportion,
    cents,
    meter_grids,
    month_grid_status,
    parse_formula,
)
from crm_bridge.tariffs import month_bill
from crm_bridge.tariffs.bill import month_intervals, priced_intervals
from crm_bridge.tariffs.model import parse_tariff

SH = "Asia/Shanghai"
ALL = list(range(1, 13))
DECEMBER = datetime(2026, 12, 1, tzinfo=ZoneInfo(SH))
N = 30 * 96


def _version(valid_from: str, valley: float, peak: float, per_kw: float, funds: float) -> dict:
    return {"valid_from": valid_from, "basic_per_kw_month": per_kw, "basic_per_kva_month": 20.0,
            "government_funds_per_kwh": funds, "energy_prices": {"valley": valley, "peak": peak},
            "bands": [{"band": "valley", "months": ALL, "start": "00:00", "end": "08:00"},
                      {"band": "peak", "months": ALL, "start": "08:00", "end": "24:00"}]}


# New prices from 16 November 2026 (as tests/crm_bridge/services/test_one_bill.py): 15 days each.
TARIFF = parse_tariff({"id": "two-step", "timezone": SH, "versions": [
    _version("2026-01-01", valley=0.4, peak=1.0, per_kw=30.0, funds=0.02),
    _version("2026-11-16", valley=0.5, peak=1.2, per_kw=36.0, funds=0.03)]})
TERMS = ContractInputs(transformer_kva=1000.0, contract_demand_kw=500.0, basic_charge_mode="demand",
                       tariff_id="two-step")
INDEX = pd.date_range(pd.Timestamp("2026-11-01", tz=SH), periods=N, freq="15min")


def frame(kwh: float | np.ndarray, status: np.ndarray | None = None, pf: float = 0.8) -> pd.DataFrame:
    values = np.broadcast_to(np.asarray(kwh, dtype=float), (N,)).copy()
    out = pd.DataFrame({"kwh": values, "kvarh": values * np.tan(np.arccos(pf))}, index=INDEX)
    if status is not None:
        out["status"] = status
        out.loc[np.isin(status, ("missing", "pending")), ["kwh", "kvarh"]] = np.nan
    return out


def centre(code: str, formula: str, kind: str = "line") -> CostCentreDef:
    version = FormulaVersion(parse_formula(formula), datetime(2000, 1, 1).date())
    return CostCentreDef(code, f"{code} name", kind, (version,))


def run(main: pd.DataFrame, meters: dict[str, pd.DataFrame], centres: list[CostCentreDef],
        rule: RuleDef = RuleDef(Rule.KWH, {})) -> Allocation:  # noqa: B008 - frozen
    bill = month_bill(main, TERMS, TARIFF, "2026-11", now=DECEMBER)
    rows = priced_intervals(main, TARIFF, "2026-11", tz=SH, now=DECEMBER)
    grids = meter_grids(meters, "2026-11", ZoneInfo(SH), DECEMBER)
    alloc = allocate(bill, rows, centres, rule, grids)
    adds_up(alloc, bill.total)
    return alloc


def adds_up(alloc: Allocation, bill_total: float) -> None:
    """Every element over the lines is the bill's line, the lines are the bill's total, which is the month view's."""
    assert alloc.total == Decimal(str(round(bill_total, 2)))
    assert sum(alloc.bill_lines.values()) == alloc.total
    for element, amount in alloc.bill_lines.items():
        assert sum(m.amount for line in alloc.lines for m in line.money if m.element == element) == amount, element
    assert sum(line.total for line in alloc.lines) == alloc.total
    assert all(m.amount == m.amount.quantize(Decimal("0.01")) for line in alloc.lines for m in line.money)


def money(alloc: Allocation, code: str) -> dict[str, Decimal]:
    line = next(x for x in alloc.lines if x.code == code)
    return {m.element: m.amount for m in line.money} | {"total": line.total}


def test_hand_checked_month_by_kwh_with_a_price_change_mid_month() -> None:
    # main 100 kWh per interval, sub1 60, sub2 30: unmetered and losses 10 (see test_one_bill: total 288,180)
    alloc = run(frame(100.0), {"main": frame(100.0), "sub1": frame(60.0), "sub2": frame(30.0)},
                [centre("A", "sub1"), centre("B", "sub2"), centre("SITE", "main - sub1 - sub2", "site")])
    assert alloc.total == Decimal("288180.00")
    # valley 15 d x 32 x 60 x 0.4 + 15 d x 32 x 60 x 0.5; peak 15 x 64 x 60 x 1.0 + 15 x 64 x 60 x 1.2; 60 % of
    # the demand charge 13,200 and of the PF adjustment 13,380 (+5 %); funds 60 x 96 x 15 x (0.02 + 0.03)
    assert money(alloc, "A") == {"energy_peak": Decimal("126720.00"), "energy_valley": Decimal("25920.00"),
                                 "basic_charge": Decimal("7920.00"), "pf_adjustment": Decimal("8028.00"),
                                 "government_funds": Decimal("4320.00"), "total": Decimal("172908.00")}
    assert money(alloc, "B")["total"] == Decimal("86454.00")
    # the site formula main - sub1 - sub2 is the same 10 % the residual takes when no site is defined; here it is
    # defined, so the residual is nothing
    assert money(alloc, "SITE")["total"] == Decimal("28818.00")
    assert money(alloc, RESIDUAL)["total"] == Decimal("0.00")
    assert alloc.shares == {"A": Decimal("0.6000"), "B": Decimal("0.3000"), "SITE": Decimal("0.1000"),
                            RESIDUAL: Decimal("0.0000")}
    assert alloc.rule is Rule.KWH
    assert alloc.missing == []
    assert alloc.negative_residual is None


def test_energy_follows_the_price_in_force_for_its_interval() -> None:
    first_half = np.where(INDEX < pd.Timestamp("2026-11-16", tz=SH), 60.0, 0.0)
    alloc = run(frame(100.0), {"early": frame(first_half)}, [centre("EARLY", "early")])
    a = money(alloc, "EARLY")
    # only the old prices: 15 d x 32 x 60 x 0.4 and 15 d x 64 x 60 x 1.0 (a month average would give more)
    assert (a["energy_valley"], a["energy_peak"]) == (Decimal("11520.00"), Decimal("57600.00"))
    assert money(alloc, RESIDUAL)["energy_peak"] == Decimal("211200.00") - Decimal("57600.00")


@pytest.mark.parametrize("rule", [RuleDef(Rule.KWH, {}), RuleDef(Rule.COINCIDENT_PEAK, {}),
                                  RuleDef(Rule.FIXED, {"A": Decimal("0.333"), "B": Decimal("0.333"),
                                                       "C": Decimal("0.334")})])
def test_every_rule_adds_up_to_the_cent_on_awkward_numbers(rule: RuleDef) -> None:
    rng = np.random.default_rng(7)
    subs = {m: rng.uniform(0.1, 33.3, N).round(3) for m in ("s1", "s2", "s3")}
    main = sum(subs.values()) + rng.uniform(0, 2, N).round(3)
    status = np.where(rng.random(N) < 0.05, "estimated", "measured").astype(object)
    status[100:104] = "missing"
    pf = 0.97 if rule.rule is Rule.FIXED else 0.83  # a PF reward (negative cents to share) and a penalty
    alloc = run(frame(main, status, pf=pf), {m: frame(v) for m, v in subs.items()},
                [centre("A", "s1"), centre("B", "s2 + s3 - s3"), centre("C", "s3")], rule)
    assert alloc.rule is rule.rule
    assert (alloc.bill_lines["pf_adjustment"] < 0) == (pf > 0.9)
    assert sum(alloc.shares.values()) == pytest.approx(Decimal(1), abs=Decimal("0.0005"))
    if rule.rule is Rule.FIXED:
        assert money(alloc, RESIDUAL)["basic_charge"] == 0
        assert alloc.shares["C"] == Decimal("0.3340")


def test_estimated_intervals_are_carried_and_labelled() -> None:
    status = np.full(N, "measured", dtype=object)
    status[10:14] = "estimated"
    sub_status = np.full(N, "measured", dtype=object)
    sub_status[500:502] = "estimated"
    alloc = run(frame(100.0, status), {"sub1": frame(60.0, sub_status)}, [centre("A", "sub1")])
    a = next(x for x in alloc.lines if x.code == "A")
    assert (a.intervals.measured, a.intervals.estimated, a.intervals.missing) == (N - 6, 6, 0)
    assert a.kwh == pytest.approx(60.0 * N)  # estimated energy counts as energy
    residual = next(x for x in alloc.lines if x.code == RESIDUAL)
    assert residual.intervals.estimated == 6


def test_a_missing_sub_meter_is_named_and_its_energy_stays_in_the_residual_marked_missing() -> None:
    sub_status = np.full(N, "measured", dtype=object)
    sub_status[200:208] = "missing"
    main_status = np.full(N, "measured", dtype=object)
    main_status[300:302] = "missing"  # the bill has no energy there: nothing to allocate, nothing to name
    sub_status[300:302] = "missing"
    alloc = run(frame(100.0, main_status), {"sub1": frame(60.0), "sub2": frame(30.0, sub_status)},
                [centre("A", "sub1"), centre("B", "sub2")])
    [gap] = alloc.missing
    assert (gap.cost_centre, gap.meter, gap.status, gap.intervals) == ("B", "sub2", "missing", 8)
    assert gap.first == INDEX[200].to_pydatetime()
    assert gap.last == INDEX[207].to_pydatetime()
    b = next(x for x in alloc.lines if x.code == "B")
    assert b.intervals.missing == 10
    assert b.kwh == pytest.approx(30.0 * (N - 10))
    residual = next(x for x in alloc.lines if x.code == RESIDUAL)
    assert residual.intervals.missing == 10
    assert residual.kwh == pytest.approx(10.0 * (N - 2) + 8 * 30.0)  # never dropped, never spread


def test_a_negative_residual_is_reported_not_clipped() -> None:
    sub = np.full(N, 60.0)
    sub[50:53] = 130.0  # a sub-meter reading more than the main meter: a meter error
    alloc = run(frame(100.0), {"sub1": frame(sub)}, [centre("A", "sub1")])
    assert alloc.negative_residual is not None
    assert (alloc.negative_residual.intervals, alloc.negative_residual.kwh) == (3, pytest.approx(-90.0))
    assert alloc.negative_residual.first == INDEX[50].to_pydatetime()


def test_coincident_peak_shares_by_the_energy_in_the_bills_peak_interval() -> None:
    main, sub = np.full(N, 100.0), np.full(N, 60.0)
    main[1000], sub[1000] = 500.0, 450.0  # the peak: A carries 90 % of it
    alloc = run(frame(main), {"sub1": frame(sub)}, [centre("A", "sub1")], RuleDef(Rule.COINCIDENT_PEAK, {}))
    assert alloc.shares == {"A": Decimal("0.9000"), RESIDUAL: Decimal("0.1000")}
    assert money(alloc, "A")["basic_charge"] == cents(0.9 * 500 * 4 * 33.0)  # 2,000 kW x (30 + 36) / 2 per kW


def test_a_formula_version_holds_from_its_day() -> None:
    versions = (FormulaVersion(parse_formula("sub1"), datetime(2026, 1, 1).date(), datetime(2026, 11, 11).date()),
                FormulaVersion(parse_formula("sub1 + sub2"), datetime(2026, 11, 11).date()))
    alloc = run(frame(100.0), {"sub1": frame(60.0), "sub2": frame(30.0)},
                [CostCentreDef("A", "Line A", "line", versions)])
    a = next(x for x in alloc.lines if x.code == "A")
    assert a.formulas == ["sub1", "sub1 + sub2"]
    assert a.kwh == pytest.approx(60.0 * N + 30.0 * 20 * 96)


@pytest.mark.parametrize(("text", "says"), [("", "empty"), ("a + + b", "token 3"), ("a b", "token 2"),
                                            ("a -", "ends with"), ("a + b$", "token 3")])
def test_bad_formulas_are_refused_naming_the_token(text: str, says: str) -> None:
    with pytest.raises(AllocationError, match=says):
        parse_formula(text)


def test_meter_ids_with_dashes_need_spaced_operators() -> None:
    assert parse_formula("acme-m1 - acme-m2").terms == ((1, "acme-m1"), (-1, "acme-m2"))
    assert parse_formula("- a + b").terms == ((-1, "a"), (1, "b"))


@pytest.mark.parametrize(("shares", "says"), [({"A": Decimal("0.5")}, "add up to 0.5"),
                                              ({"A": Decimal("1"), "Z": Decimal("0")}, "shares.Z"),
                                              ({"A": Decimal("1.5"), RESIDUAL: Decimal("-0.5")}, "negative")])
def test_fixed_shares_must_name_known_centres_and_add_up_to_one(shares: dict[str, Decimal], says: str) -> None:
    with pytest.raises(AllocationError, match=says):
        run(frame(100.0), {"sub1": frame(60.0)}, [centre("A", "sub1")], RuleDef(Rule.FIXED, shares))


def test_a_formula_meter_without_intervals_is_named() -> None:
    with pytest.raises(AllocationError, match="'ghost'"):
        run(frame(100.0), {"sub1": frame(60.0)}, [centre("A", "sub1 + ghost")])


def test_apportion_is_exact_and_largest_remainder() -> None:
    assert apportion(100, [Fraction(1)] * 3) == [34, 33, 33]
    assert apportion(-100, [Fraction(1)] * 3) == [-33, -33, -34]
    assert apportion(10, [Fraction(3), Fraction(-1)]) == [15, -5]
    assert apportion(7, [Fraction(0), Fraction(0)]) == [0, 7]
    assert cents(0.125) == Decimal("0.12")
    assert cents(2.675) == Decimal(str(round(2.675, 2)))


def test_meter_grids_equal_month_intervals_for_every_status_case() -> None:
    """The array path (frames already on the grid) and month_intervals give the same kWh and statuses."""
    now = datetime(2026, 11, 20, 10, 7, tzinfo=ZoneInfo(SH))  # mid-month: ended and not-yet-ended intervals
    rng = np.random.default_rng(3)
    kwh = rng.uniform(0, 50, N)
    kwh[rng.choice(N, 300, replace=False)] = np.nan
    status = rng.choice(np.array(["measured", "estimated", "missing", "pending", None], dtype=object), N)
    on_grid = pd.DataFrame({"kwh": kwh, "status": status}, index=INDEX)
    utc = on_grid.set_axis(INDEX.tz_convert("UTC"))  # another zone: the month_intervals path
    shuffled = on_grid.iloc[rng.permutation(N)]  # off order: the month_intervals path
    fast = meter_grids({"a": on_grid, "b": utc, "c": shuffled}, "2026-11", ZoneInfo(SH), now)
    slow_kwh, slow_rank = month_grid_status(month_intervals(on_grid, "2026-11", ZoneInfo(SH), now=now))
    for m in ("a", "b", "c"):
        np.testing.assert_array_equal(fast[m][1], slow_rank)
        np.testing.assert_array_equal(fast[m][0], slow_kwh)
    assert set(slow_rank) == {0, 1, 2, 3}
    bad = on_grid.assign(status=np.where(np.arange(N) == 7, "guessed", status))
    with pytest.raises(AllocationError, match="meter x: unknown interval status 'guessed'"):
        meter_grids({"x": bad}, "2026-11", ZoneInfo(SH), now)
