"""The three PF adjustment tables of 〔83〕水电财字第215号 row by row, and the billed PF rounded half up."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_bridge.errors import TariffError
from crm_bridge.tariffs import monthly_pf, pf_adjustment_pct, pf_table, round_pf

# The published rows, copied from the regulation's three tables (percent; negative = 减收, a reward).
# 附表一, standard 0.90: reward 0.15 % per 0.01 up to 0.94, capped at 0.75 % from 0.95; surcharge 0.5 % per 0.01
# down to 0.70 (10 %), then 1 % per 0.01 down to 0.65 (15 %).
PUBLISHED_090 = {
    1.00: -0.75, 0.99: -0.75, 0.98: -0.75, 0.97: -0.75, 0.96: -0.75, 0.95: -0.75,
    0.94: -0.60, 0.93: -0.45, 0.92: -0.30, 0.91: -0.15, 0.90: 0.0,
    0.89: 0.5, 0.88: 1.0, 0.87: 1.5, 0.86: 2.0, 0.85: 2.5, 0.84: 3.0, 0.83: 3.5, 0.82: 4.0, 0.81: 4.5,
    0.80: 5.0, 0.79: 5.5, 0.78: 6.0, 0.77: 6.5, 0.76: 7.0, 0.75: 7.5, 0.74: 8.0, 0.73: 8.5, 0.72: 9.0, 0.71: 9.5,
    0.70: 10.0, 0.69: 11.0, 0.68: 12.0, 0.67: 13.0, 0.66: 14.0, 0.65: 15.0,
}
# 附表二, standard 0.85: reward 0.1 % per 0.01 up to 0.90 (0.5 %), then 0.65, 0.80, 0.95 and 1.10 % from 0.94;
# surcharge 0.5 % per 0.01 down to 0.65 (10 %), then 1 % per 0.01 down to 0.60 (15 %).
PUBLISHED_085 = {
    1.00: -1.10, 0.99: -1.10, 0.98: -1.10, 0.97: -1.10, 0.96: -1.10, 0.95: -1.10, 0.94: -1.10,
    0.93: -0.95, 0.92: -0.80, 0.91: -0.65, 0.90: -0.50, 0.89: -0.40, 0.88: -0.30, 0.87: -0.20, 0.86: -0.10,
    0.85: 0.0,
    0.84: 0.5, 0.83: 1.0, 0.82: 1.5, 0.81: 2.0, 0.80: 2.5, 0.79: 3.0, 0.78: 3.5, 0.77: 4.0, 0.76: 4.5, 0.75: 5.0,
    0.74: 5.5, 0.73: 6.0, 0.72: 6.5, 0.71: 7.0, 0.70: 7.5, 0.69: 8.0, 0.68: 8.5, 0.67: 9.0, 0.66: 9.5, 0.65: 10.0,
    0.64: 11.0, 0.63: 12.0, 0.62: 13.0, 0.61: 14.0, 0.60: 15.0,
}
# 附表三, standard 0.80: reward 0.1 % per 0.01 up to 0.90 (1.0 %), then 1.15 % at 0.91 and 1.30 % from 0.92;
# surcharge 0.5 % per 0.01 down to 0.60 (10 %), then 1 % per 0.01 down to 0.55 (15 %).
PUBLISHED_080 = {
    1.00: -1.30, 0.99: -1.30, 0.98: -1.30, 0.97: -1.30, 0.96: -1.30, 0.95: -1.30, 0.94: -1.30, 0.93: -1.30,
    0.92: -1.30, 0.91: -1.15, 0.90: -1.0, 0.89: -0.9, 0.88: -0.8, 0.87: -0.7, 0.86: -0.6, 0.85: -0.5, 0.84: -0.4,
    0.83: -0.3, 0.82: -0.2, 0.81: -0.1, 0.80: 0.0,
    0.79: 0.5, 0.78: 1.0, 0.77: 1.5, 0.76: 2.0, 0.75: 2.5, 0.74: 3.0, 0.73: 3.5, 0.72: 4.0, 0.71: 4.5, 0.70: 5.0,
    0.69: 5.5, 0.68: 6.0, 0.67: 6.5, 0.66: 7.0, 0.65: 7.5, 0.64: 8.0, 0.63: 8.5, 0.62: 9.0, 0.61: 9.5, 0.60: 10.0,
    0.59: 11.0, 0.58: 12.0, 0.57: 13.0, 0.56: 14.0, 0.55: 15.0,
}
TABLES = {0.90: (PUBLISHED_090, 0.65), 0.85: (PUBLISHED_085, 0.60), 0.80: (PUBLISHED_080, 0.55)}


@pytest.mark.parametrize("standard", [0.90, 0.85, 0.80])
def test_every_published_row(standard: float) -> None:
    published, _ = TABLES[standard]
    for pf, pct in published.items():
        assert pf_adjustment_pct(pf, standard) == pytest.approx(pct, abs=1e-9), f"standard {standard}, PF {pf}"


@pytest.mark.parametrize("standard", [0.90, 0.85, 0.80])
def test_below_the_table_each_001_adds_2_percent(standard: float) -> None:
    """"功率因数自 0.64 (0.59, 0.54) 及以下，每降低 0.01 电费增加 2%": 15 % at the last row, + 2 % per 0.01."""
    _, last = TABLES[standard]
    for hundredths in range(0, round(last * 100)):
        pf = hundredths / 100
        steps = round(last * 100) - hundredths
        assert pf_adjustment_pct(pf, standard) == pytest.approx(15 + 2 * steps), f"standard {standard}, PF {pf}"


def test_worked_extremes() -> None:
    assert pf_adjustment_pct(0.64, 0.90) == 17.0  # 15 + 2 x 1
    assert pf_adjustment_pct(0.60, 0.90) == 25.0  # 15 + 2 x 5 (DOMAIN.md: 0.60 -> +25 %)
    assert pf_adjustment_pct(0.00, 0.90) == 145.0  # 15 + 2 x 65
    assert pf_adjustment_pct(0.59, 0.85) == 17.0  # 15 + 2 x 1
    assert pf_adjustment_pct(0.00, 0.85) == 135.0  # 15 + 2 x 60
    assert pf_adjustment_pct(0.54, 0.80) == 17.0  # 15 + 2 x 1
    assert pf_adjustment_pct(0.00, 0.80) == 125.0  # 15 + 2 x 55


def test_the_reward_side_is_capped_not_linear() -> None:
    # a straight line of 0.15 % per 0.01 would give 0.90 standard at 1.00 -1.5 %; the table stops at -0.75 %
    assert pf_adjustment_pct(1.00, 0.90) == -0.75
    # 0.85: 0.1 % per 0.01 to 0.90, then 0.15 % per 0.01 to 0.94, then flat
    assert [pf_adjustment_pct(p / 100, 0.85) for p in range(90, 96)] == [-0.5, -0.65, -0.8, -0.95, -1.1, -1.1]
    # 0.80: 0.1 % per 0.01 to 0.90, 1.15 % at 0.91, 1.30 % from 0.92
    assert [pf_adjustment_pct(p / 100, 0.80) for p in range(90, 94)] == [-1.0, -1.15, -1.3, -1.3]


def test_the_data_file_has_a_row_for_every_hundredth_and_never_rewards_a_worse_pf() -> None:
    for standard in (0.90, 0.85, 0.80):
        table = pf_table(standard)
        assert sorted(table) == list(range(101))
        assert all(table[k] <= table[k - 1] for k in range(1, 101))
        assert table[round(standard * 100)] == 0.0


def test_unknown_standard_and_impossible_pf_are_refused() -> None:
    with pytest.raises(TariffError, match="no PF adjustment table for standard 0.75"):
        pf_adjustment_pct(0.8, standard=0.75)
    with pytest.raises(TariffError, match="outside 0..1"):
        pf_adjustment_pct(1.2)
    with pytest.raises(TariffError, match="no active energy"):
        monthly_pf(0, 100)


def test_monthly_pf_worked_example_and_half_up_rounding() -> None:
    # DOMAIN.md: 100,000 kWh with 48,432 kvarh: 100000 / sqrt(100000^2 + 48432^2) = 0.90000... -> 0.90 -> 0 %
    assert monthly_pf(100_000, 48_432) == 0.90
    assert monthly_pf(100_000, 0) == 1.0
    assert monthly_pf(3, -4) == 0.6  # leading or lagging: 3 / 5
    # 四舍五入, not banker's or binary float rounding: round(0.865, 2) == 0.86 in Python, the bill says 0.87
    assert (round(0.865, 2), round_pf(0.865)) == (0.86, 0.87)
    assert (round(0.815, 2), round_pf(0.815)) == (0.81, 0.82)
    assert (round(0.835, 2), round_pf(0.835)) == (0.83, 0.84)
    assert round_pf(0.8649999) == 0.86
    assert pf_adjustment_pct(0.865) == 1.5  # billed at 0.87: 3 x 0.5 %, not 0.86's 2.0 %
    # kvarh just either side of PF 0.865: q = p x tan(acos 0.865) = 580.083... kvarh for 1000 kWh
    q = 1000 * math.tan(math.acos(0.865))
    assert monthly_pf(1000, q - 0.01) == 0.87  # PF 0.8650038
    assert monthly_pf(1000, q + 0.01) == 0.86  # PF 0.8649962


@settings(max_examples=200, deadline=None)
@given(st.floats(1e-3, 1e9), st.floats(-1e9, 1e9))
def test_monthly_pf_is_the_exact_ratio_rounded_half_up(kwh: float, kvarh: float) -> None:
    with localcontext() as ctx:
        ctx.prec = 60
        p, q = Decimal(kwh), Decimal(kvarh)
        exact = (p / (p * p + q * q).sqrt()).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert monthly_pf(kwh, kvarh) == float(exact)
