"""Every service reads the one month bill: same figures across surfaces, versions per interval, the raised contract."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from crm_bridge.errors import NoData
from crm_bridge.services import ContractInputs, bill_forecast, demand_advice, pf_advice, run_all, saving_advice
from crm_bridge.tariffs import month_bill
from crm_bridge.tariffs.model import parse_tariff

SH = "Asia/Shanghai"
ALL_MONTHS = list(range(1, 13))


def _version(valid_from: str, valley: float, peak: float, per_kw: float, per_kva: float, funds: float) -> dict:
    return {"valid_from": valid_from, "basic_per_kw_month": per_kw, "basic_per_kva_month": per_kva,
            "government_funds_per_kwh": funds, "energy_prices": {"valley": valley, "peak": peak},
            "bands": [{"band": "valley", "months": ALL_MONTHS, "start": "00:00", "end": "08:00"},
                      {"band": "peak", "months": ALL_MONTHS, "start": "08:00", "end": "24:00"}]}


# New prices from 16 November 2026 (a 30-day month: 15 days each).
TARIFF = parse_tariff({"id": "two-step", "timezone": SH, "versions": [
    _version("2026-01-01", valley=0.4, peak=1.0, per_kw=30.0, per_kva=20.0, funds=0.02),
    _version("2026-11-16", valley=0.5, peak=1.2, per_kw=36.0, per_kva=24.0, funds=0.03),
]})
TERMS = ContractInputs(transformer_kva=1000.0, contract_demand_kw=500.0, basic_charge_mode="demand",
                       tariff_id="two-step")
DECEMBER = datetime(2026, 12, 1, tzinfo=ZoneInfo(SH))


def november(kwh: float | np.ndarray = 100.0, pf: float = 0.8) -> pd.DataFrame:
    idx = pd.date_range(pd.Timestamp("2026-11-01", tz=SH), periods=30 * 96, freq="15min")
    values = np.broadcast_to(np.asarray(kwh, dtype=float), (len(idx),)).copy()
    return pd.DataFrame({"kwh": values, "kvarh": values * np.tan(np.arccos(pf)), "kw": values * 4}, index=idx)


def test_every_service_gives_the_month_bills_figures() -> None:
    month = november()
    bill = month_bill(month, TERMS, TARIFF, "2026-11", now=DECEMBER)
    # worked in tests/crm_bridge/tariffs/test_month_bill.py: energy 254,400, demand charge 13,200 prorated
    # (400 kW x 30 x 15/30 + 400 kW x 36 x 15/30; the version of the 1st alone would say 12,000, the last day's
    # 14,400), PF 0.80 -> +5 % = 13,380, funds 7,200, total 288,180
    assert bill.total == pytest.approx(288_180)
    forecast = bill_forecast(month, TERMS, TARIFF, DECEMBER)  # the month is over: nothing left to forecast
    assert (forecast.total, forecast.basic_charge, forecast.pf_adjustment, forecast.funds) == pytest.approx(
        (bill.total, bill.basic_charge, bill.pf_adjustment, bill.government_funds))
    assert forecast.mtd_energy_cost == pytest.approx(bill.energy_charge)
    demand = demand_advice(month, TERMS, TARIFF)
    assert demand.charges == pytest.approx({"capacity": 22_000, "demand": 13_200, "contract": 16_500})
    assert demand.charges == pytest.approx({m: getattr(bill.basic, m) for m in ("capacity", "demand", "contract")})
    assert (demand.pmax_kw, demand.pmax_window_start) == (bill.peak_kw, bill.peak_at)
    pf = pf_advice(month, TERMS, TARIFF)
    assert (pf.pf, pf.adjustment_pct) == (bill.pf, bill.pf_adjustment_pct)
    assert pf.adjustment_money == pytest.approx(bill.pf_adjustment)  # 5 % of (254,400 + 13,200)
    everything = run_all(month, TERMS, TARIFF, as_of=DECEMBER)
    assert everything["bill"].total == pytest.approx(bill.total)
    assert everything["pf"].adjustment_money == pytest.approx(bill.pf_adjustment)


def test_the_bill_forecast_prices_each_forecast_interval_by_its_version() -> None:
    month = november()
    as_of = datetime(2026, 11, 10, tzinfo=ZoneInfo(SH))
    rest = month[month.index >= pd.Timestamp(as_of)]
    fc = pd.DataFrame({"forecast": rest["kwh"]}, index=rest.index.tz_convert("UTC"))  # any zone
    b = bill_forecast(month[month.index < pd.Timestamp(as_of)], TERMS, TARIFF, as_of, forecast=fc)
    # 9 days measured at the old prices: 9 x (32 x 100 x 0.4 + 64 x 100 x 1.0) = 9 x 7,680 = 69,120
    assert b.mtd_energy_cost == pytest.approx(69_120)
    # the rest: 6 more old days (46,080) and 15 new days at 32 x 100 x 0.5 + 64 x 100 x 1.2 = 9,280 (139,200)
    assert b.remaining_energy_cost == pytest.approx(6 * 7_680 + 15 * 9_280)
    assert b.basic_charge == pytest.approx(13_200)
    # no kvarh in the forecast: the PF is the month to date's, 0.80 -> +5 %
    assert b.pf == 0.8
    assert b.total == pytest.approx(288_180)
    utc = bill_forecast(month[month.index < pd.Timestamp(as_of)].tz_convert("UTC"), TERMS, TARIFF, as_of,
                        forecast=fc)
    assert utc.total == pytest.approx(b.total), "the same month on a UTC index"


def test_pending_intervals_are_not_elapsed_time() -> None:
    month = november()
    month["status"] = np.where(month.index >= pd.Timestamp("2026-11-16", tz=SH), "pending", "measured")
    month.loc[month["status"] == "pending", ["kwh", "kvarh", "kw"]] = np.nan
    p = pf_advice(month, TERMS, TARIFF)
    # 15 elapsed days of 30: the energy charge to date (15 x 7,680 = 115,200) scaled x 2 = 230,400, plus the
    # prorated demand charge 13,200; PF 0.80 -> +5 %
    assert p.adjustment_money == pytest.approx(0.05 * (230_400 + 13_200))
    assert p.evidence.missing_intervals == 0, "pending is not missing"


def test_the_raised_contract_drives_the_demand_watch_and_advice() -> None:
    low = TERMS.model_copy(update={"contract_demand_kw": 300.0, "basic_charge_mode": "contract"})
    d = demand_advice(november(), low, TARIFF)  # Pmax 400 kW; floor 0.4 x 1000 kVA = 400 kW
    assert (d.contract_kw, d.contract_floor_kw, d.effective_contract_kw) == (300, 400, 400)
    assert d.limit_kw == pytest.approx(420)  # 1.05 x 400, not 1.05 x 300 = 315
    assert d.levels_reached == [0.9], "400 / 420 = 95 %: a warning, not the 127 % of the unraised limit"
    # contract charge on the raised 400 kW, no excess: 400 x 30 x 15/30 + 400 x 36 x 15/30 = 13,200
    assert d.charges["contract"] == pytest.approx(13_200)
    assert d.recommended_contract_kw == pytest.approx(400), "C* = 400 / 1.05 = 381 kW is raised to the floor"
    assert any("raised to the floor" in a for a in d.evidence.assumptions)
    assert [i.kind for i in saving_advice(demand=d)] == []


def test_capacity_upgrade_needs_the_previous_months_and_a_gap_breaks_the_run() -> None:
    hot = november(900 / 4)  # 900 kW on 1000 kVA: above 80 %
    peaks = []
    for first in ("2026-09-01", "2026-10-01"):  # earlier months as the store would give them
        idx = pd.date_range(pd.Timestamp(first, tz=SH), pd.Timestamp(first, tz=SH) + pd.offsets.MonthBegin(1),
                            freq="15min", inclusive="left")
        peaks.append(month_bill(pd.DataFrame({"kwh": 225.0}, index=idx), TERMS, TARIFF, first[:7],
                                now=datetime(2026, 11, 1, tzinfo=UTC)).peak_kw)
    assert peaks == [900.0, 900.0]
    assert not demand_advice(hot, TERMS, TARIFF).upgrade_advised, "one month alone is not three running"
    advised = demand_advice(hot, TERMS, TARIFF, monthly_pmax_kw=peaks)
    assert advised.upgrade_advised
    assert "for 3 months: 900, 900, 900 kW" in (advised.upgrade_reason or "")
    assert not demand_advice(hot, TERMS, TARIFF, monthly_pmax_kw=[900.0, None]).upgrade_advised, \
        "October without data breaks the run"


def test_services_refuse_a_month_without_energy_as_no_data() -> None:
    with pytest.raises(NoData):
        demand_advice(november(np.nan), TERMS, TARIFF)
