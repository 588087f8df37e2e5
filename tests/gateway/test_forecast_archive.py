"""Every forecast issue is kept (embedded store and influxd, v1 and v2), a past day shows its day-ahead issue,
backfill sees only the data known at its issue time, accuracy scores measured intervals only, and the API, the
portal and the month report show the one month_accuracy."""

from __future__ import annotations

import io
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from typer.testing import CliRunner

import tests.gateway.api.world as world_mod
from collectors.reading import ACTIVE_ENERGY_IMPORT_KWH, Quality, Reading
from collectors.sim.load import LoadModel
from gateway.cli import app as cli
from gateway.config import load_config
from gateway.demo.backfill import history_readings
from gateway.jobs import backfill_forecasts, backfill_issue_time
from gateway.query import QueryService, Topology, day_bounds
from gateway.runtime import Gateway
from gateway.store.sqlite import SqliteStore
from gateway.usecases import UseCases
from gateway.usecases.forecast_accuracy import month_accuracy
from gateway.usecases.reports import customer_month
from gateway.web import create_app
from tests.gateway.api.world import PASSWORD, token_for
from tests.gateway.store.conftest import BACKENDS, open_store
from tests.gateway.test_jobs import CFG as JOBS_CFG

TZ = "Asia/Shanghai"
TOPO = Topology(customer_tz={"sh": TZ}, site_customer={"sh-1": "sh"}, meter_site={"m1": "sh-1"},
                meter_device={"m1": "dev1"})
DAY = "2026-11-20"


def _issue(start: datetime, value: float) -> pd.DataFrame:
    idx = pd.date_range(start, periods=96, freq="15min")
    return pd.DataFrame({"forecast": value, "lower80": value - 1, "upper80": value + 1, "lower95": value - 2,
                         "upper95": value + 2}, index=idx)


def _ns(t: datetime | pd.Timestamp) -> int:
    return int(pd.Timestamp(t).value)


@pytest.mark.parametrize("kind", BACKENDS)
def test_every_issue_is_kept_and_a_past_day_shows_its_day_ahead_one(kind, request, tmp_path):
    store = open_store(kind, request, tmp_path)
    try:
        start, end = day_bounds(DAY, TZ)
        after = QueryService(store, TOPO, clock=lambda: start + timedelta(days=5))
        ahead = _ns(start - timedelta(hours=2, minutes=30))  # 21:30 the evening before
        later = _ns(start + timedelta(hours=8))  # a re-issue on the day
        assert after.store_forecast("sh", _issue(start, 10.0), ahead, model="plan_profile_8") == 96 * 5
        assert after.store_forecast("sh", _issue(start, 20.0), later, model="seasonal_naive") == 96 * 5
        after.store_forecast("sh", _issue(start, 10.0), ahead, model="plan_profile_8")  # the same issue again
        nxt = start + timedelta(days=1)
        after.store_forecast("sh", _issue(nxt, 30.0), _ns(nxt - timedelta(hours=2, minutes=30)), model="m")
        rows = store.read_forecasts("sh", _ns(start), _ns(end))
        assert len(rows) == 2 * 96, "both issues of the day, the repeated one once"
        assert sorted(set(zip(rows["issued_at"], rows["model"], strict=True))) == [
            (ahead, "plan_profile_8"), (later, "seasonal_naive")]
        assert sorted(set(rows.loc[rows["issued_at"] == later, "forecast"])) == [20.0]

        past = after.forecast("sh", start, end)
        assert len(past) == 96
        assert (past["forecast"] == 10.0).all(), "the day-ahead issue"
        assert (past["upper95"] == 12.0).all()
        assert past["day_ahead"].all()
        assert (past["model"] == "plan_profile_8").all()
        assert (past["issued_at"] == pd.Timestamp(ahead, tz="UTC")).all()
        assert not past["backfilled"].astype(bool).any()

        running = QueryService(store, TOPO, clock=lambda: start + timedelta(hours=12)).forecast("sh", start, end)
        assert (running["forecast"] == 20.0).all(), "while the day runs: its latest issue"
        assert not running["day_ahead"].any()

        if kind != "embedded":  # one series per customer and slot, not one per issue
            (series,) = store.query('SHOW SERIES FROM "forecast"')  # type: ignore[attr-defined]
            keys = sorted(v[0] for s in series for v in s["values"])
            assert keys == ["forecast,customer=sh,slot=0", "forecast,customer=sh,slot=1"]
    finally:
        store.close()


