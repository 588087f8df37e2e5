"""DOMAIN.md §2 worked examples and property tests of the tariff maths."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_bridge.errors import TariffError
from crm_bridge.tariffs import (
    basic_charges,
    capacitor_kvar,
    energy_cost,
    load_tariff,
    monthly_pf,
    pf_adjustment_pct,
    shift_saving,
)
from crm_bridge.tariffs.model import parse_tariff

GD = load_tariff("guangdong-1-10kv").version_at(date(2024, 5, 1))


def test_basic_charge_worked_examples():
    assert basic_charges(GD, 3200, pmax_kw=0).capacity == pytest.approx(72_320)
    assert basic_charges(GD, 3200, pmax_kw=2400).demand == pytest.approx(86_640)
    c = basic_charges(GD, 3200, pmax_kw=2500, contract_kw=2300)
    assert round(c.contract) == 89_167  # 2300 x 36.1 + 2 x 36.1 x (2500 - 2415)
    assert round(c.break_even_pmax_kw) == 2003  # demand billing is cheaper below (22.6 / 36.1) x 3200
    assert c.recommended_contract_kw == pytest.approx(2500 / 1.05)
    assert basic_charges(GD, 3200, pmax_kw=1900).cheapest == "demand"
    assert basic_charges(GD, 3200, pmax_kw=2100).cheapest == "capacity"
    # The contract floor: never billed below 40 % of the transformer.
    assert basic_charges(GD, 3200, pmax_kw=500, contract_kw=1000).contract == pytest.approx(1280 * 36.1)


def test_power_factor_worked_examples():
    assert monthly_pf(100_000, 48_432) == 0.90
    assert pf_adjustment_pct(0.90) == 0.0
    assert pf_adjustment_pct(0.95) == -0.75
    assert pf_adjustment_pct(0.98) == -0.75
    assert pf_adjustment_pct(0.92) == pytest.approx(-0.30)
    assert pf_adjustment_pct(0.85) == pytest.approx(2.5)
    assert pf_adjustment_pct(0.70) == pytest.approx(10.0)
    assert pf_adjustment_pct(0.60) == pytest.approx(25.0)
    assert pf_adjustment_pct(0.80, standard=0.85) == pytest.approx(2.5)
    with pytest.raises(TariffError, match="no PF adjustment table for standard 0.75"):
        pf_adjustment_pct(0.8, standard=0.75)


def test_capacitor_sizing_and_load_shift_worked_examples():
    assert round(capacitor_kvar(1000, 0.80, 0.95)) == 421
    sichuan = load_tariff("sichuan-2023").version_at(date(2023, 6, 1)).energy_prices
    assert shift_saving(100, sichuan["peak"], sichuan["valley"]) == pytest.approx(120)
    assert sichuan["critical_peak"] == pytest.approx(1.92 * sichuan["flat"])


def test_sichuan_bands_and_critical_peak():
    t = load_tariff("sichuan-2023")
    idx = pd.DatetimeIndex(["2023-07-10T16:00", "2023-05-10T16:00", "2023-12-10T20:00", "2023-05-10T03:00"]
                           ).tz_localize("Asia/Shanghai")
    assert t.price_table(idx)["band"].tolist() == ["critical_peak", "peak", "critical_peak", "valley"]


def test_tariff_documents_are_validated():
    base = {"id": "x", "versions": [{"valid_from": "2024-01-01", "basic_per_kw_month": 1, "basic_per_kva_month": 1,
                                     "energy_prices": {"flat": 1.0},
                                     "bands": [{"band": "flat", "months": list(range(1, 13)), "start": "00:00",
                                                "end": "23:00"}]}]}
    with pytest.raises(TariffError, match="23:00 belongs to no band"):
        parse_tariff(base)
    base["versions"][0]["bands"][0]["end"] = "24:00"
    base["versions"][0]["bands"].append({"band": "peak", "months": [1], "start": "10:00", "end": "11:00"})
    with pytest.raises(TariffError, match="'peak' has no price"):
        parse_tariff(base)
    with pytest.raises(TariffError, match="unknown tariff 'nope'"):
        load_tariff("nope")
    with pytest.raises(TariffError, match="'sichuan-2023' is not in force on 2022-12-31: its first version starts "
                                          "2023-01-01"):
        load_tariff("sichuan-2023").price_table(pd.DatetimeIndex(["2022-12-31T10:00"]).tz_localize("Asia/Shanghai"))


def _two_versions():
    doc = load_tariff("sichuan-2023").model_dump(mode="json")
    newer = dict(doc["versions"][0])
    newer["valid_from"] = "2024-06-01"
    newer["energy_prices"] = {k: v * 1.3 for k, v in newer["energy_prices"].items()}
    doc["versions"] = [doc["versions"][0], newer]
    return parse_tariff(doc)


loads = st.lists(st.floats(min_value=0, max_value=5000, allow_nan=False), min_size=96 * 2, max_size=96 * 2)


@settings(max_examples=40, deadline=None)
@given(loads)
def test_cost_over_bands_equals_the_total(values):
    idx = pd.date_range(pd.Timestamp("2024-05-31", tz="Asia/Shanghai"), periods=len(values), freq="15min")
    t = _two_versions()
    costs = energy_cost(pd.Series(values, index=idx), t)
    bands = costs.drop(index="total")
    assert bands["energy_cost"].sum() == pytest.approx(costs.loc["total", "energy_cost"])
    direct = float(np.sum(np.array(values) * t.price_table(idx)["price"].to_numpy()))
    assert costs.loc["total", "energy_cost"] == pytest.approx(direct)


@settings(max_examples=40, deadline=None)
@given(loads)
def test_a_tariff_change_never_reprices_the_past(values):
    may = pd.date_range(pd.Timestamp("2024-05-30", tz="Asia/Shanghai"), periods=len(values), freq="15min")
    old_only = load_tariff("sichuan-2023")
    with_change = _two_versions()  # a new version from 1 June
    s = pd.Series(values, index=may)
    assert energy_cost(s, with_change).loc["total", "energy_cost"] == pytest.approx(
        energy_cost(s, old_only).loc["total", "energy_cost"])
    june = pd.Series(values, index=may + pd.Timedelta(days=2))
    if sum(values) > 0:
        assert energy_cost(june, with_change).loc["total", "energy_cost"] > energy_cost(
            june, old_only).loc["total", "energy_cost"]


@settings(max_examples=60, deadline=None)
@given(loads, st.floats(min_value=0, max_value=1), st.integers(0, 10_000))
def test_shifting_load_from_peak_to_valley_never_raises_cost(values, share, seed):
    idx = pd.date_range(pd.Timestamp("2024-03-04", tz="Asia/Shanghai"), periods=len(values), freq="15min")
    t = load_tariff("sichuan-2023")
    bands = t.price_table(idx)["band"].to_numpy()
    rng = np.random.default_rng(seed)
    peak = rng.choice(np.flatnonzero(bands == "peak"))
    valley = rng.choice(np.flatnonzero(bands == "valley"))
    before = np.array(values)
    after = before.copy()
    moved = before[peak] * share
    after[peak] -= moved
    after[valley] += moved
    cost = lambda v: energy_cost(pd.Series(v, index=idx), t).loc["total", "energy_cost"]  # noqa: E731
    assert cost(after) <= cost(before) + 1e-6
    assert cost(before) - cost(after) == pytest.approx(moved * (1.6 - 0.4), abs=1e-6)


def test_holidays_are_priced_as_their_band_and_only_in_their_version():
    from datetime import date

    import pandas as pd

    from crm_bridge.tariffs.model import parse_tariff

    doc = {"id": "h", "timezone": "Asia/Shanghai", "versions": [
        {"valid_from": "2026-01-01", "basic_per_kw_month": 0, "basic_per_kva_month": 0,
         "energy_prices": {"peak": 1.0, "valley": 0.3}, "holidays": [date(2026, 10, 1)], "holiday_band": "valley",
         "bands": [{"band": "valley", "months": list(range(1, 13)), "start": "00:00", "end": "08:00"},
                   {"band": "peak", "months": list(range(1, 13)), "start": "08:00", "end": "24:00"}]}]}
    tariff = parse_tariff(doc)
    idx = pd.date_range(pd.Timestamp("2026-09-30", tz="Asia/Shanghai"), periods=3 * 96, freq="15min")
    table = tariff.price_table(idx)
    days = table.groupby(idx.date)["band"].agg(lambda b: sorted(set(b)))
    assert days[date(2026, 10, 1)] == ["valley"]
    assert days[date(2026, 9, 30)] == days[date(2026, 10, 2)] == ["peak", "valley"]
    bad = {**doc["versions"][0], "holiday_band": None}
    with pytest.raises(TariffError, match="holidays need a holiday_band"):
        parse_tariff({"id": "h", "versions": [bad]})


def test_a_tariff_without_a_zone_needs_the_customers() -> None:
    doc = load_tariff("sichuan-2023").model_dump(mode="json")
    del doc["timezone"]
    zoneless = parse_tariff(doc)
    idx = pd.DatetimeIndex(["2023-05-10T03:00"]).tz_localize("Asia/Shanghai")
    with pytest.raises(TariffError, match="names no time zone"):
        zoneless.price_table(idx)
    assert zoneless.price_table(idx, "Asia/Shanghai")["band"].tolist() == ["valley"]
    with pytest.raises(TariffError, match="unknown time zone 'Mars/Olympus'"):
        parse_tariff({**doc, "timezone": "Mars/Olympus"})
