"""Gateway jobs over the real query layer and registry: alerts without duplicates, tiering, config sync."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import select

from collectors.sim.load import LoadModel
from crm_bridge.alerts import list_alerts
from crm_bridge.registry.models import Contract, Customer, MeterAssignment
from forecasting import plan_on
from gateway import jobs as jobs_module
from gateway.config import load_config
from gateway.demo.backfill import history_readings
from gateway.jobs import alerts_job, register_jobs, tiering_job
from gateway.runtime import Gateway
from gateway.scheduler import Scheduler
from gateway.usecases.figures import UseCases
from gateway.usecases.performance import Performance

CFG = """
[gateway]
data_dir = "state"
environment = "development"

[api]
enabled = false

[[customers]]
id = "acme"
name = "Acme Steel"

[[customers]]
id = "beta"

[[sites]]
id = "s1"
customer = "acme"

[[sites]]
id = "s2"
customer = "beta"

[[meters]]
id = "m1"
site = "s1"
device = "d1"

[[meters]]
id = "m2"
site = "s2"
device = "d2"

[[devices]]
type = "modbus"
name = "d1"
host = "127.0.0.1"
unit = 1
profile = "generic"

[[devices]]
type = "modbus"
name = "d2"
host = "127.0.0.1"
unit = 2
profile = "generic"
"""


def _gateway(tmp_path, text=CFG):
    (tmp_path / "gateway.toml").write_text(text)
    return Gateway.from_config(load_config(tmp_path / "gateway.toml"))


def test_registry_follows_the_config(tmp_path):
    gw = _gateway(tmp_path)
    with gw.db() as s:
        assert sorted(s.scalars(select(Customer.code))) == ["acme", "beta"]
        (a,) = s.scalars(select(MeterAssignment).join(MeterAssignment.meter).where(MeterAssignment.valid_to.is_(None))
                         .where(MeterAssignment.meter.has(code="m1")))
        assert a.valid_from == date.today()
    # A second start with the same config duplicates nothing.
    gw2 = _gateway(tmp_path)
    with gw2.db() as s:
        assert len(list(s.scalars(select(Customer)))) == 2


def test_alerts_job_raises_once_and_tiering_classifies(tmp_path):
    gw = _gateway(tmp_path)
    now = pd.Timestamp.now(tz="UTC")
    start = now - pd.Timedelta(days=20)
    for dev, meter, cust, site, peak in (("d1", "m1", "acme", "s1", 3000), ("d2", "m2", "beta", "s2", 500)):
        gw.store.write(history_readings(LoadModel(peak_kw=peak, seed=peak), dev, (cust, site, meter),
                                        int(start.value), int(now.value), 0))
    with gw.db() as s:
        acme = s.scalar(select(Customer).where(Customer.code == "acme"))
        # Contract demand far below the plant's peak: the demand watch must fire.
        s.add(Contract(customer=acme, transformer_kva=2000, contract_demand_kw=1000, basic_charge_mode="contract",
                       pf_standard=0.95, bill_threshold=None, tariff_id="t"))
        s.commit()
    first = alerts_job(gw)
    assert first
    again = alerts_job(gw)
    assert again == []  # nothing is raised twice while open
    with gw.db() as s:
        # Every alert the first run opened is open once (beta's base load may rise too, depending on the day).
        assert sorted(a.id for a in list_alerts(s, status="open")) == sorted(first)
        acme_alerts = list_alerts(s, customer_code="acme", status="open")
        assert any(a.type.startswith("demand") for a in acme_alerts)
    tiers = tiering_job(gw)
    assert tiers["acme"] == "A"
    register_jobs(gw)
    assert {j.name for j in gw.scheduler.specs} == {"outbox_expire", "alerts", "demand_projection", "forecast",
                                                    "tiering"}


def test_forecast_job_stores_tomorrows_forecast_with_the_plan(tmp_path):
    gw = _gateway(tmp_path)
    now = pd.Timestamp.now(tz="Asia/Shanghai")
    start = now.normalize() - pd.Timedelta(days=30)
    for dev, meter, cust, site, peak in (("d1", "m1", "acme", "s1", 3000), ("d2", "m2", "beta", "s2", 500)):
        gw.store.write(history_readings(LoadModel(peak_kw=peak, seed=peak), dev, (cust, site, meter),
                                        int(start.value), int(now.value), 0))
    plans = tmp_path / "state" / "plans"
    plans.mkdir(parents=True)
    tomorrow = (now.normalize() + pd.Timedelta(days=1)).tz_localize(None).tz_localize("Asia/Shanghai")
    # acme's file says which past days it stood still and that it works tomorrow; the plan uploaded since stops it
    # tomorrow (the upload wins the day). beta has a malformed plan (forecast without it, logged).
    days = pd.date_range(start.tz_localize(None), tomorrow.tz_localize(None), freq="D")
    model = LoadModel(peak_kw=3000, seed=3000)  # acme's plant: its plan says which past days it stood still
    flags = [1 if d == tomorrow.tz_localize(None) else int(model.plan_for(d.date())["operating"]) for d in days]
    rows = [f"{d.tz_localize('Asia/Shanghai').isoformat()},{f}" for d, f in zip(days, flags, strict=True)]
    (plans / "acme.csv").write_text("start,operating\n" + "\n".join(rows) + "\n")
    (plans / "beta.csv").write_text("start,operating\nnot-a-date,1\n")
    with gw.db() as s:
        Performance(UseCases(gw), s).upload("planner", "acme", f"日期,产量,单位,班次,生产\n{tomorrow.date()},0,t,0,否\n"
                                            .encode(), "plan")
    plan = jobs_module.load_plan(gw, "acme", "Asia/Shanghai")
    probe = pd.DatetimeIndex([tomorrow + pd.Timedelta(hours=12), tomorrow - pd.Timedelta(hours=12)])
    assert plan_on(probe, plan)["operating"].tolist() == [0.0, flags[-2]], "the upload's day, the file's before it"
    outcome = jobs_module.forecast_job(gw)
    assert set(outcome) == {"acme", "beta"}
    assert not any(v.startswith("error") for v in outcome.values())
    end = tomorrow + pd.Timedelta(days=1)
    acme = gw.query.forecast("acme", tomorrow, end)
    assert len(acme) == 96
    assert acme["forecast"].notna().all()
    assert (acme["lower95"] <= acme["forecast"]).all()
    history_mean = gw.query.customer_intervals("acme", start, now)["kwh"].mean()
    assert acme["forecast"].mean() < 0.6 * history_mean  # the planned stoppage is forecast low


@pytest.mark.parametrize("issue_at", [jobs_module.FORECAST_ISSUE_AT, time(20, 5)])
def test_forecast_cron_fires_at_the_issue_time(tmp_path, monkeypatch, issue_at):
    monkeypatch.setattr(jobs_module, "FORECAST_ISSUE_AT", issue_at)  # the one source: the cron follows it
    gw = _gateway(tmp_path)
    register_jobs(gw)
    (spec,) = [s for s in gw.scheduler.specs if s.name == "forecast"]
    sched = Scheduler(enabled=True, timezone="Asia/Shanghai")
    sched.register(spec)
    sched.start()  # the job's trigger as the scheduler holds it; nothing waits for it to fire
    try:
        at = datetime.fromtimestamp(sched.next_run("forecast"), ZoneInfo("Asia/Shanghai"))
    finally:
        sched.shutdown()
    assert at.time() == issue_at
    assert timedelta(0) < at - datetime.now(ZoneInfo("Asia/Shanghai")) <= timedelta(days=1)


def test_each_customer_clock_gets_its_own_forecast_job_at_the_issue_time(tmp_path, monkeypatch):
    """A Berlin customer's forecast is issued at 21:30 Berlin time, as its backfilled issues are dated."""
    gw = _gateway(tmp_path, CFG.replace('id = "beta"\n', 'id = "beta"\ntimezone = "Europe/Berlin"\n'))
    register_jobs(gw)
    specs = {s.name: s for s in gw.scheduler.specs if s.name.startswith("forecast")}
    assert set(specs) == {"forecast", "forecast:Europe/Berlin"}
    sched = Scheduler(enabled=True, timezone="UTC")
    for spec in specs.values():
        sched.register(spec)
    sched.start()
    try:
        at = {name: datetime.fromtimestamp(sched.next_run(name), UTC) for name in specs}
    finally:
        sched.shutdown()
    assert at["forecast"].astimezone(ZoneInfo("Asia/Shanghai")).time() == jobs_module.FORECAST_ISSUE_AT
    assert at["forecast:Europe/Berlin"].astimezone(ZoneInfo("Europe/Berlin")).time() == jobs_module.FORECAST_ISSUE_AT
    seen: list[list[str]] = []
    monkeypatch.setattr(jobs_module, "_run_forecasts", lambda gw, histories, plans: seen.append(sorted(histories))
                        or {})
    specs["forecast:Europe/Berlin"].func()
    specs["forecast"].func()
    assert seen == [["beta"], ["acme"]]
