"""Properties of the services over generated interval data: what must hold whatever the load."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from crm_bridge.services import ContractInputs, bill_forecast, load_curve_card, pf_advice, tou_advice
from crm_bridge.tariffs import energy_cost, load_tariff
from crm_bridge.tariffs.model import parse_tariff

TZ = "Asia/Shanghai"
SICHUAN = load_tariff("sichuan-2023")
TERMS = ContractInputs(transformer_kva=3200.0, contract_demand_kw=2300.0, tariff_id="sichuan-2023")
DAY = pd.date_range(pd.Timestamp("2026-07-15", tz=TZ), periods=96, freq="15min")
loads = arrays(np.float64, 96, elements=st.floats(0, 5000, allow_nan=False))
holes = arrays(np.bool_, 96, elements=st.booleans())


def day_frame(kwh: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"kwh": kwh, "kvarh": kwh / 2, "kw": kwh * 4}, index=DAY)


@settings(max_examples=60, deadline=None)
@given(loads, holes)
def test_card_figures_stay_in_range_and_gaps_stay_gaps(kwh: np.ndarray, hole: np.ndarray) -> None:
    kwh = np.where(hole, np.nan, kwh)
    card = load_curve_card(day_frame(kwh), SICHUAN)
    assert [v is None for v in card.kw] == list(hole)
    assert card.missing == [t.to_pydatetime() for t in DAY[hole]]
    assert card.complete == (not hole.any())
    assert card.evidence.missing_intervals == int(hole.sum())
    assert sum(card.kwh_by_band.values()) == pytest.approx(np.nansum(kwh))
    if card.pmax_kw:
        assert card.load_factor is not None
        assert card.peak_valley_rate is not None
        assert 0 <= card.load_factor <= 1 + 1e-12
        assert 0 <= card.peak_valley_rate <= 1
        assert card.pmax_kw == pytest.approx(4 * np.nanmax(kwh))
        assert card.pmax_at is not None
        assert card.kw[list(DAY).index(pd.Timestamp(card.pmax_at))] == pytest.approx(
            card.pmax_kw, abs=1e-3)


@settings(max_examples=40, deadline=None)
@given(loads, st.floats(0, 10_000))
def test_tou_bands_add_up_and_the_shift_saving_is_linear(kwh: np.ndarray, x: float) -> None:
    advice = tou_advice(day_frame(kwh), SICHUAN, shift_kwh=x)
    assert sum(advice.cost_by_band.values()) == pytest.approx(advice.total_cost)
    assert advice.total_kwh == pytest.approx(kwh.sum())
    assert advice.price_from is not None
    assert advice.price_to is not None
    assert advice.saving == pytest.approx(x * (advice.price_from - advice.price_to))
    assert advice.saving >= 0


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 30), st.floats(10, 1000))
def test_a_constant_load_forecasts_the_same_bill_whatever_the_day(day: int, kwh: float) -> None:
    tz = ZoneInfo(TZ)
    month = pd.date_range(pd.Timestamp("2026-11-01", tz=TZ), periods=30 * 96, freq="15min")
    whole = pd.DataFrame({"kwh": kwh, "kvarh": kwh / 2, "kw": kwh * 4}, index=month)
    as_of = datetime(2026, 11, day, tzinfo=tz)
    bill = bill_forecast(whole[whole.index < pd.Timestamp(as_of)], TERMS, SICHUAN, as_of)
    energy = float(energy_cost(whole["kwh"], SICHUAN)["energy_cost"].iloc[-1])
    assert bill.mtd_energy_cost + bill.remaining_energy_cost == pytest.approx(energy)
    assert bill.mtd_kwh + bill.remaining_kwh == pytest.approx(30 * 96 * kwh)


@settings(max_examples=40, deadline=None)
@given(st.floats(0.5, 0.99), st.floats(0.5, 0.99), st.floats(50, 5000))
def test_capacitor_only_below_the_target_and_larger_for_worse_pf(pf1: float, pf2: float, kw: float) -> None:
    idx = pd.date_range(pd.Timestamp("2026-11-01", tz=TZ), periods=30 * 96, freq="15min")
    worse, better = sorted((pf1, pf2))
    results = []
    for pf in (worse, better):
        f = pd.DataFrame({"kwh": kw / 4, "kvarh": kw / 4 * np.tan(np.arccos(pf))}, index=idx)
        results.append(pf_advice(f, TERMS, SICHUAN))
    for r in results:
        assert r.pf is not None
        assert (r.capacitor_kvar is not None) == (r.pf < r.target_pf)
        if r.capacitor_kvar is not None:
            assert r.capacitor_kvar > 0
            assert r.capacitor_cost == pytest.approx(r.capacitor_kvar * 150.0)
    if results[0].capacitor_kvar is not None and results[1].capacitor_kvar is not None:
        assert results[0].capacitor_kvar >= results[1].capacitor_kvar
    assert results[0].money_per_month >= results[1].money_per_month - 1e-6


@settings(max_examples=25, deadline=None)
@given(arrays(np.float64, 96 * 3, elements=st.floats(0, 5000, allow_nan=False)),
       arrays(np.bool_, 96 * 3, elements=st.booleans()))
def test_tou_per_band_figures_equal_the_tariff_packages_energy_cost(kwh: np.ndarray, hole: np.ndarray) -> None:
    doc = SICHUAN.model_dump(mode="json")
    later = {**doc["versions"][0], "valid_from": "2026-06-02",
             "energy_prices": {"critical_peak": 2.0, "peak": 1.7, "flat": 1.0, "valley": 0.3}}
    doc["versions"].append(later)  # a price change inside the data: 1 June at the old prices, 2-3 June at the new
    tariff = parse_tariff(doc)
    idx = pd.date_range(pd.Timestamp("2026-06-01", tz=TZ), periods=96 * 3, freq="15min")
    f = pd.DataFrame({"kwh": np.where(hole, np.nan, kwh)}, index=idx)
    reference = energy_cost(f["kwh"], tariff).drop(index="total")
    advice = tou_advice(f, tariff)
    assert advice.kwh_by_band == pytest.approx({str(b): float(v) for b, v in reference["kwh"].items()})
    assert advice.cost_by_band == pytest.approx({str(b): float(v) for b, v in reference["energy_cost"].items()})
    assert advice.price_from == 1.7, "the advice prices the shift at the version in force at the end"
