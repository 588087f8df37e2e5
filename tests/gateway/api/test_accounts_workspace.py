"""The account manager's workspace use cases: the portfolio's figures in one pass, their cache, the tier override.

Runs on a world of its own (it adds tickets, visits, alerts and overrides that the shared API world's tests would
count).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from collectors.reading import ACTIVE_POWER_KW, Reading
from crm_bridge.alerts import raise_alert
from crm_bridge.desk import create_ticket
from crm_bridge.desk.workflow import transition
from crm_bridge.registry.models import Contract, Customer, Interaction, TierChange
from gateway.auth.models import AuditEvent
from gateway.usecases import BadInput, Forbidden, NotFound, UseCases
from gateway.usecases.accounts import Accounts, month_before, open_advice_money
from gateway.usecases.desk import Actor
from gateway.usecases.portfolio import (
    COMPUTING,
    AccountRow,
    MonthFigure,
    PortfolioCache,
    advice_month,
    month_figure,
    portfolio_cache,
    portfolio_rows,
    sort_and_filter,
)
from tests.gateway.api.world import World, build_world


@pytest.fixture(scope="module")
def ws_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    os.environ.setdefault("GATEWAY_SECRET_KEY", "test-secret-key-0123456789abcdef")
    return build_world(tmp_path_factory.mktemp("workspaceworld"))


def _audit(world: World):  # type: ignore[no-untyped-def]
    from gateway.web import auth_service

    return auth_service(world.gw).audit


def test_portfolio_rows_bring_every_figure_of_an_account(ws_world):
    gw, now = ws_world.gw, datetime.now(UTC)
    with gw.db() as s:
        acme = s.scalar(select(Customer).where(Customer.code == "acme"))
        assert acme is not None
        late = create_ticket(s, "acme", "complaint", "billing", "never answered", now - timedelta(days=30))
        for score in (4, 2):
            t = create_ticket(s, "acme", "request", "metering", f"rated {score}", now - timedelta(hours=3))
            for step in ("acknowledged", "in_progress", "resolved"):
                transition(s, t.id, step, now - timedelta(hours=2))
            transition(s, t.id, "closed", now - timedelta(hours=1), satisfaction=score)
        s.add(Interaction(customer_id=acme.id, at=now - timedelta(days=3), channel="visit", summary="site walk"))
        s.add(Interaction(customer_id=acme.id, at=now - timedelta(hours=1), channel="call", summary="a call"))
        raise_alert(s, key="ws:critical", type="demand_100", severity="critical", customer_code="acme",
                    meter_code="acme-m1", window_start=now - timedelta(hours=1), window_end=now,
                    message="demand over the contract", now=now)
        s.commit()
        assert late.id
    uc = UseCases(gw)
    portfolio_cache(uc).SYNC_BUDGET_S = 3600.0  # every figure now, however slow the machine
    rows = {r.customer: r for r in portfolio_rows(uc, ["acme", "gamma"], now)}
    assert not any(r.computing for r in rows.values())
    assert set(rows) == {"acme", "gamma"}
    a = rows["acme"]
    assert a.alerts == {"warning": 1, "critical": 1}
    assert a.overdue_requests == 1, "the complaint opened 30 days ago is past its acknowledgement target"
    assert a.satisfaction == 3.0
    assert a.ratings == 2
    assert a.days_since_visit == 3, "the visit, not the later call"
    local = ZoneInfo("Asia/Shanghai")
    assert rows["gamma"].days_since_visit is None, "no visit on file"
    assert rows["gamma"].overdue_requests == 0
    first = now.astimezone(local).date().replace(day=1)
    assert a.this_month == month_figure(uc, "acme", first), "the one month bill, through the cache"
    assert a.last_month == month_figure(uc, "acme", month_before(first))
    assert a.last_year == month_figure(uc, "acme", first.replace(year=first.year - 1))
    assert a.last_year.state == "pending", "the world's history does not reach last year"
    assert a.money_at_stake == open_advice_money(uc, "acme", advice_month(now.astimezone(local).date()))
    if a.this_month.state == "ok":
        usage, bill = uc.month_bill("acme", first)
        assert bill is not None
        assert a.this_month.total == round(bill.total, 2)
        assert a.this_month.kwh == round(usage.energy_kwh, 1)


def test_a_closed_month_is_recomputed_when_a_reading_arrives_for_it(ws_world):
    gw = ws_world.gw
    uc = UseCases(gw)
    cache = PortfolioCache(uc)
    cache.SYNC_BUDGET_S = 3600.0
    first = month_before(datetime.now(ZoneInfo("Asia/Shanghai")).date().replace(day=1))
    key = [("month", "acme", first, True)]
    assert cache.get(key)[("month", "acme", first)] == month_figure(uc, "acme", first)
    entry = cache._data[("month", "acme", first)]
    made, print_before = entry.made, entry.fingerprint
    assert print_before is not None
    cache._refresh(key)  # no new reading: the bill stands
    assert cache._data[("month", "acme", first)].made == made
    customer, site, meter = gw.directory.tags["acme-dev"]
    at = datetime.combine(first + timedelta(days=1), datetime.min.time(), ZoneInfo("Asia/Shanghai")) \
        + timedelta(minutes=7)
    ts = int(at.timestamp()) * 10**9
    gw.store.write([Reading(device="acme-dev", point=ACTIVE_POWER_KW, value=123.0, unit="kW", source_ts=ts,
                            gateway_ts=ts, customer=customer, site=site, meter=meter)])
    cache._refresh(key)
    after = cache._data[("month", "acme", first)]
    assert after.fingerprint == print_before + 1
    assert after.made > made, "recomputed"
    assert after.value == month_figure(uc, "acme", first)


def test_figures_beyond_the_time_budget_are_computed_in_the_background(ws_world):
    uc = UseCases(ws_world.gw)
    cache = PortfolioCache(uc)
    cache.SYNC_BUDGET_S = 0.0  # the page waits for nothing
    first = datetime.now(ZoneInfo("Asia/Shanghai")).date().replace(day=1)
    keys = [("month", "gamma", first, False), ("advice", "gamma", advice_month(first), False)]
    got = cache.get(keys)
    assert list(got.values()) == [COMPUTING, COMPUTING]
    assert cache.refresher is not None
    cache.refresher.join(600)
    again = cache.get(keys)
    assert again[("month", "gamma", first)] == month_figure(uc, "gamma", first)
    assert again[("advice", "gamma", advice_month(first))] == open_advice_money(uc, "gamma", advice_month(first))


def test_a_contract_change_recomputes_the_accounts_figures(ws_world):
    gw, now = ws_world.gw, datetime.now(UTC)
    uc = UseCases(gw)
    portfolio_cache(uc).SYNC_BUDGET_S = 3600.0
    before = portfolio_rows(uc, ["gamma"], now)[0]
    with gw.db() as s:
        k = s.scalar(select(Contract).join(Customer).where(Customer.code == "gamma"))
        assert k is not None
        k.contract_demand_kw = 1700.0  # gamma peaks near 3000 kW: the excess over 1.05 C is billed twice
        s.commit()
    after = portfolio_rows(uc, ["gamma"], now)[0]
    first = now.astimezone(ZoneInfo("Asia/Shanghai")).date().replace(day=1)
    assert after.this_month == month_figure(uc, "gamma", first)
    assert after.last_month == month_figure(uc, "gamma", month_before(first))
    billed = [(b.total, a.total) for b, a in ((before.this_month, after.this_month),
                                               (before.last_month, after.last_month)) if a.state == "ok"]
    assert billed, "the world's history reaches this month or the one before"
    assert all(a != b for b, a in billed), billed


def test_sort_and_filter():
    def row(c: str, tier: str | None, kwh: float | None, alerts: int = 0) -> AccountRow:
        return AccountRow(c, c.title(), "Asia/Shanghai", tier=tier, alerts={"warning": alerts} if alerts else {},
                          this_month=MonthFigure("ok" if kwh is not None else "pending", kwh))

    rows = [row("a", "A", 10.0), row("b", None, None, alerts=2), row("c", "C", 30.0), row("d", "A", 20.0)]
    assert [r.customer for r in sort_and_filter(rows, "kwh")] == ["a", "d", "c", "b"], "no figure: last"
    assert [r.customer for r in sort_and_filter(rows, "kwh", descending=True)] == ["c", "d", "a", "b"]
    assert [r.customer for r in sort_and_filter(rows, "name", tier="A")] == ["a", "d"]
    assert [r.customer for r in sort_and_filter(rows, "name", tier="none")] == ["b"]
    assert [r.customer for r in sort_and_filter(rows, "name", attention=True)] == ["b"]
    assert [r.customer for r in sort_and_filter(rows, "name", q="C")] == ["c"]
    with pytest.raises(BadInput, match="sort"):
        sort_and_filter(rows, "nonsense")


def test_a_tier_override_needs_a_reason_and_the_account_and_is_audited(ws_world):
    gw = ws_world.gw
    mgr_a = Actor("mgr-a", "account_manager", None, frozenset({"acme", "gamma"}), "127.0.0.1")
    with gw.db() as s:
        accounts = Accounts(s, _audit(ws_world))
        with pytest.raises(Forbidden):
            accounts.override_tier(Actor("eng", "engineer", None, None), "acme", "A", "why not")
        with pytest.raises(NotFound):
            accounts.override_tier(mgr_a, "beta", "A", "not mine")
        with pytest.raises(BadInput, match="reason"):
            accounts.override_tier(mgr_a, "acme", "A", "   ")
        with pytest.raises(BadInput, match="tier"):
            accounts.override_tier(mgr_a, "acme", "Z", "no such tier")
        tier = accounts.override_tier(mgr_a, "acme", "A", "strategic account")
        assert (tier.override, tier.override_reason) == ("A", "strategic account")
        cleared = accounts.override_tier(mgr_a, "acme", None, "back to the numbers")
        assert cleared.override is None
        history = accounts.tier_changes("acme")
    assert [(h.old, h.new) for h in history][-2:] == [("C", "A"), ("A", "C")]
    assert history[-2].why == ("acct_reason_override", {"reason": "strategic account"})
    with gw.db() as s:
        audited = [(e.actor, e.detail) for e in s.scalars(select(AuditEvent).where(
            AuditEvent.action == "tier.override", AuditEvent.target == "customer:acme"))]
        assert audited == [("mgr-a", "A: strategic account"), ("mgr-a", "cleared: back to the numbers")]
        assert s.scalar(select(TierChange).where(TierChange.reason == "override: strategic account")) is not None
