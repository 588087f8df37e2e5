"""One production plan (issue 15): the plan uploaded through the API with shift counts and operating flags is the
forecast's, the saving advice's and the base-load alert's, merged with the plan file; bad values are row errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import delete, func, select

from crm_bridge.alerts.rules import base_load_rise
from crm_bridge.registry.performance_models import ProductionDay
from forecasting import plan_on
from gateway.jobs import load_plan
from gateway.usecases.figures import UseCases
from gateway.usecases.services import _services
from tests.gateway.api.world import CUSTOMERS, token_for

C = "/api/v1/customers/gamma"
TZ = CUSTOMERS["gamma"]


def _midnight(d: date) -> pd.Timestamp:
    return pd.Timestamp(d).tz_localize(TZ)


@pytest.fixture
def gamma_plan_file(world) -> Iterator[Path]:
    """gamma's plan file path; afterwards the file and every production row of gamma are gone (the world is shared)."""
    gw = world.gw
    path = gw.config.data_path(gw.config.forecast.plans_dir) / "gamma.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    yield path
    path.unlink(missing_ok=True)
    with gw.db() as s:
        s.execute(delete(ProductionDay).where(ProductionDay.customer_code == "gamma"))
        s.commit()


def test_the_uploaded_plan_wins_over_the_file_and_feeds_forecast_alert_and_advice(client, world, gamma_plan_file,
                                                                                   caplog):
    d = date.fromisoformat(world.today["gamma"])
    end = _midnight(d + timedelta(days=1))
    # The file: two shifts from four weeks back, three shifts from d-3 on (its last row holds until a next one).
    gamma_plan_file.write_text("start,operating,shift\n"
                               f"{_midnight(d - timedelta(days=28)).isoformat()},1,2\n"
                               f"{_midnight(d - timedelta(days=3)).isoformat()},1,3\n")
    # The upload, with Chinese headers: d-3 again (it wins), then one shift, a stopped day, one shift.
    upload = ("日期,产量,单位,班次,生产\n"
              f"{d - timedelta(days=3)},80,吨,1,是\n{d - timedelta(days=2)},80,吨,1,\n"
              f"{d - timedelta(days=1)},0,吨,0,否\n{d},90,吨,1,yes\n").encode()
    r = client.post(f"{C}/production", headers=token_for(client, "cust-gamma"), params={"kind": "plan"},
                    files={"file": ("plan.csv", upload)})
    assert r.status_code == 201, r.text
    assert (r.json()["rows"], r.json()["unit"]) == (4, "吨")
    with world.gw.db() as s:
        stored = {p.day: (p.shifts, p.operating) for p in s.scalars(select(ProductionDay).where(
            ProductionDay.customer_code == "gamma", ProductionDay.kind == "plan"))}
    assert stored[d - timedelta(days=2)] == (1, None), "an empty operating cell is stored as not given"
    assert stored[d - timedelta(days=1)] == (0, False)

    with caplog.at_level(logging.INFO, logger="gateway.jobs"):
        plan = load_plan(world.gw, "gamma", TZ)
    said = [m for m in caplog.messages if "replaces the plan file" in m]
    assert len(said) == 1, caplog.messages
    assert "1 day(s)" in said[0]
    assert plan is not None

    def noon(day: date) -> pd.Series:
        return plan_on(pd.DatetimeIndex([_midnight(day) + pd.Timedelta(hours=12)]), plan).iloc[0]

    assert noon(d - timedelta(days=10))["shift"] == 2, "the file's days stay the file's"
    assert noon(d - timedelta(days=3))["shift"] == 1, "the upload wins the day both give"
    assert noon(d - timedelta(days=3))["planned_output_t"] == 80
    assert noon(d - timedelta(days=1))["operating"] == 0
    assert noon(d)["planned_output_t"] == 90
    assert noon(d + timedelta(days=1))["shift"] == 3, "after the uploaded days the file's row in effect resumes"

    # The base-load alert: rise -1 reports any base load, so the finding shows what it stood on. With the file
    # alone d is a three-shift day with no idle interval, and there would be no finding at all.
    hist = world.gw.query.customer_intervals("gamma", end - pd.Timedelta(days=29), end)
    (finding,) = base_load_rise(hist, "gamma", range(0, 6), -1.0, plan)
    assert finding.params["basis"] == "plan"
    assert finding.window_start.date() == d

    # The advice reads the plan through the same load_plan, over d's month up to d (uncached: the services view of
    # the shared world stays as it was).
    first = d.replace(day=1)
    out = _services(UseCases(world.gw), "gamma", ZoneInfo(TZ), _midnight(first).to_pydatetime(), end.to_pydatetime(),
                    None, [], None)
    assumption = out["base_load"]["evidence"]["assumptions"][0]
    assert assumption.startswith("off-hours from the production plan: "), assumption
    one_shift = sum(x >= first for x in (d - timedelta(days=3), d - timedelta(days=2), d))
    assert f"1 shift (08:00–16:00) on {one_shift} day" in assumption
    assert ("not operating on 1 day" in assumption) == (d - timedelta(days=1) >= first)


