"""The eight services on DOMAIN.md's worked examples, plus bad input."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from crm_bridge.errors import CrmError
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

TZ = "Asia/Shanghai"
SICHUAN = load_tariff("sichuan-2023")
GUANGDONG = load_tariff("guangdong-1-10kv")


def frame(start: str, days: float, kwh: float | np.ndarray = 100.0, pf: float = 0.9) -> pd.DataFrame:
    idx = pd.date_range(pd.Timestamp(start, tz=TZ), periods=int(days * 96), freq="15min")
    values = np.broadcast_to(np.asarray(kwh, dtype=float), (len(idx),)).copy()
    kvarh = values * np.tan(np.arccos(pf))
    return pd.DataFrame({"kwh": values, "kvarh": kvarh, "kw": values * 4}, index=idx)


def contract(**kw: object) -> ContractInputs:
    terms = {"transformer_kva": 3200.0, "contract_demand_kw": 2300.0, "basic_charge_mode": "contract",
             "tariff_id": "guangdong-1-10kv", **kw}
    return ContractInputs(**terms)  # type: ignore[arg-type]


def test_card_constant_load_has_load_factor_1_and_peak_valley_rate_0():
    card = load_curve_card(frame("2026-11-02", 1, 250.0), SICHUAN)
    assert len(card.kw) == 96
    assert card.pmax_kw == card.pmin_kw == card.pavg_kw == 1000.0
    assert card.load_factor == 1.0
    assert card.peak_valley_rate == 0.0
    assert sum(card.kwh_by_band.values()) == pytest.approx(96 * 250)
    assert card.complete


def test_card_flags_a_missing_interval_and_never_fills_it():
    f = frame("2026-11-02", 1, np.linspace(100, 300, 96))
    f.iloc[40, f.columns.get_loc("kwh")] = np.nan
    f.iloc[40, f.columns.get_loc("kw")] = np.nan
    card = load_curve_card(f, SICHUAN)
    assert card.kw[40] is None
    assert card.missing == [f.index[40].to_pydatetime()]
    assert not card.complete
    assert card.kwh == pytest.approx(f["kwh"].sum())
    assert card.evidence.missing_intervals == 1
    assert card.pmax_at == f.index[95].to_pydatetime()


def test_moving_100_kwh_from_peak_to_valley_saves_120_in_sichuan():
    advice = tou_advice(frame("2026-03-02", 1), SICHUAN, shift_kwh=100)
    assert (advice.shift_from, advice.shift_to) == ("peak", "valley")
    assert advice.saving == pytest.approx(120.0)
    assert sum(advice.cost_by_band.values()) == pytest.approx(advice.total_cost)
    default = tou_advice(frame("2026-03-02", 1), SICHUAN)
    assert default.shift_kwh == pytest.approx(0.10 * default.kwh_by_band["peak"])


def test_basic_charge_advisor_on_the_worked_numbers():
    d = demand_advice(frame("2026-11-01", 30, 600.0), contract(), GUANGDONG)  # Pmax 2400 kW
    assert d.charges["capacity"] == pytest.approx(72_320)
    assert d.charges["demand"] == pytest.approx(86_640)
    assert d.charges["contract"] == pytest.approx(2300 * 36.1)
    assert d.cheapest_mode == "capacity"
    assert d.saving_by_switching == pytest.approx(2300 * 36.1 - 72_320)
    over = demand_advice(frame("2026-11-01", 30, 625.0), contract(), GUANGDONG)  # Pmax 2500 kW
    assert over.charges["contract"] == pytest.approx(89_167, abs=1)
    assert over.recommended_contract_kw == pytest.approx(2500 / 1.05)
    assert over.levels_reached == [0.9, 1.0]
    assert over.pmax_window_start == over.evidence.period_start


def test_demand_watch_levels_and_capacity_upgrade():
    near = demand_advice(frame("2026-11-01", 3, 0.92 * 2415 / 4), contract(), GUANGDONG)
    assert near.levels_reached == [0.9]
    hot = demand_advice(frame("2026-11-01", 3, 2800 / 4), contract(), GUANGDONG, monthly_pmax_kw=[2700, 2750])
    assert hot.upgrade_advised
    assert "2700, 2750, 2800" in (hot.upgrade_reason or "")
    cool = demand_advice(frame("2026-11-01", 3, 2800 / 4), contract(), GUANGDONG, monthly_pmax_kw=[2400, 2750])
    assert not cool.upgrade_advised


def test_pf_advice_sizes_421_kvar_for_1000_kw_from_080_to_095():
    p = pf_advice(frame("2026-11-01", 30, 250.0, pf=0.80), contract(), GUANGDONG)
    assert p.pf == 0.8
    assert p.adjustment_pct == 5.0
    assert p.design_kw == pytest.approx(1000.0)
    assert p.capacitor_kvar == pytest.approx(421, abs=0.5)
    assert p.adjustment_money > 0
    assert p.money_per_month > p.adjustment_money, "from a surcharge to a reward at 0.95"
    assert p.payback_months == pytest.approx(p.capacitor_cost / p.money_per_month)


def test_pf_at_the_standard_costs_nothing():
    f = frame("2026-11-01", 30, 100_000 / (30 * 96))
    f["kvarh"] = 48_432 / (30 * 96)
    p = pf_advice(f, contract(), GUANGDONG)
    assert p.pf == 0.9
    assert p.adjustment_pct == 0
    assert p.adjustment_money == 0


def test_base_load_and_its_rise():
    idx = pd.date_range(pd.Timestamp("2026-10-05", tz=TZ), periods=35 * 96, freq="15min")  # Monday, 5 weeks
    kw = np.where((idx.hour >= 8) & (idx.hour < 20) & (idx.dayofweek < 5), 1000.0, 200.0)
    kw[idx >= pd.Timestamp("2026-11-02", tz=TZ)] += 50  # the last week's base load rises 25 %
    f = pd.DataFrame({"kwh": kw / 4, "kvarh": kw / 8}, index=idx)
    b = base_load(f, SICHUAN)
    assert b.base_kw == pytest.approx(200.0)
    assert b.weekly_base_kw[list(b.weekly_base_kw)[-1]] == pytest.approx(250.0)
    assert b.rise_pct == pytest.approx(25.0)
    assert b.alert
    assert 0 < b.off_hours_share < 1
    assert b.money_per_month > 0
    operating = pd.Series(True, index=idx)
    assert base_load(f, SICHUAN, operating=operating).base_kw is None


def test_bill_forecast_against_the_threshold():
    month = frame("2026-11-01", 30, 100.0)
    as_of = datetime(2026, 11, 16, tzinfo=ZoneInfo(TZ))
    full = float(energy_cost(month["kwh"], SICHUAN)["energy_cost"].iloc[-1])
    mtd = month[month.index < as_of]
    b = bill_forecast(mtd, contract(tariff_id="sichuan-2023", bill_threshold=1e9), SICHUAN, as_of)
    assert b.mtd_kwh == pytest.approx(15 * 96 * 100)
    assert b.remaining_kwh == pytest.approx(15 * 96 * 100), "same-weekday profile of a constant load"
    assert b.mtd_energy_cost + b.remaining_energy_cost == pytest.approx(full)
    assert b.total == pytest.approx(full + b.basic_charge)
    assert not b.over_threshold
    tight = bill_forecast(mtd, contract(tariff_id="sichuan-2023", bill_threshold=b.total - 1), SICHUAN, as_of)
    assert tight.over_threshold
    rest = month.index[month.index >= as_of]
    fc = pd.DataFrame({"forecast": 50.0}, index=rest)
    with_fc = bill_forecast(mtd, contract(tariff_id="sichuan-2023"), SICHUAN, as_of, forecast=fc)
    assert with_fc.remaining_kwh == pytest.approx(len(rest) * 50)
    assert "forecast" in with_fc.method


def test_energy_performance_baseline_savings_and_cusum():
    rng = np.random.default_rng(1)
    months = pd.date_range("2025-01-01", periods=18, freq="MS")
    output = rng.uniform(800, 1200, 18)
    kwh = 50_000 + 120 * output + rng.normal(0, 500, 18)
    kwh[12:] -= 3000  # an efficiency measure from month 13
    ep = energy_performance(pd.DataFrame({"kwh": kwh, "output": output}, index=months), baseline_months=12,
                            next_output=1000, price_per_kwh=0.7)
    assert ep.valid
    assert ep.r2 >= 0.75
    assert ep.b == pytest.approx(120, rel=0.05)
    assert all(s > 1000 for s in ep.savings_kwh[12:])
    assert ep.cusum_kwh[-1] > ep.cusum_kwh[11] + 6 * 1000
    assert ep.next_month_kwh == pytest.approx(ep.a + ep.b * 1000)
    assert ep.next_month_cost == pytest.approx(ep.next_month_kwh * 0.7)
    short = energy_performance(pd.DataFrame({"kwh": kwh[:11], "output": output[:11]}, index=months[:11]))
    assert not short.valid
    assert "at least 12" in (short.reason or "")
    noise = energy_performance(pd.DataFrame({"kwh": rng.uniform(1e5, 2e5, 12), "output": output[:12]},
                                            index=months[:12]))
    assert not noise.valid
    assert "R^2" in (noise.reason or "")


def test_saving_advice_is_ranked_by_money_with_evidence():
    month = frame("2026-11-01", 30, np.tile(np.r_[np.full(32, 150.0), np.full(64, 600.0)], 30), pf=0.8)
    results = run_all(month, contract(), GUANGDONG)
    advice = results["advice"]
    assert len(advice) >= 3
    money = [a.money_per_month for a in advice]
    assert money == sorted(money, reverse=True)
    assert {a.kind for a in advice} >= {"load_shift", "power_factor", "base_load"}
    for a in advice:
        assert a.evidence.period_start == month.index[0].to_pydatetime()
        assert a.money_per_year == pytest.approx(12 * a.money_per_month)
        assert a.assumptions
    assert saving_advice() == []


@pytest.mark.parametrize(("bad", "message"), [
    (pd.DataFrame({"kwh": []}, index=pd.DatetimeIndex([], tz=TZ)), "no intervals"),
    (pd.DataFrame({"kwh": [1.0]}, index=pd.DatetimeIndex(["2026-01-01"])), "tz-aware"),
    (pd.DataFrame({"kw": [1.0]}, index=pd.DatetimeIndex(["2026-01-01"], tz=TZ)), r"lacks column\(s\) kwh"),
])
def test_bad_input_names_what_is_wrong(bad, message):
    with pytest.raises(ServiceError, match=message) as err:
        load_curve_card(bad)
    assert isinstance(err.value, CrmError)


def test_unknown_tariff_is_a_crm_error():
    with pytest.raises(CrmError, match="unknown tariff 'nowhere'"):
        run_all(frame("2026-11-01", 1), contract(tariff_id="nowhere"))
