"""Week-ahead and month-ahead forecasts: shapes, ordered intervals, no leakage, and their backtests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting import (
    ForecastError,
    WeekNaive,
    WeekProfile,
    backtest,
    backtest_month,
    backtest_week,
    forecast_month_ahead,
    forecast_week_ahead,
    model_factories,
    month_origins,
    week_origins,
)
from forecasting.horizons import MonthSettings
from tests.forecasting.conftest import synth

TZ = "Asia/Shanghai"


def _ordered(frame: pd.DataFrame, prefix: str = "") -> None:
    p = prefix
    cols = [f"{p}lower95", f"{p}lower80", f"{p}forecast" if not p else p.rstrip("_"), f"{p}upper80", f"{p}upper95"]
    v = frame[cols].to_numpy()
    assert np.isfinite(v).all()
    assert (np.diff(v, axis=1) >= -1e-9).all()


def test_week_ahead_shape_intervals_and_plan():
    history, plan = synth(days=42, start="2026-01-05", shutdowns=[pd.Timestamp("2026-02-18")])
    plan = pd.concat([plan, pd.DataFrame({"operating": [0.0]}, index=[pd.Timestamp("2026-02-18", tz=TZ)])])
    plan = plan[~plan.index.duplicated(keep="last")].sort_index()
    fc = forecast_week_ahead(history, plan, holidays_country=None)
    assert len(fc) == 7 * 96
    assert fc.index[0] == pd.Timestamp("2026-02-16", tz=TZ)
    assert fc.attrs["model"] == "week_profile_16s1"
    _ordered(fc)
    daily = fc["forecast"].groupby(fc.index.tz_localize(None).normalize()).mean()
    assert daily[pd.Timestamp("2026-02-18")] < 100 < daily[pd.Timestamp("2026-02-17")]  # the planned stop
    assert daily[pd.Timestamp("2026-02-22")] < 100  # a Sunday


def test_week_ahead_crosses_a_dst_change():
    berlin = "Europe/Berlin"
    autumn = forecast_week_ahead(synth(days=35, tz=berlin, start="2026-09-20")[0], None, None)
    assert autumn.index[0] == pd.Timestamp("2026-10-25", tz=berlin)
    assert len(autumn) == 7 * 96 + 4  # 25 Oct has 100 intervals
    spring = forecast_week_ahead(synth(days=35, tz=berlin, start="2026-02-22")[0], None, None)
    assert spring.index[0] == pd.Timestamp("2026-03-29", tz=berlin)
    assert len(spring) == 7 * 96 - 4  # 29 Mar has 92
    assert spring.index[-1] + pd.Timedelta(minutes=15) == pd.Timestamp("2026-04-05", tz=berlin)
    history, plan = synth(days=50, tz=berlin, start="2026-09-07")
    r = backtest_week(history, plan, lambda: WeekProfile(holidays_country=None),
                      [pd.Timestamp("2026-10-12", tz=berlin), pd.Timestamp("2026-10-19", tz=berlin)])
    assert len(r.forecasts) == 7 * 96 + (7 * 96 + 4)  # each origin's own week, the second one across 25 Oct
    assert r.forecasts.index[-1] + pd.Timedelta(minutes=15) == pd.Timestamp("2026-10-26", tz=berlin)


def test_no_leakage_data_after_the_origin_changes_nothing():
    history, plan = synth(days=70, start="2026-01-05")
    origin = pd.Timestamp("2026-02-23", tz=TZ)
    tampered = history.copy()
    tampered[tampered.index >= origin] *= 5.0
    month = pd.Timestamp("2026-03-01", tz=TZ)
    w1 = backtest_week(history, plan, lambda: WeekProfile(holidays_country=None), [origin]).forecasts
    w2 = backtest_week(tampered, plan, lambda: WeekProfile(holidays_country=None), [origin]).forecasts
    pd.testing.assert_frame_equal(w1.drop(columns="actual"), w2.drop(columns="actual"))
    assert not np.allclose(w1["actual"], w2["actual"])
    # Issued at 21:30 the evening before: what is measured after that never reaches the day-ahead model either.
    lead = pd.Timedelta(hours=2, minutes=30)
    evening = history.copy()
    evening[(evening.index >= origin - lead) & (evening.index < origin)] = 10_000.0
    make = model_factories(None)["seasonal_naive_1d"]  # yesterday repeated: the most exposed to the evening
    d1 = backtest(history, plan, make, [origin], 96, issue_lead=lead).forecasts
    d2 = backtest(evening, plan, make, [origin], 96, issue_lead=lead).forecasts
    pd.testing.assert_frame_equal(d1, d2)
    assert not backtest(evening, plan, make, [origin], 96).forecasts.equals(d1)  # without the lead it would leak
    later = history.copy()
    later[later.index >= month] *= 3.0
    m1 = backtest_month(history, plan, [month], None)
    m2 = backtest_month(later, plan, [month], None)
    assert m1["energy_kwh"]["mae"] != m2["energy_kwh"]["mae"]  # scored against different actuals...
    assert m1["per_origin"][0]["energy_total_forecast_kwh"] == m2["per_origin"][0]["energy_total_forecast_kwh"]
    m1 = forecast_month_ahead(history[history.index < month], plan, None, None)
    changed = forecast_month_ahead(tampered[tampered.index < month], plan, None, None)
    assert not np.allclose(changed.daily["energy_kwh"], m1.daily["energy_kwh"])  # the tamper is visible


def test_month_ahead_days_peaks_and_shape():
    history, plan = synth(days=90, start="2026-01-05", noise=15.0)  # the plan runs to April
    history = history[history.index < pd.Timestamp("2026-03-01", tz=TZ)]
    fc = forecast_month_ahead(history, plan, None, None)
    assert fc.month == "2026-03"
    assert len(fc.daily) == 31
    _ordered(fc.daily, "energy_kwh_")
    _ordered(fc.daily, "peak_kw_")
    sundays = fc.daily.index.dayofweek == 6
    # an operating weekday: 10 h at 400 + 14 h at 220 kWh per 15 min
    assert fc.daily["energy_kwh"][fc.daily.index.dayofweek < 5].median() == pytest.approx(40 * 400 + 56 * 220,
                                                                                         rel=0.02)
    assert fc.daily["peak_kw"][~sundays].max() == pytest.approx(4 * 400, rel=0.1)
    assert (fc.daily["operating"][sundays] == 0).all()
    day = fc.intervals["forecast"].groupby(fc.intervals.index.tz_localize(None).normalize()).sum()
    np.testing.assert_allclose(day.to_numpy(), fc.daily["energy_kwh"].to_numpy())
    assert len(fc.intervals) == 31 * 96
    with pytest.raises(ForecastError, match="not ahead"):
        forecast_month_ahead(history, plan, "2026-02", None)
    with pytest.raises(ForecastError, match="not YYYY-MM"):
        forecast_month_ahead(history, plan, "march", None)
    gappy = history.copy()
    gappy[gappy.index.hour == 3] = np.nan  # a gap every night: no day is complete, and none is filled
    with pytest.raises(ForecastError, match="no complete past day like 2026-03-01"):
        forecast_month_ahead(gappy, plan, None, None)
    with pytest.raises(ForecastError, match="too short for week-ahead intervals"):
        forecast_week_ahead(history[history.index < pd.Timestamp("2026-01-12", tz=TZ)], plan, None)


def test_backtests_beat_their_naive_baselines_on_a_structured_plant():
    history, plan = synth(days=84, start="2026-01-05", noise=10.0)  # to the end of 29 March
    origins = week_origins(history, pd.Timestamp("2026-02-23", tz=TZ), None)
    assert [o.day for o in origins] == [23, 2, 9, 16, 23]  # Mondays, each with a whole week of actuals after it
    week = backtest_week(history, plan, lambda: WeekProfile(interval_days=28, holidays_country=None), origins,
                         pd.Timedelta(hours=2, minutes=30))
    naive = backtest_week(history, plan, lambda: WeekNaive(interval_days=28, holidays_country=None), origins)
    assert week.overall["mae"] < naive.overall["mae"]
    assert 0.6 <= week.overall["coverage80"] <= 0.95
    assert week.overall["coverage95"] >= 0.85
    month = backtest_month(history, plan, month_origins(history, pd.Timestamp("2026-02-01", tz=TZ), None), None,
                           MonthSettings(interval_days=28))
    assert month["origins"] == 2  # February and March
    assert month["energy_kwh"]["mae"] < month["baselines"]["flat_28d"]["energy_kwh"]["mae"]
    assert month["energy_kwh"]["n"] == 28 + 29  # every day of February, 1-29 March (the data end)


def test_plan_shift_counts_pick_days_like_the_one_planned():
    history, plan = synth(days=44, start="2026-01-05", noise=5.0)  # ends Tuesday 17 Feb: the target is a Wednesday
    wall = history.index.tz_localize(None)
    night = (wall.hour < 8) | (wall.hour >= 18)
    history[(wall.dayofweek == 2) & night] = 400.0  # Wednesdays run three shifts: the nights work too
    shifts = plan.assign(shift=[3.0 if d.dayofweek == 2 else 1.0 for d in plan.index])
    from forecasting import PlanProfile

    fc = PlanProfile(16, slot_window=1, holidays_country=None).fit(history, shifts).predict(96, shifts)
    assert fc.index[0].dayofweek == 2
    at_night = fc["forecast"][(fc.index.hour < 6)]
    assert at_night.mean() == pytest.approx(400, abs=10)  # like the last three-shift days
    plain = PlanProfile(16, slot_window=1, holidays_country=None).fit(history, plan).predict(96, plan)
    assert plain["forecast"][(plain.index.hour < 6)].mean() < 300  # without shifts: the one-shift weekdays' night
    month = forecast_month_ahead(history[history.index < pd.Timestamp("2026-02-01", tz=TZ)], shifts, "2026-02", None)
    energy = month.daily["energy_kwh"].set_axis(month.daily.index.tz_localize(None))
    for wednesday in ("2026-02-04", "2026-02-11", "2026-02-18"):  # the plan (to 24 Feb) says three shifts
        day = pd.Timestamp(wednesday)
        assert energy[day] > energy[day + pd.Timedelta(days=1)] + 50 * 150  # 56 night slots at 400, not 220


def test_month_ahead_follows_a_level_step_and_the_plan_where_naive_copies_do_not():
    # A plant 25 % busier from 9 March, stopped (planned) on Wednesday 25 March, the last week before the origin.
    history, plan = synth(days=120, start="2026-01-05", noise=10.0, shutdowns=[pd.Timestamp("2026-03-25")])
    history[history.index >= pd.Timestamp("2026-03-09", tz=TZ)] *= 1.25
    origin = pd.Timestamp("2026-04-01", tz=TZ)
    seen: list[pd.Series] = []
    lead = pd.Timedelta(hours=2, minutes=30)
    m = backtest_month(history, plan, [origin], None, issue_lead=lead, check=seen.append)
    assert len(seen) == 1
    assert seen[0].dropna().index[-1] < origin - lead  # the guard sees what the forecast sees
    naive = m["baselines"]["week_repeated"]
    assert m["energy_kwh"]["mae"] < naive["energy_kwh"]["mae"] / 2  # the week repeated stops every Wednesday
    assert m["energy_kwh"]["mae"] < m["baselines"]["flat_28d"]["energy_kwh"]["mae"] / 2
    assert m["peak_kw"]["mae"] < naive["peak_kw"]["mae"] / 2
    (o,) = m["per_origin"]
    assert o["days_scored"] == 30
    assert abs(o["energy_total_error_pct"]) < 2  # the new level, not the old one (which is 20 % lower)
    assert o["energy_total_error_pct"] == pytest.approx(m["month_total_error_pct"])
    assert 0.6 <= m["energy_kwh"]["coverage80"] <= m["energy_kwh"]["coverage95"]
    assert 0.6 <= m["peak_kw"]["coverage80"] <= m["peak_kw"]["coverage95"]
    # Rolling origins: any number of days from any midnight.
    fc = forecast_month_ahead(history[history.index < pd.Timestamp("2026-03-18", tz=TZ)], plan, None, None,
                              horizon_days=10)
    assert len(fc.daily) == 10
    assert fc.daily.index[0] == pd.Timestamp("2026-03-18", tz=TZ)
    _ordered(fc.daily, "energy_kwh_")
    _ordered(fc.daily, "peak_kw_")
    assert fc.daily["operating"].iloc[7] == 0  # 25 March, stopped as planned
    assert fc.daily["energy_kwh"].iloc[7] < fc.daily["energy_kwh"].iloc[6] / 3
    with pytest.raises(ForecastError, match="local midnight"):
        forecast_month_ahead(history[history.index < pd.Timestamp("2026-03-18 06:00", tz=TZ)], plan, None, None,
                             horizon_days=10)


def test_month_ahead_takes_a_worked_holiday_for_a_working_day():
    # To 30 April: Sundays run a light shift (150 kWh per 15 min), 15 and 22 April stopped. 4 and 5 May 2026 are public
    # holidays in China: the plan works the 4th and stops the 5th.
    stops = pd.to_datetime(["2026-04-15", "2026-04-22"])
    history, plan = synth(days=88, start="2026-02-02", noise=5.0, shutdowns=stops)
    sunday = history.index.tz_localize(None).dayofweek == 6
    history[sunday] = 150.0
    plan.loc[plan.index.dayofweek == 6, "operating"] = 1.0
    may = pd.date_range("2026-05-01", "2026-05-31", freq="D", tz=TZ)
    plan = pd.concat([plan[plan.index < may[0]], pd.DataFrame(
        {"operating": [0.0 if d.day in (1, 2, 5) else 1.0 for d in may]}, index=may)])
    fc = forecast_month_ahead(history, plan, "2026-05", "CN")
    assert fc.model == "month_profile_4_plan_types"
    energy = fc.daily["energy_kwh"]
    weekday = 40 * 400 + 56 * 220
    assert energy[pd.Timestamp("2026-05-04", tz=TZ)] == pytest.approx(weekday, rel=0.03)
    assert energy[pd.Timestamp("2026-05-05", tz=TZ)] < 96 * 100  # a holiday the plan stops
    assert energy[pd.Timestamp("2026-05-10", tz=TZ)] == pytest.approx(96 * 150, rel=0.03)  # a working Sunday
    calendar = forecast_month_ahead(history, plan, "2026-05", "CN", MonthSettings(plan_types=False))
    assert calendar.daily["energy_kwh"][pd.Timestamp("2026-05-04", tz=TZ)] < weekday * 0.6  # taken for a Sunday
    assert calendar.model == "month_profile_4"  # the default names its plan-driven day types
