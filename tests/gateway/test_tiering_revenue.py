"""Tiering fed by real inputs: each account's revenue is the sum of its month bills over the last year.

The tiering job passes `billed_revenue` (the one month bill per month) into crm_bridge.tiering.compute_metrics; the
revenue recorded on the customer is used only where no month has a bill.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

import tests.gateway.api.world as world_mod
from crm_bridge.registry.models import Customer, TierRecord
from crm_bridge.tiering import WEIGHTS, compute_metrics
from gateway.jobs import tiering_job
from gateway.usecases import UseCaseError, UseCases
from gateway.usecases.accounts import REVENUE_MONTHS, billed_revenue, month_before


@pytest.fixture(scope="module")
def year_world(tmp_path_factory):
    os.environ.setdefault("GATEWAY_SECRET_KEY", "test-secret-key-0123456789abcdef")
    saved = world_mod.HISTORY_DAYS
    world_mod.HISTORY_DAYS = 45  # last month has data whatever today's date
    try:
        return world_mod.build_world(tmp_path_factory.mktemp("tieringworld"))
    finally:
        world_mod.HISTORY_DAYS = saved


def _bills_of_last_year(uc: UseCases, customer: str, now: datetime) -> float:
    first = now.astimezone(ZoneInfo(world_mod.CUSTOMERS[customer])).date().replace(day=1)
    total = 0.0
    for _ in range(REVENUE_MONTHS):
        first = month_before(first)
        try:
            _, bill = uc.month_bill(customer, first)  # each month on its own (billed_revenue reads them at once)
        except UseCaseError:
            continue
        if bill is not None:
            total += bill.total
    return total


def test_revenue_is_the_sum_of_the_last_years_month_bills(year_world):
    gw, now = year_world.gw, datetime.now(UTC)
    uc = UseCases(gw)
    expected = {c: _bills_of_last_year(uc, c, now) for c in world_mod.CUSTOMERS}
    assert all(v > 0 for v in expected.values()), expected
    for c, v in expected.items():
        assert billed_revenue(uc, c, now) == pytest.approx(v, rel=1e-12)
    with gw.db() as s:
        gamma = s.scalar(select(Customer).where(Customer.code == "gamma"))
        assert gamma is not None
        gamma.annual_revenue = 1234.5
        s.commit()
        metrics = compute_metrics(s, gw.query, now,
                                  revenue=lambda code: None if code == "gamma" else billed_revenue(uc, code, now))
        bare = compute_metrics(s, gw.query, now)
    assert metrics["acme"].revenue == pytest.approx(expected["acme"], rel=1e-12)
    assert metrics["beta"].revenue == pytest.approx(expected["beta"], rel=1e-12)
    assert metrics["gamma"].revenue == 1234.5, "no bill from the caller: the revenue on record"
    assert bare["acme"].revenue == 0.0, "without the month bills nothing sets acme's revenue"


def test_the_tiering_job_scores_with_the_billed_revenue(year_world):
    gw, now = year_world.gw, datetime.now(UTC)
    uc = UseCases(gw)
    with gw.db() as s:
        for c in s.scalars(select(Customer)):
            c.annual_revenue = None
        s.commit()
        metrics = compute_metrics(s, gw.query, now, revenue=lambda code: billed_revenue(uc, code, now))
    tiers = tiering_job(gw)
    assert set(tiers) == set(world_mod.CUSTOMERS)
    totals = {"kwh": sum(m.annual_kwh for m in metrics.values()), "revenue": sum(m.revenue for m in metrics.values()),
              "peak_kw": sum(m.peak_kw for m in metrics.values())}
    assert totals["revenue"] > 0
    with gw.db() as s:
        for code, m in metrics.items():
            c = s.scalar(select(Customer).where(Customer.code == code))
            assert c is not None
            rec = s.get(TierRecord, c.id)
            assert rec is not None
            want = (WEIGHTS["kwh"] * m.annual_kwh / totals["kwh"] + WEIGHTS["revenue"] * m.revenue / totals["revenue"]
                    + WEIGHTS["peak_kw"] * m.peak_kw / totals["peak_kw"])
            assert rec.score == pytest.approx(want, rel=1e-9), code
