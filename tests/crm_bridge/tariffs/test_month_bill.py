"""month_bill on hand-computed months: a price change on the 16th, the local clock, statuses, refusals."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from crm_bridge.errors import CrmError, NoData, ServiceError, TariffError, TariffNotInForce
from crm_bridge.services import ContractInputs
from crm_bridge.tariffs import BasicChargeMode, MonthUsage, load_tariff, month_bill, month_usage, priced_intervals
from crm_bridge.tariffs.model import parse_tariff

SH = "Asia/Shanghai"
ALL_MONTHS = list(range(1, 13))


def _version(valid_from: str, valley: float, peak: float, per_kw: float, per_kva: float, funds: float) -> dict:
    return {"valid_from": valid_from, "basic_per_kw_month": per_kw, "basic_per_kva_month": per_kva,
            "government_funds_per_kwh": funds, "energy_prices": {"valley": valley, "peak": peak},
            "bands": [{"band": "valley", "months": ALL_MONTHS, "start": "00:00", "end": "08:00"},
                      {"band": "peak", "months": ALL_MONTHS, "start": "08:00", "end": "24:00"}]}


# Valley 00-08 (32 intervals a day), peak 08-24 (64). New prices from 16 November 2026.
TARIFF = parse_tariff({"id": "two-step", "timezone": SH, "versions": [
    _version("2026-01-01", valley=0.4, peak=1.0, per_kw=30.0, per_kva=20.0, funds=0.02),
    _version("2026-11-16", valley=0.5, peak=1.2, per_kw=36.0, per_kva=24.0, funds=0.03),
]})
TERMS = ContractInputs(transformer_kva=1000.0, contract_demand_kw=500.0, basic_charge_mode="demand",
                       tariff_id="two-step")
DECEMBER = datetime(2026, 12, 1, tzinfo=UTC)


def november(kwh: float | np.ndarray = 100.0, pf: float = 0.8, tz: str = SH) -> pd.DataFrame:
    idx = pd.date_range(pd.Timestamp("2026-11-01", tz=tz), periods=30 * 96, freq="15min")
    values = np.broadcast_to(np.asarray(kwh, dtype=float), (len(idx),)).copy()
    return pd.DataFrame({"kwh": values, "kvarh": values * np.tan(np.arccos(pf))}, index=idx)


def test_a_price_change_on_the_16th_of_a_30_day_month() -> None:
    bill = month_bill(november(), TERMS, TARIFF, "2026-11", now=DECEMBER)
    # energy by interval: 100 kWh each; days 1-15 at the old prices, 16-30 at the new
    # valley: 15 x 32 x 100 = 48,000 kWh at 0.4 = 19,200  +  48,000 kWh at 0.5 = 24,000  -> 96,000 kWh, 43,200
    # peak:   15 x 64 x 100 = 96,000 kWh at 1.0 = 96,000  +  96,000 kWh at 1.2 = 115,200 -> 192,000 kWh, 211,200
    assert bill.energy_by_band["valley"].kwh == pytest.approx(96_000)
    assert bill.energy_by_band["valley"].money == pytest.approx(43_200)
    assert bill.energy_by_band["peak"].kwh == pytest.approx(192_000)
    assert bill.energy_by_band["peak"].money == pytest.approx(211_200)
    assert list(bill.energy_by_band) == ["peak", "valley"], "dearest band first"
    assert (bill.energy_kwh, bill.energy_charge) == pytest.approx((288_000, 254_400))
    # basic charge prorated by days: Pmax 400 kW (100 kWh x 4)
    # demand:   400 x 30 x 15/30 + 400 x 36 x 15/30 = 6,000 + 7,200 = 13,200
    # capacity: 1000 x 20 x 15/30 + 1000 x 24 x 15/30 = 10,000 + 12,000 = 22,000
    # contract: 500 (floor 0.4 x 1000 = 400) x 30 x 15/30 + 500 x 36 x 15/30 = 7,500 + 9,000 = 16,500
    assert bill.peak_kw == pytest.approx(400)
    assert bill.basic.demand == pytest.approx(13_200)
    assert bill.basic.capacity == pytest.approx(22_000)
    assert bill.basic.contract == pytest.approx(16_500)
    assert (bill.basic.mode, bill.basic_charge, bill.basic.cheapest) == (BasicChargeMode.DEMAND, 13_200, "demand")
    # PF: kvarh = 0.75 kWh -> 1 / sqrt(1 + 0.5625) = 0.80 -> +5 % on energy + basic (254,400 + 13,200) = 13,380
    assert (bill.pf, bill.pf_adjustment_pct) == (0.8, 5.0)
    assert bill.pf_adjustment == pytest.approx(13_380)
    # funds: 144,000 kWh x 0.02 + 144,000 kWh x 0.03 = 2,880 + 4,320 = 7,200 (not PF-adjusted)
    assert bill.government_funds == pytest.approx(7_200)
    assert bill.total == pytest.approx(254_400 + 13_200 + 13_380 + 7_200)  # 288,180
    assert [(v.valid_from, v.first_day, v.days) for v in bill.versions] == [
        (date(2026, 1, 1), date(2026, 11, 1), 15), (date(2026, 11, 16), date(2026, 11, 16), 15)]
    assert bill.load_factor == pytest.approx(1.0)
    assert bill.complete
    assert len(bill.days) == 30
    assert sum(d.kwh or 0 for d in bill.days) == pytest.approx(bill.energy_kwh)


def test_each_interval_is_priced_by_the_version_of_its_local_day() -> None:
    rows = priced_intervals(november(), TARIFF, "2026-11", now=DECEMBER)
    assert rows.loc[pd.Timestamp("2026-11-15 23:45", tz=SH), "price"] == 1.0  # last peak interval, old price
    assert rows.loc[pd.Timestamp("2026-11-16 00:00", tz=SH), "price"] == 0.5  # first valley interval, new price
    assert rows.loc[pd.Timestamp("2026-11-16 00:00", tz=SH), "valid_from"] == date(2026, 11, 16)
    assert rows["money"].sum() == pytest.approx(254_400)


def test_a_utc_index_is_priced_on_the_local_clock() -> None:
    local = november(np.arange(30 * 96) % 96 + 1.0)  # a load that differs at every time of day
    utc = local.tz_convert("UTC")
    assert utc.index[0].hour == 16, "00:00 in Shanghai is 16:00 UTC the day before"
    a = month_bill(local, TERMS, TARIFF, "2026-11", now=DECEMBER)
    b = month_bill(utc, TERMS, TARIFF, "2026-11", now=DECEMBER)
    assert b == a
    # the customer's zone given (here the same as the tariff's) names the clock explicitly
    c = month_bill(utc, TERMS.model_copy(update={"timezone": SH}), TARIFF, date(2026, 11, 1), now=DECEMBER)
    assert c == a
    # read on its own wall clock, the UTC index would put Shanghai's 00:00 (valley) at 16:00 (peak)
    assert TARIFF.price_table(utc.index[:1])["band"].tolist() == ["valley"]
    assert TARIFF.price_table(utc.index[:1], tz="UTC")["band"].tolist() == ["peak"]


def test_a_customer_zone_other_than_the_tariffs_sets_the_clock_and_the_month() -> None:
    berlin = november(tz="Europe/Berlin")
    bill = month_bill(berlin, TERMS.model_copy(update={"timezone": "Europe/Berlin"}), TARIFF, "2026-11",
                      now=DECEMBER)
    assert bill.timezone == "Europe/Berlin"
    assert bill.start == datetime(2026, 11, 1, tzinfo=ZoneInfo("Europe/Berlin"))
    assert bill.energy_charge == pytest.approx(254_400), "the same wall-clock bands, on Berlin's clock"
    # on the tariff's own clock, Berlin's 30 November from 17:00 on is already December in Shanghai
    with pytest.raises(ServiceError, match="interval 2026-12-01 00:00:00[+]08:00 is not a 15-min interval of 2026-11 "
                                           "in Asia/Shanghai"):
        month_bill(berlin, TERMS, TARIFF, "2026-11", now=DECEMBER)


def test_a_naive_index_is_refused() -> None:
    naive = november().tz_localize(None)
    with pytest.raises(TariffError, match="naive"):
        month_bill(naive, TERMS, TARIFF, "2026-11", now=DECEMBER)


def test_a_month_before_the_first_version_names_the_tariff_and_its_first_date() -> None:
    october_2025 = pd.DataFrame({"kwh": [1.0]}, index=pd.DatetimeIndex(["2025-10-10 10:00"]).tz_localize(SH))
    with pytest.raises(TariffNotInForce) as err:
        month_bill(october_2025, TERMS, TARIFF, "2025-10", now=DECEMBER)
    assert (err.value.tariff_id, err.value.first_date) == ("two-step", date(2026, 1, 1))
    assert "'two-step'" in str(err.value)
    assert "2026-01-01" in str(err.value)
    assert isinstance(err.value, CrmError)
    # the date is the local one: 2022-12-31 15:45 UTC is 23:45 on the 31st in Shanghai, 16:00 UTC is 1 January
    sichuan = load_tariff("sichuan-2023")
    with pytest.raises(TariffNotInForce, match="'sichuan-2023' is not in force on 2022-12-31: its first version "
                                               "starts 2023-01-01"):
        sichuan.price_table(pd.DatetimeIndex(["2022-12-31 15:45"]).tz_localize("UTC"))
    assert sichuan.price_table(pd.DatetimeIndex(["2022-12-31 16:00"]).tz_localize("UTC"))["band"].iloc[0] == "valley"
    # a first version starting mid-month: the month's first half cannot be billed
    late = parse_tariff({"id": "late", "timezone": SH, "versions": [
        _version("2026-11-16", 0.5, 1.2, 36.0, 24.0, 0.0)]})
    with pytest.raises(TariffNotInForce, match="first version starts 2026-11-16"):
        month_bill(november(), TERMS, late, "2026-11", now=DECEMBER)


def test_statuses_count_apart_and_the_load_factor_is_over_elapsed_time() -> None:
    f = november(100.0)
    f["status"] = "measured"
    day = f.index.day
    hour = f.index.hour
    est = (day == 2) & (hour >= 8) & (hour < 10)  # 8 estimated intervals of 50 kWh
    f.loc[est, ["kwh", "status"]] = [50.0, "estimated"]
    f.loc[day == 3, ["kwh", "status"]] = [np.nan, "missing"]  # a day lost: 96 missing
    f.loc[pd.Timestamp("2026-11-05 14:00", tz=SH), "kwh"] = 150.0  # the peak: 600 kW
    f.loc[(day == 10) & (hour == 11), ["kwh", "status"]] = [np.nan, "pending"]  # a live meter one hour behind
    now = datetime(2026, 11, 10, 12, 0, tzinfo=ZoneInfo(SH))
    f = f[f.index < pd.Timestamp(now)]  # the store has nothing after now
    bill = month_bill(f, TERMS, TARIFF, "2026-11", now=now)
    # measured: 7 whole days (1, 4-9) = 672, day 2 without its 8 estimated = 88, day 10 00:00-11:00 = 44 -> 804
    # pending: 2880 - 804 - 8 - 96 = 1972 (the 4 late intervals of day 10 and everything from 12:00 on)
    assert bill.intervals.model_dump() == {"measured": 804, "estimated": 8, "missing": 96, "pending": 1972}
    # energy: 803 x 100 + 150 + 8 x 50 = 80,300 + 150 + 400 = 80,850 kWh over (804 + 8) / 4 = 203 h
    assert bill.energy_kwh == pytest.approx(80_850)
    assert bill.elapsed_hours == 203
    assert bill.average_kw == pytest.approx(80_850 / 203)  # 398.28 kW, not 80,850 / 720 h
    assert (bill.peak_kw, bill.peak_at) == (600.0, datetime(2026, 11, 5, 14, 0, tzinfo=ZoneInfo(SH)))
    assert bill.load_factor == pytest.approx(80_850 / 203 / 600)  # 0.6638
    assert not bill.complete
    day3 = next(d for d in bill.days if d.day == date(2026, 11, 3))
    assert (day3.kwh, day3.pf, day3.missing) == (None, None, 96)
    # without a status column: NaN before `now` is missing, after it pending; values count as measured
    plain = month_bill(f.drop(columns="status"), TERMS, TARIFF, "2026-11", now=now)
    assert plain.intervals.model_dump() == {"measured": 812, "estimated": 0, "missing": 100, "pending": 1968}
    assert plain.energy_kwh == pytest.approx(80_850)
    # without a contract or tariff (a customer with no contract on file) the metered figures are the same, exactly
    usage = month_usage(f, "2026-11", ZoneInfo(SH), now=now)
    assert usage.model_dump() == {k: v for k, v in bill.model_dump().items() if k in MonthUsage.model_fields}
    with pytest.raises(NoData, match="no data yet for 2026-12"):
        month_usage(f, "2026-12", SH, now=now)


def test_a_month_that_has_not_begun_or_has_no_energy_is_no_data() -> None:
    with pytest.raises(NoData, match="no data yet for 2026-12"):
        month_bill(november().iloc[:0], TERMS, TARIFF, "2026-12", now=datetime(2026, 11, 20, tzinfo=UTC))
    empty = november(np.nan)
    with pytest.raises(NoData, match=r"no data for 2026-11: no interval with energy \(2880 missing, 0 pending\)"):
        month_bill(empty, TERMS, TARIFF, "2026-11", now=DECEMBER)
    assert issubclass(NoData, CrmError)


def test_without_kvarh_there_is_no_pf_and_no_adjustment() -> None:
    bill = month_bill(november().drop(columns="kvarh"), TERMS, TARIFF, "2026-11", now=DECEMBER)
    assert (bill.pf, bill.pf_adjustment_pct, bill.pf_adjustment, bill.kvarh) == (None, None, 0.0, None)
    assert bill.total == pytest.approx(254_400 + 13_200 + 7_200)


def test_bad_frames_are_refused_with_what_is_wrong() -> None:
    f = november()
    with pytest.raises(ServiceError, match="appears more than once"):
        month_bill(pd.concat([f.iloc[:3], f.iloc[2:4]]), TERMS, TARIFF, "2026-11", now=DECEMBER)
    bad = f.assign(status="guessed")
    with pytest.raises(ServiceError, match="unknown interval status 'guessed'"):
        month_bill(bad, TERMS, TARIFF, "2026-11", now=DECEMBER)
    with pytest.raises(ServiceError, match="month '11/2026' is not YYYY-MM"):
        month_bill(f, TERMS, TARIFF, "11/2026", now=DECEMBER)


CHANGE = parse_tariff({"id": "change", "timezone": SH, "versions": [
    load_tariff("sichuan-2023").model_dump(mode="json")["versions"][0],
    {**load_tariff("sichuan-2023").model_dump(mode="json")["versions"][0], "valid_from": "2026-07-02",
     "energy_prices": {"critical_peak": 2.0, "peak": 1.7, "flat": 1.0, "valley": 0.3},
     "government_funds_per_kwh": 0.02},
]})
N = 96 * 3


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, N, elements=st.floats(0, 5000, allow_nan=False)), arrays(np.bool_, N, elements=st.booleans()),
       st.sampled_from(["capacity", "demand", "contract"]), st.floats(0.3, 1.0))
def test_bands_add_up_to_the_total_and_money_to_the_sum_of_interval_prices(
        kwh: np.ndarray, hole: np.ndarray, mode: str, pf: float) -> None:
    idx = pd.date_range(pd.Timestamp("2026-07-01", tz=SH), periods=N, freq="15min")  # a price change on 2 July
    values = np.where(hole, np.nan, kwh)
    frame = pd.DataFrame({"kwh": values, "kvarh": values * np.tan(np.arccos(pf))}, index=idx)
    terms = TERMS.model_copy(update={"basic_charge_mode": BasicChargeMode.parse(mode), "tariff_id": "change"})
    now = datetime(2026, 7, 4, tzinfo=ZoneInfo(SH))
    if np.isnan(values).all():
        with pytest.raises(NoData):
            month_bill(frame, terms, CHANGE, "2026-07", now=now)
        return
    bill = month_bill(frame, terms, CHANGE, "2026-07", now=now)
    assert sum(b.kwh for b in bill.energy_by_band.values()) == pytest.approx(bill.energy_kwh)
    assert sum(b.money for b in bill.energy_by_band.values()) == pytest.approx(bill.energy_charge)
    table = CHANGE.price_table(idx)
    assert bill.energy_charge == pytest.approx(float(np.nansum(values * table["price"].to_numpy())))
    assert bill.government_funds == pytest.approx(float(np.nansum(values * table["funds"].to_numpy())))
    assert bill.energy_kwh == pytest.approx(float(np.nansum(values)))
    assert bill.intervals.total == 31 * 96
    assert bill.intervals.missing == int(hole.sum())
    assert bill.peak_kw == pytest.approx(4 * float(np.nanmax(values)))
    assert bill.basic_charge == getattr(bill.basic, bill.basic.mode.value)
    assert bill.total == pytest.approx(bill.energy_charge + bill.basic_charge + bill.pf_adjustment
                                       + bill.government_funds)
    if bill.pf_adjustment_pct is not None:
        assert bill.pf_adjustment == pytest.approx((bill.energy_charge + bill.basic_charge)
                                                   * bill.pf_adjustment_pct / 100)