def test_accuracy_scores_measured_intervals_only(tmp_path):
    store = SqliteStore(tmp_path / "ts.sqlite")
    start, end = day_bounds(DAY, TZ)
    q = QueryService(store, TOPO, clock=lambda: end + timedelta(days=2))
    boundaries = pd.date_range(pd.Timestamp(start) - pd.Timedelta(hours=1), pd.Timestamp(end) + pd.Timedelta(hours=1),
                               freq="15min")
    local = boundaries.tz_convert(TZ).strftime("%H:%M")
    gap_short = {"10:15", "10:30"}  # 45 min without a boundary: three intervals estimated
    gap_long = {f"{h:02d}:{m:02d}" for h in (14, 15) for m in (0, 15, 30, 45)} | {"16:00"}  # 2.5 h: missing
    keep = [i for i, hm in enumerate(local) if not (boundaries[i] > start and boundaries[i] < end
                                                     and hm in gap_short | gap_long)]
    store.write([Reading("dev1", ACTIVE_ENERGY_IMPORT_KWH, 100.0 * i, "kWh", Quality.GOOD, _ns(boundaries[i]),
                         _ns(boundaries[i]), "sh", "sh-1", "m1") for i in keep])
    actual = q.customer_intervals("sh", start, end)
    counts = actual["status"].value_counts().to_dict()
    assert counts == {"measured": 83, "estimated": 3, "missing": 10}
    # One kWh high where measured; far off where the actual is estimated or missing (scored, those would show).
    fc = _issue(start, 0.0)
    fc["forecast"] = np.where(actual["status"] == "measured", actual["kwh"].fillna(0) + 1.0, 250.0)
    q.store_forecast("sh", fc, _ns(start - timedelta(hours=2, minutes=30)), model="plan_profile_8")
    acc = q.forecast_accuracy("sh", start, end)
    assert (acc.mae_kwh, acc.bias_kwh, acc.intervals) == (1.0, 1.0, 83)
    assert (acc.estimated, acc.missing, acc.pending, acc.no_forecast) == (3, 10, 0, 0)
    # An issue made on the day is shown but never scored as day-ahead.
    nxt_start, nxt_end = day_bounds("2026-11-21", TZ)
    q.store_forecast("sh", _issue(nxt_start, 5.0), _ns(nxt_start + timedelta(hours=1)), model="m")
    assert q.forecast_accuracy("sh", nxt_start, nxt_end).intervals == 0
    store.close()


BACKFILL_CFG = JOBS_CFG + "\n[forecast]\nhistory_days = 21\n"  # the jobs tests' two plants, three weeks of history


def test_backfill_sees_only_the_data_known_at_its_issue_time(tmp_path):
    (tmp_path / "gateway.toml").write_text(BACKFILL_CFG)
    gw = Gateway.from_config(load_config(tmp_path / "gateway.toml"))
    day = datetime.now(ZoneInfo(TZ)).date() - timedelta(days=2)
    issued = backfill_issue_time(day, TZ)
    now = pd.Timestamp.now(tz="UTC")
    start = issued - pd.Timedelta(days=23)
    same = LoadModel(peak_kw=1000, seed=7)
    # acme and beta: the same plant up to the issue time; after it beta's data is another plant's altogether.
    for dev, tags, after in (("d1", ("acme", "s1", "m1"), same), ("d2", ("beta", "s2", "m2"),
                                                                  LoadModel(peak_kw=9000, seed=99))):
        gw.store.write(history_readings(same, dev, tags, _ns(start), _ns(issued), 0))
        gw.store.write(history_readings(after, dev, tags, _ns(issued), _ns(now), 0))
    origin, end = day_bounds(day.isoformat(), TZ)
    later = {c: gw.query.customer_intervals(c, issued, end)["kwh"].to_numpy() for c in ("acme", "beta")}
    assert not np.allclose(later["acme"], later["beta"], equal_nan=True), "the data after the issue differs"

    with ThreadPoolExecutor(2) as pool:
        outcome = backfill_forecasts(gw, day, day, executor=pool)
    assert set(outcome) == {"acme", "beta"}
    assert not any(v.startswith(("error", "skipped")) for per in outcome.values() for v in per.values()), outcome
    acme, beta = (gw.query.forecast(c, origin, end) for c in ("acme", "beta"))
    assert acme["forecast"].notna().all()
    np.testing.assert_array_equal(acme["forecast"].to_numpy(), beta["forecast"].to_numpy())
    assert acme["backfilled"].astype(bool).all()
    assert acme["day_ahead"].all()
    assert (acme["issued_at"] == issued.tz_convert("UTC")).all()
    with ThreadPoolExecutor(1) as pool:
        again = backfill_forecasts(gw, day, day, ["acme"], executor=pool)
    assert again == {"acme": {day.isoformat(): "skipped: has a day-ahead forecast"}}
    future = datetime.now(ZoneInfo(TZ)).date() + timedelta(days=2)
    r = CliRunner().invoke(cli, ["forecast", "backfill", "-c", str(tmp_path / "gateway.toml"), "--from", str(day),
                                 "--to", str(future), "--customer", "beta", "--json"])
    assert r.exit_code == 0, r.output
    told = json.loads(r.output.strip().splitlines()[-1])["beta"]
    assert told[str(day)] == "skipped: has a day-ahead forecast"
    assert told[str(future)] == "skipped: the day has not begun"
    # the days between, up to today, are backfilled through the CLI (by the process pool the job uses)
    made = [told[str(day + timedelta(days=k))] for k in (1, 2)]
    assert not any(m.startswith(("error", "skipped")) for m in made), told

    r = CliRunner().invoke(cli, ["forecast", "backfill", "-c", str(tmp_path / "gateway.toml"), "--from", "2026-13-01",
                                 "--to", "2026-12-01"])
    assert r.exit_code == 2
    assert "--from '2026-13-01' is not a date" in r.output
    r = CliRunner().invoke(cli, ["forecast", "backfill", "-c", str(tmp_path / "gateway.toml"), "--from", "2026-11-02",
                                 "--to", "2026-11-01"])
    assert r.exit_code == 2
    assert "before --from" in r.output
    gw.store.close()


