"""Energy performance (ISO 50006): the baseline worked by hand, degree days, CUSUM, measured advice savings, CO2
with a missing factor, and production files refused row by row."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from openpyxl import Workbook

from crm_bridge.services import energy_performance as exported
from crm_bridge.services.performance import advice_saving, co2, emission_factors, energy_performance
from crm_bridge.services.production_io import ProductionFileError, read_production
from crm_bridge.services.usage import energy_performance as old_name

BASE_X = [10, 20, 30, 40, 50, 60] * 2
BASE_E = [1000 + 50 * x + (10 if i < 6 else -10) for i, x in enumerate(BASE_X)]
LATER = [(40, 2900), (20, 2050), (60, 3900), (30, 2400)]  # 2026-01..04: (output, kWh)


def _monthly(later: list[tuple[int, int]] = LATER) -> pd.DataFrame:
    x = BASE_X + [o for o, _ in later]
    e = BASE_E + [k for _, k in later]
    return pd.DataFrame({"kwh": np.array(e, float), "output": np.array(x, float)},
                        index=pd.date_range("2025-01-01", periods=len(x), freq="MS"))


def test_iso_50006_baseline_worked_by_hand() -> None:
    """Baseline 2025-01..12, output x = 10, 20, ..., 60 twice; E = 1000 + 50 x + 10 in the first half-year, - 10 after.

    OLS by hand: the residuals e = +-10 are orthogonal to 1 and to x (sum e = 0; sum e x = 10 (10+...+60)
    - 10 (10+...+60) = 0), so they are the fit's residuals and a = 1000, b = 50 exactly.
    SSE = 12 x 10^2 = 1200. Mean E = 1000 + 50 x 35 = 2750.
    SStot = 50^2 x sum (x - 35)^2 + sum e^2 = 2500 x 2 x (625 + 225 + 25 + 25 + 225 + 625) + 1200
          = 2500 x 3500 + 1200 = 8,751,200.
    R^2 = 1 - 1200 / 8,751,200 = 0.9998629.   CV(RMSE) = sqrt(1200 / (12 - 2)) / 2750 = 10.954 / 2750 = 0.0039834.
    Adequate: R^2 >= 0.75 and CV(RMSE) <= 20 % over 12 months.
    2026-01: x = 40, E = 2900; predicted 1000 + 50 x 40 = 3000; saving 100; SEC 2900 / 40 = 72.5; EnPI 2900 / 3000.
    2026-02: x = 20, E = 2050; predicted 2000; saving -50.   2026-03: x = 60, E = 3900; predicted 4000; saving 100.
    CUSUM of savings: the baseline year's savings are -10 six times then +10 six times (0 at 2025-12),
    then 100, 50, 150. Next month with a planned output of 50: 1000 + 50 x 50 = 3500 kWh, at 0.8 = 2800.
    """
    ep = energy_performance(_monthly(LATER[:3]), baseline_months=12, next_output=50, price_per_kwh=0.8)
    assert ep.valid, ep.reason
    assert ep.a == pytest.approx(1000)
    assert ep.b == pytest.approx(50)
    assert ep.coefficients == pytest.approx({"intercept": 1000, "output": 50})
    assert ep.r2 == pytest.approx(1 - 1200 / 8_751_200, abs=1e-9)
    assert ep.cv_rmse == pytest.approx(120 ** 0.5 / 2750, abs=1e-9)
    assert (ep.baseline_first, ep.baseline_last, ep.baseline_n) == ("2025-01", "2025-12", 12)
    assert ep.cusum_kwh[5] == pytest.approx(-60)
    assert ep.cusum_kwh[11] == pytest.approx(0, abs=1e-6)
    assert ep.predicted_kwh[12:] == pytest.approx([3000, 2000, 4000])
    assert ep.savings_kwh[12:] == pytest.approx([100, -50, 100])
    assert ep.cusum_kwh[12:] == pytest.approx([100, 50, 150])
    assert ep.sec_kwh_per_unit[12] == pytest.approx(72.5)
    assert ep.enpi_ratio[12] == pytest.approx(2900 / 3000)
    assert (ep.next_month_kwh, ep.next_month_cost) == (pytest.approx(3500), pytest.approx(2800))
    assert "R^2 >= 0.75" in ep.criteria
    assert "20%" in ep.criteria
    assert (old_name, exported) == (energy_performance, energy_performance), "the old names stay importable"


def test_degree_days_join_the_model_and_a_chosen_baseline_period() -> None:
    """E = 100 + 2 x output + 3 x HDD exactly: the fit gives back 100, 2 and 3 with R^2 = 1 and CV(RMSE) = 0.

    The baseline is the mask's months (the last 12 here); the three months before it are reported, not fitted.
    """
    rng = np.random.default_rng(7)
    out, hdd = rng.uniform(50, 150, 15).round(), rng.uniform(0, 400, 15).round()
    frame = pd.DataFrame({"kwh": 100 + 2 * out + 3 * hdd, "output": out, "hdd": hdd},
                         index=pd.date_range("2024-10-01", periods=15, freq="MS"))
    frame.iloc[0, 0] += 30  # a month before the baseline used 30 kWh more than the model says
    ep = energy_performance(frame, baseline=[False] * 3 + [True] * 12)
    assert ep.drivers == ["output", "hdd"]
    assert ep.coefficients == pytest.approx({"intercept": 100, "output": 2, "hdd": 3})
    assert ep.r2 == pytest.approx(1)
    assert ep.cv_rmse == pytest.approx(0, abs=1e-9)
    assert (ep.baseline_first, ep.baseline_n) == ("2025-01", 12)
    assert ep.savings_kwh[0] == pytest.approx(-30)
    collinear = frame.assign(hdd=frame["output"] * 2)
    bad = energy_performance(collinear, baseline=[False] * 3 + [True] * 12)
    assert not bad.valid
    assert "move together" in (bad.reason or "")


def test_an_incomplete_month_is_left_out_not_filled() -> None:
    m = _monthly()
    m.iloc[13, 0] = np.nan  # 2026-02 had missing intervals: its energy is unknown
    ep = energy_performance(m, baseline_months=12)
    assert ep.predicted_kwh[13] is None
    assert ep.savings_kwh[13] is None
    assert ep.cusum_kwh[13] is None
    assert ep.cusum_kwh[14] == pytest.approx(100 + 100), "CUSUM carries over the gap without inventing it"
    assert ep.evidence.missing_intervals == 1


def test_a_poor_model_says_which_threshold_it_misses() -> None:
    m = _monthly()
    m.iloc[:12, 0] = [3000, 500, 4000, 900, 2500, 100, 3900, 700, 200, 4100, 1500, 2600]
    ep = energy_performance(m, baseline_months=12)
    assert not ep.valid
    assert "R^2" in (ep.reason or "")


def test_advice_saving_is_measured_after_against_before() -> None:
    """Done in 2026-01 (left out). Before: 2025-07..12 savings +10 each, mean 10. After: 2026-02..04 savings -50,
    +100, +100, mean 50. Saving 50 - 10 = 40 kWh a month; at 0.8 per kWh 32.00 a month, against 50 promised."""
    ep = energy_performance(_monthly(), baseline_months=12)
    s = advice_saving(ep, date(2026, 1, 20), 50.0, "CNY", 0.8)
    assert s.measurable
    assert s.months_before == [f"2025-{m:02d}" for m in range(7, 13)]
    assert s.months_after == ["2026-02", "2026-03", "2026-04"]
    assert s.kwh_per_month == pytest.approx(40)
    assert s.money_per_month == pytest.approx(32.0)
    early = advice_saving(ep, date(2026, 2, 3), 50.0, "CNY", 0.8)
    assert not early.measurable
    assert early.kwh_per_month is None
    assert "2 complete month(s) after 2026-02" in (early.reason or "")


def test_co2_from_the_factor_file_and_a_missing_factor_is_said_never_zero() -> None:
    kr = co2(1000.0, "KR", 2018)  # no 2018 figure: the newest published before it
    assert kr.kg == pytest.approx(459.4)
    assert kr.factor_year == 2017
    assert "2017" in (kr.note or "")
    cn = co2(2000.0, "CN", 2022)
    assert cn.kg == pytest.approx(2000 * 0.5366)
    assert cn.note is None
    assert "2022" in (cn.source or "")
    missing = co2(1000.0, "CN-GD", 2026)
    assert missing.kg is None
    assert missing.factor_kg_per_kwh is None
    assert "no emission factor for region CN-GD" in (missing.note or "")
    unset = co2(1000.0, None, 2026)
    assert unset.kg is None
    assert "not set" in (unset.note or "")
    assert co2(1.0, "KR", 2016).kg is None, "nothing before the first published year"
    assert all(e["source"] for e in emission_factors().values())


def test_a_csv_with_bad_rows_is_refused_whole_naming_row_column_and_reason() -> None:
    text = ("date,output,unit,line\n"
            "2026-11-01,120.5,t,A\n"      # row 2: good
            "2026-11-31,10,t,A\n"         # row 3: no such day
            "2026-11-02,abc,t,A\n"        # row 4: not a number
            "2026-11-03,-4,t,B\n"         # row 5: negative
            "2026-11-01,7,t,A\n"          # row 6: day and line again
            "2026-11-04,5,kg,A\n"         # row 7: another unit
            "2026-11-05,5,t,=cmd()\n"     # row 8: a formula as line name
            "2026-12-24,5,t,A\n")         # row 9: not over yet
    with pytest.raises(ProductionFileError) as info:
        read_production(text.encode(), "actual", today=date(2026, 11, 30))
    got = [(e.row, e.column, e.code) for e in info.value.errors]
    assert got == [(3, "date", "bad_date"), (4, "output", "not_a_number"), (5, "output", "negative"),
                   (6, "date", "duplicate"), (7, "unit", "mixed_unit"), (8, "line", "bad_name"),
                   (9, "date", "future")]
    assert info.value.errors[3].params == {"first": 2}
    assert info.value.errors[0].english() == "row 3, column date: '2026-11-31' is not a date (YYYY-MM-DD)"
    plan = read_production(b"date,output,unit\n2026-12-24,5,t\n", "plan", today=date(2026, 11, 30))
    assert plan[0].day == date(2026, 12, 24), "plans may lie ahead"


def test_headers_files_and_encodings() -> None:
    zh = "日期,产量,单位,采暖度日\n2026/11/01,12,吨,3.5\n".encode("gb18030")
    [row] = read_production(zh)
    assert (row.day, row.output, row.unit, row.line, row.hdd) == (date(2026, 11, 1), Decimal(12), "吨", "",
                                                                   Decimal("3.5"))
    for data, code in [(b"date,output\n2026-11-01,1\n", "missing_column"), (b"date,output,unit\n", "file_empty"),
                       (b"date,output,unit,colour\n2026-11-01,1,t,red\n", "unknown_column"),
                       (b"\x00\x01\x02", "file_type")]:
        with pytest.raises(ProductionFileError) as info:
            read_production(data)
        assert info.value.errors[0].code == code, data


def test_xlsx_rows_and_cells_of_every_type() -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(["Date", "Output", "Unit", "Line"])
    ws.append([date(2026, 11, 1), 100, "t", "A"])
    ws.append(["2026-11-02", 12.25, "t", "A"])
    ws.append([date(2026, 11, 3), "lots", "t", "A"])
    ws.append([True, 1, "t", "A"])
    buf = io.BytesIO()
    wb.save(buf)
    with pytest.raises(ProductionFileError) as info:
        read_production(buf.getvalue())
    assert [(e.row, e.column, e.code) for e in info.value.errors] == [(4, "Output", "not_a_number"),
                                                                     (5, "Date", "bad_date")], "as headed"
    ws.delete_rows(4, 2)
    buf = io.BytesIO()
    wb.save(buf)
    rows = read_production(buf.getvalue())
    assert [(r.day, r.output) for r in rows] == [(date(2026, 11, 1), Decimal(100)), (date(2026, 11, 2),
                                                                                       Decimal("12.25"))]