def test_the_day_listing_shows_the_uploaded_shifts_and_operating_flag(client, world, gamma_plan_file):
    d = date.fromisoformat(world.today["gamma"])
    cust = token_for(client, "cust-gamma")
    upload = f"date,output,unit,shifts,operating\n{d - timedelta(days=1)},50,t,2,1\n{d},60,t,,\n".encode()
    r = client.post(f"{C}/production", headers=cust, files={"file": ("actual.csv", upload)})
    assert r.status_code == 201, r.text
    perf = client.get(f"{C}/performance", headers=cust,
                      params={"from": f"{d - timedelta(days=1):%Y-%m}", "to": f"{d:%Y-%m}"})
    assert perf.status_code == 200, perf.text
    days = {x["day"]: x for x in perf.json()["days"]}
    assert (days[str(d - timedelta(days=1))]["shifts"], days[str(d - timedelta(days=1))]["operating"]) == (2, True)
    assert (days[str(d)]["output"], days[str(d)]["shifts"], days[str(d)]["operating"]) == (60, None, None)


@pytest.mark.parametrize(("lang", "header", "expected"), [
    ("en", "date,output,unit,shifts,operating",
     'Row 2, column shifts: "4" is not a shift count: give a whole number from 0 to 3.'),
    ("zh", "日期,产量,单位,班次,生产", "第 2 行，班次 列：“4”不是班次数，请填写 0 至 3 的整数。"),
], ids=["en", "zh"])
def test_bad_shifts_and_operating_are_row_errors_in_both_languages_and_store_nothing(client, world, lang, header,
                                                                                     expected):
    d = date.fromisoformat(world.today["gamma"])
    shifts, operating = header.split(",")[3:]
    bad = (f"{header}\n{d},1,t,4,1\n{d - timedelta(days=1)},1,t,1.5,是\n{d - timedelta(days=2)},1,t,x,maybe\n"
           f"{d - timedelta(days=3)},1,t,3,<b>2</b>\n{d - timedelta(days=4)},1,t,0,no\n").encode()
    r = client.post(f"{C}/production", headers=token_for(client, "cust-gamma"), params={"kind": "plan", "lang": lang},
                    files={"file": ("plan.csv", bad)})
    assert r.status_code == 422, r.text
    errors = r.json()["error"]["detail"]["errors"]
    assert [(e["row"], e["column"], e["code"], e["value"]) for e in errors] == [
        (2, shifts, "bad_shifts", "4"), (3, shifts, "bad_shifts", "1.5"), (4, shifts, "bad_shifts", "x"),
        (4, operating, "bad_operating", "maybe"), (5, operating, "bad_operating", "<b>2</b>")]
    assert errors[0]["message"] == expected
    assert errors[0]["english"] == f"row 2, column {shifts}: '4' is not a shift count: a whole number from 0 to 3"
    with world.gw.db() as s:
        assert s.scalar(select(func.count()).select_from(ProductionDay).where(
            ProductionDay.customer_code == "gamma")) == 0, "nothing of a refused file is stored"


def test_a_source_without_a_registry_reads_the_file_only(world, gamma_plan_file):
    class FileOnly:  # what a one-shot command without a registry gives: the config and the query layer
        config, query = world.gw.config, world.gw.query

    gamma_plan_file.write_text("start,operating\n2026-01-05T00:00+08:00,0\n")
    plan = load_plan(FileOnly(), "gamma", TZ)
    assert plan is not None
    assert list(plan["operating"]) == [0.0]
