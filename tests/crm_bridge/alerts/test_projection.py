"""The running window's demand projection over real readings in the embedded store, and its once-per-window alert.

Readings go into a real SQLite time-series store as the pipeline writes them (a register every 10 s and the power
beside it); the gateway's own adapter (`gateway.jobs.StoreReadings`) reads them back for the projection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from collectors.reading import ACTIVE_ENERGY_IMPORT_KWH, ACTIVE_POWER_KW, Quality, Reading
from crm_bridge.alerts import list_alerts, resolve
from crm_bridge.alerts.own_rules import replace_rules
from crm_bridge.alerts.projection import ProjectionSettings, evaluate_demand_projection, project_demand
from crm_bridge.registry import make_engine, migrate
from crm_bridge.registry.models import AlertText, Contract, Customer, Meter, Site
from crm_bridge.registry.repo import assign_meter
from gateway.jobs import StoreReadings
from gateway.portal import i18n
from gateway.store.sqlite import SqliteStore

TZ = ZoneInfo("Europe/Berlin")
W0 = datetime(2026, 3, 10, 10, 0, tzinfo=TZ)  # a window on the customer's clock: 10:00-10:15
# C = 2000 kW (above its floor of 0.4 x 3200 kVA): billed limit 1.05 x 2000 = 2100 kW, warning at 0.9 x 2100 = 1890
WARNING_KW = 1890.0
STEP_S = 10


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "timeseries.db")
    yield s
    s.close()


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    migrate(db_url)
    engine = make_engine(db_url)
    with Session(engine) as s:
        c = Customer(code="C1", name="Plant", timezone="Europe/Berlin")
        c.contract = Contract(transformer_kva=3200, contract_demand_kw=2000, basic_charge_mode="contract",
                              pf_standard=0.9, bill_threshold=None, tariff_id="T")
        site, meter = Site(customer=c, code="s"), Meter(code="M1")
        s.add_all([c, site, meter])
        s.flush()
        assign_meter(s, meter, site, date(2026, 1, 1))
        s.commit()
        yield s
    engine.dispose()


def _ns(t: datetime) -> int:
    return int(t.timestamp()) * 10**9


def write_load(store: SqliteStore, start: datetime, end: datetime, kw: Callable[[datetime], float], *,
               power: bool = True, kwh0: float = 50_000.0) -> None:
    """A meter's register every STEP_S seconds from `start` to `end` (inclusive), integrating `kw`, and its power."""
    readings, kwh, t = [], kwh0, start
    while t <= end:
        readings.append(Reading("dev1", ACTIVE_ENERGY_IMPORT_KWH, kwh, "kWh", Quality.GOOD, _ns(t), _ns(t),
                                "C1", "s", "M1"))
        if power:
            readings.append(Reading("dev1", ACTIVE_POWER_KW, kw(t), "kW", Quality.GOOD, _ns(t), _ns(t), "C1", "s",
                                    "M1"))
        kwh += kw(t) * STEP_S / 3600
        t += timedelta(seconds=STEP_S)
    store.write(readings)


def source(store: SqliteStore) -> StoreReadings:
    return StoreReadings(store, {"M1": "dev1"})


def step(before: float, after: float, at: datetime) -> Callable[[datetime], float]:
    return lambda t: before if t < at else after


def test_the_projection_is_energy_so_far_plus_the_rate_to_the_end_of_the_window(store: SqliteStore) -> None:
    # 1000 kW for 7 minutes, then 3000 kW: the window ends at (1000 x 7 + 3000 x 8) / 60 = 516.7 kWh = 2066.7 kW
    load = step(1000, 3000, W0 + timedelta(minutes=7))
    write_load(store, W0 - timedelta(minutes=2), W0 + timedelta(minutes=8), load)
    p = project_demand(source(store), ["M1"], TZ, W0 + timedelta(minutes=8))
    assert (p.window_start, p.window_end) == (W0, W0 + timedelta(minutes=15))
    assert p.complete
    assert p.kwh_so_far == pytest.approx((1000 * 7 + 3000 * 1) / 60)
    assert p.rate_kw == 3000
    assert p.meters[0].rate_from == "power"
    assert p.projected_kw == pytest.approx((1000 * 7 + 3000 * 8) / 60 * 4)


