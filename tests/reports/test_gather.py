"""The monthly report's figures, gathered in one store read, are those each use case gives on its own.

`customer_month` reads a month and the EARLIER_MONTHS before it at once, makes each month's bill once and shares the
month's intervals and forecast with the services; here every figure is checked against the use cases called one by
one (each with its own store read), on a real gateway with 75 days of history, for a month that is over, the month
before it (its earlier months partly empty) and the current month.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import tests.gateway.api.world as world_mod
from gateway.usecases import UseCaseError, UseCases
from gateway.usecases.reports import (
    MonthReportJob,
    customer_month,
    forecast_check,
    make_month_report,
    month_reports,
)
from gateway.usecases.services import services_for
from tests.reports.pdf import pdf_text


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    os.environ.setdefault("GATEWAY_SECRET_KEY", "test-secret-key-0123456789abcdef")
    saved = world_mod.HISTORY_DAYS
    world_mod.HISTORY_DAYS = 75  # the two months before this one have data, whatever today's date
    try:
        return world_mod.build_world(tmp_path_factory.mktemp("gather"))
    finally:
        world_mod.HISTORY_DAYS = saved


def _months(tz: str) -> list:
    this = datetime.now(ZoneInfo(tz)).date().replace(day=1)
    last = (this - timedelta(days=1)).replace(day=1)
    return [last, (last - timedelta(days=1)).replace(day=1), this]


def _one_by_one(uc: UseCases, customer: str, month):
    """The month's figures as the use cases give them, each read from the store on its own."""
    def bill_or_none(m):
        try:
            return uc.month_bill(customer, m)
        except UseCaseError:
            return None

    usage, bill = uc.month_bill(customer, month)
    tz = ZoneInfo(uc.gw.directory.customer(customer).timezone)
    before = bill_or_none((month - timedelta(days=1)).replace(day=1))
    last_year = bill_or_none(month.replace(year=month.year - 1))
    start = datetime.combine(month, datetime.min.time(), tz)
    frame, _ = uc.month_frame(customer, month)
    stored = uc.gw.query.forecast(customer, start, frame.index[-1] + timedelta(minutes=15))
    energy = frame["status"].isin(("measured", "estimated"))
    check = (forecast_check(frame["kwh"].where(energy).to_numpy(dtype=float),
                            stored["forecast"].reindex(frame.index).to_numpy(dtype=float))
             if stored["forecast"].notna().any() else None)
    advice = list(services_for(uc, customer, month)["advice"]) if bill is not None else None
    return usage, bill, before, last_year, check, advice


@pytest.mark.parametrize("customer", list(world_mod.CUSTOMERS))
def test_every_figure_of_the_report_is_the_use_cases_own(world, customer):
    months = _months(world_mod.CUSTOMERS[customer])
    advised = 0
    for month in months:
        report = customer_month(UseCases(world.gw), customer, month)
        usage, bill, before, last_year, check, advice = _one_by_one(UseCases(world.gw), customer, month)
        assert report.month.usage == usage
        assert report.month.bill == bill
        if before is None:
            assert report.before is None
        else:
            assert report.before is not None
            assert (report.before.usage, report.before.bill) == before
        assert last_year is None, "75 days of history: no month a year back"
        assert report.last_year is None
        assert report.forecast == check
        assert report.advice == advice, month
        advised += len(advice or [])
    assert before is not None, "the world's month before the last full one has data"
    assert advised > 0, "some advice to compare"


def test_the_month_without_money_drops_only_the_money(world):
    month = _months("Asia/Shanghai")[0]
    report = customer_month(UseCases(world.gw), "acme", month, money=False)
    usage, bill = UseCases(world.gw).month_bill("acme", month)
    assert bill is not None
    assert report.month.usage == usage
    assert report.month.bill is None
    assert report.advice is None
    assert report.before is not None
    assert report.before.bill is None


def test_a_batch_worker_makes_the_same_report_and_says_why_there_is_none(world):
    month = _months("Asia/Shanghai")[0]
    done = make_month_report(world.gw.config, MonthReportJob("acme", month, "pdf", "en"))
    assert done.content is not None, done.error
    assert done.cpu_s > 0
    bill = UseCases(world.gw).month_bill("acme", month)[1]
    assert bill is not None
    assert f"{bill.total:,.2f}" in pdf_text(done.content)
    empty = make_month_report(world.gw.config, MonthReportJob("acme", month.replace(year=2020), "html"))
    assert empty.content is None
    assert "no data" in empty.error or "starts on" in empty.error, empty.error


def test_the_batch_through_a_process_pool_gives_one_result_per_job(world):
    month = _months("Asia/Shanghai")[0]
    jobs = [MonthReportJob(c, month, "html", "en") for c in world_mod.CUSTOMERS]
    jobs.append(MonthReportJob("acme", month.replace(year=2020), "html"))
    results = list(month_reports(world.gw.config, jobs))
    assert sorted((r.job.customer, r.job.month) for r in results) == sorted((j.customer, j.month) for j in jobs)
    made = {r.job.customer: r.content for r in results if r.content is not None}
    assert sorted(made) == sorted(world_mod.CUSTOMERS)
    assert [r.job.month.year for r in results if r.content is None] == [2020]
    for customer, html in made.items():
        usage = UseCases(world.gw).month_bill(customer, month)[0]
        assert f"{usage.energy_kwh:,.0f}".encode() in html, customer


def test_the_batch_runs_on_the_dask_cluster_the_forecast_job_uses(world):
    distributed = pytest.importorskip("distributed")
    month = _months("Asia/Shanghai")[0]
    # a real scheduler on a loopback port; its one worker is a thread of this process (it opens the same stores)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                                  protocol="tcp://", host="127.0.0.1") as cluster:
        cfg = world.gw.config
        cfg = cfg.model_copy(update={"forecast": cfg.forecast.model_copy(
            update={"dask_scheduler": cluster.scheduler_address})})
        (done,) = list(month_reports(cfg, [MonthReportJob("beta", month, "html")]))
        assert "make_month_report" in cluster.scheduler.task_prefixes, "the cluster ran it, not a local pool"
    assert done.content is not None, done.error
    assert b'<html lang="en' in done.content, "beta reads English: the customer's language"