@pytest.fixture(scope="module")
def pin_world(tmp_path_factory):
    os.environ.setdefault("GATEWAY_SECRET_KEY", "test-secret-key-0123456789abcdef")
    world = world_mod.build_world(tmp_path_factory.mktemp("forecastworld"))
    # gamma: a live day-ahead issue for its last full day, a backfilled one for the day before
    for back, value, backfilled in ((0, 60.0, False), (1, 40.0, True)):
        day = date.fromisoformat(world.today["gamma"]) - timedelta(days=back)
        start, _ = day_bounds(day.isoformat(), TZ)
        world.gw.query.store_forecast("gamma", _issue(start, value), _ns(backfill_issue_time(day, TZ)),
                                      model="plan_profile_8", backfilled=backfilled)
    return world


def test_api_portal_and_report_show_the_one_month_accuracy(pin_world):
    gw = pin_world.gw
    day = date.fromisoformat(pin_world.today["gamma"])
    first = day.replace(day=1)
    expected = month_accuracy(UseCases(gw), "gamma", first)
    assert expected.intervals > 0
    assert expected.mae_kwh is not None
    client = TestClient(create_app(gw))

    body = client.get(f"/api/v1/customers/gamma/forecast-accuracy?month={first:%Y-%m}",
                      headers=token_for(client, "cust-gamma")).json()
    assert (body["mae_kwh"], body["bias_kwh"], body["intervals"]) == (expected.mae_kwh, expected.bias_kwh,
                                                                      expected.intervals)
    assert body["unit"] == "kWh per 15 min"
    bad = client.get("/api/v1/customers/gamma/forecast-accuracy?month=2026-13",
                     headers=token_for(client, "cust-gamma"))
    assert bad.status_code in (400, 422)
    assert "month" in bad.text
    other = client.get(f"/api/v1/customers/acme/forecast-accuracy?month={first:%Y-%m}",
                       headers=token_for(client, "cust-gamma"))
    assert other.status_code in (403, 404)

    mae = f"{expected.mae_kwh:,.2f}"
    token = client.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
    client.post("/login", data={"username": "cust-gamma", "password": PASSWORD, "csrf_token": token})
    month_page = client.get(f"/portal/c/gamma/month?month={first:%Y-%m}&lang=en").text
    assert re.search(r'id="forecast-mae">[^<]*MAE ' + re.escape(mae) + " kWh per 15 min", month_page)
    day_page = client.get(f"/portal/c/gamma/day?date={day}&lang=en").text
    assert re.search(r'id="forecast-mae">[^<]*MAE ' + re.escape(mae), day_page)
    assert "by model plan_profile_8" in day_page
    assert 'id="forecast-backfilled"' not in day_page
    before = client.get(f"/portal/c/gamma/day?date={day - timedelta(days=1)}&lang=zh").text
    assert 'id="forecast-backfilled"' in before
    assert "事后按当时已有数据补算" in before
    client.cookies.clear()

    report = customer_month(UseCases(gw), "gamma", first, "en")
    assert report.forecast_accuracy == expected
    html = client.get(f"/api/v1/customers/gamma/report?month={first:%Y-%m}&format=html&lang=en",
                      headers=token_for(client, "cust-gamma"))
    assert html.status_code == 200, html.text
    assert re.search(r'id="forecast-mae">[^<]*MAE ' + re.escape(mae) + " kWh per 15 min", html.text)
    xlsx = client.get(f"/api/v1/customers/gamma/report?month={first:%Y-%m}&format=xlsx&lang=en",
                      headers=token_for(client, "cust-gamma"))
    summary = {r[0].value: r[1].value for r in load_workbook(io.BytesIO(xlsx.content)).worksheets[0].iter_rows()}
    assert summary["Day-ahead forecast MAE (kWh per 15 min)"] == expected.mae_kwh
    assert summary["Day-ahead forecast bias (kWh per 15 min)"] == expected.bias_kwh