def test_a_window_heading_over_the_limit_opens_exactly_one_alert_before_it_ends(
        store: SqliteStore, session: Session) -> None:
    load = step(1000, 3000, W0 + timedelta(minutes=7))
    write_load(store, W0 - timedelta(minutes=2), W0 + timedelta(minutes=14), load)
    src = source(store)
    [before] = evaluate_demand_projection(session, src, W0 + timedelta(minutes=5))
    assert before.projection.projected_kw == pytest.approx(1000)
    assert (before.alert_id, list_alerts(session)) == (None, [])
    [crossing] = evaluate_demand_projection(session, src, W0 + timedelta(minutes=8))
    assert crossing.projection.projected_kw > WARNING_KW
    assert crossing.alert_id is not None
    [alert] = list_alerts(session)
    assert alert.type == "demand_projected"
    assert alert.severity == "warning", "2066.7 kW is under the billed 2100 kW: a warning, not yet critical"
    assert (alert.window_start, alert.window_end) == (W0, W0 + timedelta(minutes=15))
    assert alert.opened_at < alert.window_end, "the warning comes while load can still be shed"
    for minutes in (9, 11, 14):  # the same window: no second alert, not even after the first is resolved
        if minutes == 11:
            resolve(session, alert.id, W0 + timedelta(minutes=10))
            session.commit()
        [later] = evaluate_demand_projection(session, src, W0 + timedelta(minutes=minutes))
        assert later.alert_id is None
    assert len(list_alerts(session)) == 1
    text = session.get(AlertText, alert.id)
    assert text.key == "alert_demand_projected"
    assert text.params["limit"] == pytest.approx(WARNING_KW)
    assert text.params["value"] == pytest.approx(crossing.projection.projected_kw)
    assert text.params["at"] == (W0 + timedelta(minutes=15)).isoformat()
    for lang, word in (("zh", "千瓦"), ("en", "kW")):
        shown = i18n.alert_message(text.key, text.params, alert.message, "Europe/Berlin", lang)
        assert word in shown
        assert "{" not in shown
        assert "10:15" in shown, "names the window's end on the customer's clock"


def test_the_next_window_may_warn_again(store: SqliteStore, session: Session) -> None:
    write_load(store, W0 - timedelta(minutes=1), W0 + timedelta(minutes=22), lambda t: 2500.0)
    src = source(store)
    assert evaluate_demand_projection(session, src, W0 + timedelta(minutes=3))[0].alert_id is not None
    [a] = list_alerts(session)
    assert a.severity == "critical", "2500 kW is over the billed 2100 kW"
    assert evaluate_demand_projection(session, src, W0 + timedelta(minutes=21))[0].alert_id is not None
    assert [x.window_start for x in list_alerts(session)] == [W0 + timedelta(minutes=15), W0]


def test_a_window_heading_under_the_limit_opens_none(store: SqliteStore, session: Session) -> None:
    write_load(store, W0 - timedelta(minutes=1), W0 + timedelta(minutes=14), lambda t: 1800.0)
    for minutes in (2, 6, 10, 14):
        [o] = evaluate_demand_projection(session, source(store), W0 + timedelta(minutes=minutes))
        assert o.projection.projected_kw == pytest.approx(1800)
        assert o.limit_kw == pytest.approx(WARNING_KW)
        assert o.alert_id is None
    assert list_alerts(session) == []


def test_the_customers_own_limit_is_watched_too(store: SqliteStore, session: Session) -> None:
    replace_rules(session, "C1", [{"site": None, "kw_demand": 1500.0}], "cust-c1", W0)
    session.commit()
    write_load(store, W0 - timedelta(minutes=1), W0 + timedelta(minutes=5), lambda t: 1800.0)
    [o] = evaluate_demand_projection(session, source(store), W0 + timedelta(minutes=5))
    assert o.limit_kw == 1500.0
    [alert] = list_alerts(session)
    assert session.get(AlertText, alert.id).key == "alert_demand_projected_own"
    assert "your own limit of 1,500 kW" in alert.message


def test_a_window_without_a_reading_at_its_start_says_so_and_is_not_filled(
        store: SqliteStore, session: Session) -> None:
    # the meter comes back 3 minutes into the window, at a load far over the limit
    write_load(store, W0 + timedelta(minutes=3), W0 + timedelta(minutes=10), lambda t: 5000.0)
    [o] = evaluate_demand_projection(session, source(store), W0 + timedelta(minutes=10))
    assert not o.projection.complete
    assert o.projection.projected_kw is None
    assert o.projection.kwh_so_far is None
    assert o.projection.problems == ["M1: no energy register reading within 60 s of the window start 10:00"]
    assert o.alert_id is None
    assert list_alerts(session) == []


