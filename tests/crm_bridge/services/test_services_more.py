"""Services beyond the worked examples: shift windows, C* advice, PF per month, run_all with ISO 50006, bad input."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from crm_bridge.registry.models import Contract
from crm_bridge.services import (
    ContractInputs,
    ServiceError,
    base_load,
    bill_forecast,
    demand_advice,
    energy_performance,
    load_curve_card,
    pf_advice,
    run_all,
    saving_advice,
    tou_advice,
)
from crm_bridge.tariffs import energy_cost, load_tariff
from crm_bridge.tariffs.model import parse_tariff

TZ = "Asia/Shanghai"
SICHUAN = load_tariff("sichuan-2023")
GUANGDONG = load_tariff("guangdong-1-10kv")


def frame(start: str, days: float, kwh: float | np.ndarray = 100.0, pf: float = 0.9, tz: str = TZ) -> pd.DataFrame:
    idx = pd.date_range(pd.Timestamp(start, tz=tz), periods=int(days * 96), freq="15min")
    values = np.broadcast_to(np.asarray(kwh, dtype=float), (len(idx),)).copy()
    return pd.DataFrame({"kwh": values, "kvarh": values * np.tan(np.arccos(pf)), "kw": values * 4}, index=idx)


def contract(**kw: object) -> ContractInputs:
    terms = {"transformer_kva": 3200.0, "contract_demand_kw": 2300.0, "basic_charge_mode": "contract",
             "tariff_id": "guangdong-1-10kv", **kw}
    return ContractInputs(**terms)  # type: ignore[arg-type]


def _slots(windows: list[str]) -> set[int]:
    out: set[int] = set()
    for w in windows:
        a, b = (int(t[:2]) * 4 + int(t[3:]) // 15 for t in w.split("-"))
        out |= set(range(a, b))
    return out


@pytest.mark.parametrize("day", ["2026-03-02", "2026-07-15", "2026-12-02"])
def test_shift_windows_are_exactly_the_source_and_target_band_slots(day: str) -> None:
    advice = tou_advice(frame(day, 1), SICHUAN, shift_kwh=10)
    bands = SICHUAN.price_table(frame(day, 1).index)["band"].to_numpy()
    assert _slots(advice.shift_from_windows) == set(np.flatnonzero(bands == advice.shift_from))
    assert _slots(advice.shift_to_windows) == set(np.flatnonzero(bands == advice.shift_to))
    assert any("valley" in a and advice.shift_to_windows[0] in a for a in advice.evidence.assumptions)


def test_card_on_a_dst_day_has_92_intervals_and_no_bands_without_a_tariff() -> None:
    day = frame("2026-03-29", 1, 50.0, tz="Europe/Berlin")
    day = day[day.index.normalize() == day.index[0].normalize()]
    assert len(day) == 92
    card = load_curve_card(day)
    assert len(card.kw) == 92
    assert card.kwh == pytest.approx(92 * 50)
    assert card.kwh_by_band == {}


def test_contract_demand_c_star_charge_and_advice() -> None:
    over = demand_advice(frame("2026-11-01", 30, 625.0), contract(), GUANGDONG)  # Pmax 2500 kW, C 2300
    c_star = 2500 / 1.05
    assert over.recommended_contract_charge == pytest.approx(c_star * 36.1)
    assert over.saving_by_recommended_contract == pytest.approx(89_167 - c_star * 36.1, abs=1)
    items = saving_advice(demand=over)
    assert [i.kind for i in items] == ["basic_charge_mode"], "capacity (72,320) beats C* (85,952)"
    assert any("alternative: contract demand 2,381 kW" in a for a in items[0].assumptions)
    big = contract(transformer_kva=6000.0)  # floor 0.4 x 6000 = 2400 kW: C = 2300 is raised to 2400 for everything
    d = demand_advice(frame("2026-11-01", 30, 625.0), big, GUANGDONG)  # Pmax 2500 kW
    # the raised C sets the threshold too: 1.05 x 2400 = 2520 > 2500, no excess (not 2 x 36.1 x (2500 - 2415))
    assert (d.effective_contract_kw, d.limit_kw) == pytest.approx((2400, 2520))
    assert d.charges == pytest.approx({"capacity": 6000 * 22.6, "demand": 2500 * 36.1, "contract": 2400 * 36.1})
    assert d.cheapest_mode == "contract"
    assert d.recommended_contract_kw == pytest.approx(2400), "C* = 2500 / 1.05 = 2381 kW is raised to the floor"
    assert d.recommended_contract_charge == pytest.approx(2400 * 36.1)
    assert saving_advice(demand=d) == [], "already the cheapest, and C* is the contract in force"
    hot = demand_advice(frame("2026-11-01", 30, 650.0), big, GUANGDONG)  # Pmax 2600 kW > 2520
    now = 2400 * 36.1 + 2 * 36.1 * (2600 - 2520)  # 86,640 + 5,776 = 92,416
    assert hot.charges["contract"] == pytest.approx(now)
    assert hot.recommended_contract_kw == pytest.approx(2600 / 1.05)  # 2476 kW, above the floor
    (item,) = saving_advice(demand=hot)
    assert item.kind == "contract_demand"
    assert item.money_per_month == pytest.approx(now - 2600 / 1.05 * 36.1, abs=0.01)  # 92,416 - 89,390.48
    assert not any("alternative" in a for a in item.assumptions), "demand billing (93,860) is dearer: none named"


def test_pf_money_is_per_month_whatever_the_data_period() -> None:
    half = pf_advice(frame("2026-11-01", 15, 250.0, pf=0.80), contract(), GUANGDONG)
    full = pf_advice(frame("2026-11-01", 30, 250.0, pf=0.80), contract(), GUANGDONG)
    assert half.adjustment_money == pytest.approx(full.adjustment_money)
    assert half.money_per_month == pytest.approx(full.money_per_month)
    assert any("15 days" in a for a in half.evidence.assumptions)


def _monthly(worse_last: float) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    months = pd.date_range("2025-06-01", periods=13, freq="MS")
    output = rng.uniform(800, 1200, 13)
    kwh = 50_000 + 120 * output + rng.normal(0, 300, 13)
    kwh[-1] += worse_last
    return pd.DataFrame({"kwh": kwh, "output": output}, index=months)


def test_run_all_gives_every_service_and_prices_an_energy_performance_gap() -> None:
    month = frame("2026-11-01", 30, np.tile(np.r_[np.full(32, 150.0), np.full(64, 600.0)], 30), pf=0.8)
    plain = run_all(month, contract(), GUANGDONG)
    assert set(plain) == {"card", "tou", "demand", "pf", "base_load", "bill", "advice"}
    out = run_all(month, contract(), GUANGDONG, monthly=_monthly(8000), next_output=1000)
    assert set(out) == set(plain) | {"energy_performance"}
    ep = out["energy_performance"]
    assert ep.valid
    assert ep.savings_kwh[-1] < -6000
    price = out["tou"].total_cost / out["tou"].total_kwh
    assert ep.next_month_cost == pytest.approx(ep.next_month_kwh * price)
    (item,) = [a for a in out["advice"] if a.kind == "energy_performance"]
    assert item.money_per_month == pytest.approx(-ep.savings_kwh[-1] * price, rel=1e-3)
    assert item.evidence.data == "monthly kWh and output"
    money = [a.money_per_month for a in out["advice"]]
    assert money == sorted(money, reverse=True)
    fine = run_all(month, contract(), GUANGDONG, monthly=_monthly(-8000))
    assert "energy_performance" not in {a.kind for a in fine["advice"]}


def test_cusum_sign_follows_better_or_worse_than_baseline() -> None:
    base = _monthly(0)
    months = pd.date_range("2026-07-01", periods=4, freq="MS")
    for delta, sign in ((-2000.0, 1), (2000.0, -1)):
        later = pd.DataFrame({"output": 1000.0, "kwh": 50_000 + 120 * 1000 + delta}, index=months)
        ep = energy_performance(pd.concat([base, later]), baseline_months=13)
        tail = np.array(ep.cusum_kwh[-4:], dtype=float) - ep.cusum_kwh[12]
        assert np.all(np.sign(tail) == sign)
        assert np.all(np.sign(np.diff(np.r_[0.0, tail])) == sign), "each month moves CUSUM the same way"


def test_from_contract_reads_a_registry_row() -> None:
    row = Contract(transformer_kva=3200.0, hv_motors_kw=None, contract_demand_kw=2300.0, basic_charge_mode="demand",
                   pf_standard=0.85, bill_threshold=90_000.0, tariff_id="guangdong-1-10kv")
    c = ContractInputs.from_contract(row)
    assert (c.basic_charge_mode, c.hv_motors_kw, c.pf_standard, c.bill_threshold) == ("demand", 0.0, 0.85, 90_000)


@pytest.mark.parametrize(("row", "message"), [
    (SimpleNamespace(id=7, transformer_kva=3200.0, hv_motors_kw=0.0, contract_demand_kw=2300.0,
                     basic_charge_mode="weekly", pf_standard=0.9, bill_threshold=None, tariff_id="x"),
     r"contract 7: basic_charge_mode = 'weekly'"),
    (SimpleNamespace(id=8, transformer_kva=-1.0, hv_motors_kw=0.0, contract_demand_kw=2300.0,
                     basic_charge_mode="capacity", pf_standard=0.9, bill_threshold=None, tariff_id="x"),
     r"contract 8: transformer_kva = -1.0"),
    (SimpleNamespace(id=9, transformer_kva=3200.0), r"contract 9: no term 'basic_charge_mode'"),
])
def test_bad_contract_terms_name_the_contract_and_field(row: object, message: str) -> None:
    with pytest.raises(ServiceError, match=message):
        ContractInputs.from_contract(row)


def test_duplicate_or_unordered_intervals_are_refused() -> None:
    f = frame("2026-11-01", 1)
    dup = pd.concat([f.iloc[:10], f.iloc[9:12]])
    with pytest.raises(ServiceError, match=r"tou advice|TOU advice: interval 2026-11-01 02:15:00\+08:00 appears"):
        tou_advice(dup, SICHUAN)
    with pytest.raises(ServiceError, match=r"out of order at 2026-11-01 00:00:00\+08:00"):
        load_curve_card(f.iloc[[1, 0, 2]])


def test_energy_performance_bad_input() -> None:
    with pytest.raises(ServiceError, match="columns kwh and output"):
        energy_performance(pd.DataFrame({"kwh": [1.0]}))
    with pytest.raises(ServiceError, match="no months"):
        energy_performance(pd.DataFrame({"kwh": [], "output": []}))


def test_bill_forecast_adds_the_pf_adjustment_and_government_funds() -> None:
    as_of = datetime(2026, 11, 16, tzinfo=ZoneInfo(TZ))
    terms = contract(tariff_id="sichuan-2023")
    at_090 = bill_forecast(frame("2026-11-01", 15, 100.0, pf=0.90), terms, SICHUAN, as_of)
    at_080 = bill_forecast(frame("2026-11-01", 15, 100.0, pf=0.80), terms, SICHUAN, as_of)
    assert (at_090.pf, at_090.pf_adjustment, at_080.pf) == (0.9, 0.0, 0.8)
    base = at_080.mtd_energy_cost + at_080.remaining_energy_cost + at_080.basic_charge
    assert at_080.pf_adjustment == pytest.approx(0.05 * base), "0.80 against 0.90: +5 %"
    assert at_080.total == pytest.approx(at_090.total * 1.05)
    doc = SICHUAN.model_dump(mode="json")
    doc["versions"][0]["government_funds_per_kwh"] = 0.03
    funded = bill_forecast(frame("2026-11-01", 15, 100.0, pf=0.80), terms, parse_tariff(doc), as_of)
    assert funded.funds == pytest.approx(0.03 * 30 * 96 * 100)
    assert funded.total == pytest.approx(at_080.total + funded.funds), "funds are not PF-adjusted"


def test_advisor_names_the_demand_capacity_break_even_and_the_upgrade_rule_is_configurable() -> None:
    d = demand_advice(frame("2026-11-01", 3, 500.0), contract(), GUANGDONG)  # Pmax 2000 kW
    assert d.demand_beats_capacity_below_kw == pytest.approx(22.6 / 36.1 * 3200)
    assert round(d.demand_beats_capacity_below_kw) == 2003
    assert d.cheapest_mode == "demand", "2000 kW is under the 2003 kW break-even"
    assert demand_advice(frame("2026-11-01", 3, 505.0), contract(), GUANGDONG).cheapest_mode == "capacity"
    hot = frame("2026-11-01", 3, 2800 / 4)
    assert not demand_advice(hot, contract(), GUANGDONG, monthly_pmax_kw=[2400, 2750]).upgrade_advised
    two = demand_advice(hot, contract(), GUANGDONG, monthly_pmax_kw=[2400, 2750], upgrade_months=2)
    assert two.upgrade_advised
    assert "for 2 months: 2750, 2800 kW" in (two.upgrade_reason or "")
    assert not demand_advice(hot, contract(), GUANGDONG, monthly_pmax_kw=[2700, 2750],
                             upgrade_share_of_kva=0.9).upgrade_advised, "2700 kW is under 90 % of 3200 kVA"
    with pytest.raises(ServiceError, match="capacity-upgrade rule 0.8 of kVA for 0 months"):
        demand_advice(hot, contract(), GUANGDONG, upgrade_months=0)


def test_base_load_follows_the_customers_own_shift_calendar() -> None:
    idx = pd.date_range(pd.Timestamp("2026-11-02", tz=TZ), periods=14 * 96, freq="15min")  # two weeks from Monday
    kw = np.select([(idx.hour >= 6) & (idx.hour < 14), (idx.hour >= 14) & (idx.hour < 18)], [900.0, 400.0], 150.0)
    f = pd.DataFrame({"kwh": kw / 4, "kvarh": kw / 8}, index=idx)
    one_shift = base_load(f, SICHUAN, off_hours=[(14, 24), (0, 6)], weekend_off=False)
    assert one_shift.base_kw == pytest.approx(150.0)
    night_only = base_load(f, SICHUAN, off_hours=[(18, 24)], weekend_off=False)
    assert night_only.off_hours_kwh == pytest.approx(14 * 6 * 150.0)
    assert night_only.off_hours_share == pytest.approx(6 * 150 / (8 * 900 + 4 * 400 + 12 * 150))
    assert any("shift calendar 18:00–24:00, weekends on" in a for a in night_only.evidence.assumptions)
    with pytest.raises(ServiceError, match=r"off-hours span \[22, 6\]"):
        base_load(f, SICHUAN, off_hours=[(22, 6)])


def test_pf_adjustment_money_is_the_percentage_of_energy_plus_basic_charge() -> None:
    month = frame("2026-11-01", 30, 250.0, pf=0.80)  # 1000 kW, PF 0.80: +5 % against 0.90
    p = pf_advice(month, contract(), GUANGDONG)
    energy = float(energy_cost(month["kwh"], GUANGDONG)["energy_cost"].iloc[-1])
    assert p.adjustment_money == pytest.approx(0.05 * (energy + 2300 * 36.1))
    at_095 = -0.0075 * (energy + 2300 * 36.1)
    assert p.money_per_month == pytest.approx(p.adjustment_money - at_095)


def test_bill_forecast_same_weekday_profile_with_fallbacks() -> None:
    tz = ZoneInfo(TZ)
    month = pd.date_range(pd.Timestamp("2026-11-01", tz=TZ), periods=30 * 96, freq="15min")  # 1 Nov: a Sunday
    weekend = month.dayofweek >= 5
    f = pd.DataFrame({"kwh": np.where(weekend, 20.0, 100.0)}, index=month)
    terms = contract(tariff_id="sichuan-2023")
    as_of = datetime(2026, 11, 16, tzinfo=tz)
    b = bill_forecast(f[f.index < pd.Timestamp(as_of)], terms, SICHUAN, as_of)
    rest = month >= pd.Timestamp(as_of)
    assert b.remaining_kwh == pytest.approx(f["kwh"][rest].sum()), "weekends forecast as weekends"
    assert b.pf is None
    assert "PF adjustment left out" in " ".join(b.evidence.assumptions)
    # Sunday to Tuesday measured: Wednesday on falls back to the time-of-day mean over those three days
    as_of = datetime(2026, 11, 4, tzinfo=tz)
    short = bill_forecast(f[f.index < pd.Timestamp(as_of)], terms, SICHUAN, as_of)
    later = month >= pd.Timestamp(as_of)
    dow = month[later].dayofweek
    expected = np.select([dow == 6, dow <= 1], [20.0, 100.0], (20 + 100 + 100) / 3)  # Sun, Mon/Tue, Wed-Sat
    assert short.remaining_kwh == pytest.approx(expected.sum())
    # a slot never measured (02:00 missing every day) takes the month's mean interval, and says so
    g = f.copy()
    g.loc[g.index.hour == 2, "kwh"] = np.nan
    holey = bill_forecast(g[g.index < pd.Timestamp(as_of)], terms, SICHUAN, as_of)
    assert "never measured" in holey.method
    at_2 = month[later].hour == 2
    assert holey.remaining_kwh == pytest.approx(expected[~at_2].sum() + at_2.sum() * (20 + 100 + 100) / 3)
