"""Models, backtests and the batch runner on synthetic plants with known structure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting import (
    ForecastError,
    PlanProfile,
    backtest,
    forecast_day_ahead,
    history_from_frame,
    model_factories,
    origins_between,
    plan_from_frame,
)
from tests.forecasting.conftest import synth


def test_leakage_guard_data_after_origin_never_changes_its_forecast():
    history, plan = synth()
    origins = origins_between(history, pd.Timestamp("2026-02-10", tz="Asia/Shanghai"),
                              pd.Timestamp("2026-02-13", tz="Asia/Shanghai"))
    base = backtest(history, plan, model_factories(None)["plan_profile_8"], origins, 96).forecasts
    tampered = history.copy()
    tampered[tampered.index >= origins[1]] *= 7.0  # everything from the second origin on
    again = backtest(tampered, plan, model_factories(None)["plan_profile_8"], origins, 96).forecasts
    first = base["origin"] == origins[0]
    pd.testing.assert_frame_equal(base.loc[first, ["forecast", "lower95", "upper95"]],
                                  again.loc[first, ["forecast", "lower95", "upper95"]])
    later = base["origin"] == origins[2]
    assert not np.allclose(base.loc[later, "forecast"], again.loc[later, "forecast"])  # the tamper is visible


def test_interval_coverage_matches_known_gaussian_noise():
    history, plan = synth(days=70, noise=25.0, seed=3)
    origins = origins_between(history, pd.Timestamp("2026-02-16", tz="Asia/Shanghai"), None)
    r = backtest(history, plan, model_factories(None)["plan_profile_8"], origins, 96)
    assert len(origins) >= 20
    assert 0.72 <= r.overall["coverage80"] <= 0.88
    assert 0.89 <= r.overall["coverage95"] <= 0.99
    # Noise sd 25 -> the best possible MAE is about 20; the model should be near it.
    assert r.overall["mae"] < 30


def test_planned_shutdown_day_is_forecast_low():
    shutdown = pd.Timestamp("2026-02-18")  # a Wednesday
    history, plan = synth(days=44, shutdowns=[shutdown])
    train = history[history.index < pd.Timestamp("2026-02-18", tz="Asia/Shanghai")]
    fc = PlanProfile(8, holidays_country=None).fit(train, plan).predict(96, plan)
    assert fc["forecast"].mean() < 100  # base load ~60, not the ~300 of an operating weekday
    fc_normal = PlanProfile(8, holidays_country=None).fit(train, None).predict(96)
    assert fc_normal["forecast"].mean() > 250


def test_public_holidays_count_as_days_off():
    # The synthetic plant stops on Sundays; with the Chinese calendar, National Day (Oct 1) is forecast like one.
    history, _ = synth(days=35, start="2026-08-24")
    fc = PlanProfile(8, holidays_country="CN").fit(history).predict(96)
    assert fc.index[0] == pd.Timestamp("2026-09-28", tz="Asia/Shanghai")
    later = PlanProfile(8, holidays_country="CN").fit(synth(days=38, start="2026-08-24")[0]).predict(96)
    assert later.index[0] == pd.Timestamp("2026-10-01", tz="Asia/Shanghai")
    assert later["forecast"].mean() < 100 < fc["forecast"].mean()
    plain = PlanProfile(8, holidays_country=None).fit(synth(days=38, start="2026-08-24")[0]).predict(96)
    assert plain["forecast"].mean() > 250


def test_gaps_in_history_are_tolerated():
    history, plan = synth(days=35)
    holes = history.copy()
    holes.iloc[500:900] = np.nan
    holes = holes.drop(holes.index[2000:2200])
    fc = PlanProfile(8, holidays_country=None).fit(holes, plan).predict(96, plan)
    assert len(fc) == 96
    assert np.isfinite(fc.to_numpy()).all()


@pytest.mark.parametrize(("tz", "day", "intervals"), [("Europe/Berlin", "2026-03-29", 92),
                                                       ("Europe/Berlin", "2026-10-25", 100),
                                                       ("Europe/Berlin", "2026-03-30", 96),
                                                       ("Asia/Shanghai", "2026-03-30", 96)])
def test_time_zones_and_dst_days(tz, day, intervals):
    history, plan = synth(days=30, tz=tz, start=str((pd.Timestamp(day) - pd.Timedelta(days=30)).date()))
    fc = PlanProfile(8, holidays_country=None).fit(history, plan).predict(intervals, plan)
    assert fc.index[0] == pd.Timestamp(day, tz=tz)
    next_midnight = (pd.Timestamp(day) + pd.Timedelta(days=1)).tz_localize(tz)
    assert fc.index[-1] + pd.Timedelta(minutes=15) == next_midnight
    assert str(fc.index.tz) == tz
    wall = fc.index.tz_localize(None)
    work = fc["forecast"][(wall.hour >= 9) & (wall.hour < 17)].mean()
    night = fc["forecast"][wall.hour < 6].mean()
    if pd.Timestamp(day).weekday() == 6:  # EU clocks change on Sundays: the plant is off all day
        assert work < 100
    else:
        assert work > night * 1.4  # the day shift sits at the right local hours


def test_bad_input_errors_name_file_row_and_column():
    ok = pd.DataFrame({"timestamp": ["2026-01-01T00:00+08:00", "2026-01-01T00:15+08:00"], "value": ["1", "2"]})
    assert len(history_from_frame(ok)) == 2
    with pytest.raises(ForecastError, match=r"h.csv: row 3, column 'value': 'abc' is not a number"):
        history_from_frame(ok.assign(value=["1", "abc"]), "h.csv")
    with pytest.raises(ForecastError, match=r"h.csv: row 3, column 'timestamp': .* appears twice"):
        history_from_frame(ok.assign(timestamp=[ok.timestamp[0]] * 2), "h.csv")
    with pytest.raises(ForecastError, match=r"row 3, column 'timestamp': rows are not sorted"):
        history_from_frame(ok.iloc[::-1].reset_index(drop=True), "h.csv")
    with pytest.raises(ForecastError, match=r"row 2, column 'timestamp': 'yesterday' is not"):
        history_from_frame(ok.assign(timestamp=["yesterday", ok.timestamp[1]]), "h.csv")
    with pytest.raises(ForecastError, match=r"p.csv: row 2, column 'operating': 'yes' is not a number"):
        plan_from_frame(pd.DataFrame({"start": ["2026-01-01"], "operating": ["yes"]}), "p.csv")
    with pytest.raises(ForecastError, match="fewer than 7 days"):
        PlanProfile().fit(synth(days=3)[0])
    with pytest.raises(ForecastError, match="tz-aware"):
        PlanProfile().fit(synth(days=10)[0].tz_localize(None))


def test_plan_rows_hold_until_the_next_or_their_end():
    plan = plan_from_frame(pd.DataFrame({"start": ["2026-01-01T00:00+08:00", "2026-01-03T00:00+08:00"],
                                         "end": ["2026-01-02T00:00+08:00", ""], "operating": ["1", "0"]}),
                           tz="Asia/Shanghai")
    from forecasting import plan_on

    probe = pd.DatetimeIndex(["2026-01-01T12:00", "2026-01-02T12:00", "2026-01-05T12:00"]).tz_localize("Asia/Shanghai")
    assert plan_on(probe, plan)["operating"].tolist()[0] == 1.0
    assert np.isnan(plan_on(probe, plan)["operating"].tolist()[1])  # after the first row's end, before the next
    assert plan_on(probe, plan)["operating"].tolist()[2] == 0.0


def test_batch_on_a_dask_local_cluster():
    from distributed import Client, LocalCluster

    customers = {f"c{i}": synth(days=21, seed=i)[0] for i in range(4)}
    customers["broken"] = synth(days=3)[0]
    with LocalCluster(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        out = forecast_day_ahead(customers, executor=client.get_executor())
    assert set(out) == set(customers)
    for cid in ("c0", "c1", "c2", "c3"):
        assert isinstance(out[cid], pd.DataFrame)
        assert len(out[cid]) == 96
    assert isinstance(out["broken"], ForecastError)
    assert "customer broken" in str(out["broken"])


def test_outliers_and_level_shifts():
    history, plan = synth(days=42, start="2026-03-02", noise=5.0)
    spiked = history.copy()
    yesterday = spiked.index[-96:]
    spiked[yesterday[40:44]] = 50_000.0  # a glitch of the meter yesterday
    fc = PlanProfile(8, holidays_country=None).fit(spiked, plan).predict(96, plan)
    assert fc["forecast"].max() < 600  # a median profile does not carry the spike into tomorrow
    shifted = history.copy()
    shifted[shifted.index >= shifted.index[-96 * 14]] *= 1.5  # the plant grew two weeks ago
    fc = PlanProfile(8, holidays_country=None).fit(shifted, plan).predict(96, plan)
    wall = fc.index.tz_localize(None)
    day_shift = fc["forecast"][(wall.hour >= 9) & (wall.hour < 17)].mean()
    assert day_shift > 400 * 1.4  # the new level, not the old one (the target is an operating Monday)