def test_readings_that_stopped_give_no_projection(store: SqliteStore) -> None:
    write_load(store, W0 - timedelta(minutes=1), W0 + timedelta(minutes=2), lambda t: 5000.0)
    p = project_demand(source(store), ["M1"], TZ, W0 + timedelta(minutes=8))
    assert p.projected_kw is None
    assert p.problems == ["M1: no energy register reading in the last 120 s"]
    strict = ProjectionSettings(max_age_s=60, rate_span_s=120)
    late = project_demand(source(store), ["M1"], TZ, W0 + timedelta(minutes=3, seconds=30), strict)
    assert late.problems == ["M1: the newest energy register reading is 90 s old"], "older than 60 s"
    assert late.projected_kw is None
    assert project_demand(source(store), [], TZ, W0 + timedelta(minutes=8)).problems == ["no meters"]


def test_without_power_readings_the_rate_is_the_registers_slope(store: SqliteStore) -> None:
    write_load(store, W0 - timedelta(minutes=1), W0 + timedelta(minutes=6), step(1000, 2000, W0 + timedelta(
        minutes=4)), power=False)
    p = project_demand(source(store), ["M1"], TZ, W0 + timedelta(minutes=6))
    assert p.meters[0].rate_from == "slope"
    assert p.rate_kw == pytest.approx(2000)
    assert p.projected_kw == pytest.approx((1000 * 4 + 2000 * 11) / 60 * 4)


def test_the_window_start_between_two_readings_is_on_the_line_between_them(store: SqliteStore) -> None:
    """Readings at :55 and :05 around 10:00: the register there is interpolated, not taken from either reading."""
    write_load(store, W0 - timedelta(seconds=55), W0 + timedelta(minutes=3, seconds=5), lambda t: 3600.0)
    p = project_demand(source(store), ["M1"], TZ, W0 + timedelta(minutes=3, seconds=5))
    assert p.kwh_so_far == pytest.approx(3600 * 185 / 3600)  # 1 kWh a second for the 185 s since 10:00
    assert p.projected_kw == pytest.approx(3600)


def test_a_warning_waits_for_the_first_minute_of_the_window(store: SqliteStore, session: Session) -> None:
    write_load(store, W0 - timedelta(minutes=1), W0 + timedelta(seconds=30), lambda t: 5000.0)
    settings = ProjectionSettings(min_elapsed_s=60)
    [o] = evaluate_demand_projection(session, source(store), W0 + timedelta(seconds=30), settings)
    assert o.projection.projected_kw == pytest.approx(5000)
    assert o.alert_id is None
    assert list_alerts(session) == []


def test_the_projection_runs_on_the_customers_clock() -> None:
    from crm_bridge.alerts.projection import demand_window

    now = datetime(2026, 3, 10, 4, 20, 30, tzinfo=UTC)
    start, end = demand_window(now, "Asia/Kathmandu")  # UTC+05:45
    assert (start.strftime("%H:%M"), end.strftime("%H:%M")) == ("10:00", "10:15")
    with pytest.raises(ValueError, match="aware"):
        demand_window(datetime(2026, 3, 10, 10, 0), "UTC")  # noqa: DTZ001 - the naive time is the point


def test_an_alert_is_closed_by_the_next_run_after_its_window_ends_saying_so(
        store: SqliteStore, session: Session) -> None:
    write_load(store, W0 - timedelta(minutes=1), W0 + timedelta(minutes=17), lambda t: 2500.0)
    src = source(store)
    first = evaluate_demand_projection(session, src, W0 + timedelta(minutes=3))[0].alert_id
    evaluate_demand_projection(session, src, W0 + timedelta(minutes=14, seconds=59))
    [still] = list_alerts(session, status="open")
    assert still.id == first, "in its window: stays open"
    second = evaluate_demand_projection(session, src, W0 + timedelta(minutes=16))[0].alert_id
    assert second is not None
    assert second != first
    assert [a.id for a in list_alerts(session, status="open")] == [second], "the next window's alert stays open"
    [closed] = list_alerts(session, status="resolved")
    assert closed.id == first
    assert closed.resolved_at == W0 + timedelta(minutes=16)
    assert closed.open_key is None
    assert closed.message.endswith("(closed automatically: its window has ended)")
    text = session.get(AlertText, first)
    assert text.key == "alert_demand_projected_ended"
    shown = {lang: i18n.alert_message(text.key, text.params, closed.message, "Europe/Berlin", lang)
             for lang in ("en", "zh")}
    assert "Closed automatically: the window has ended." in shown["en"]
    assert "告警已自动关闭" in shown["zh"]
    assert all("10:15" in s and "{" not in s for s in shown.values())
