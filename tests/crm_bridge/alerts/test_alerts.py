"""Alert rules, de-duplication (DB-level), once-per-period bill alert and delivery window, lifecycle.

The interval source is an in-memory implementation of the `IntervalSource` port (the gateway's query layer over
InfluxDB is another engineer's; this one builds the same complete 15-min frames from a function of time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_bridge.alerts import AlertError, AlertSettings, acknowledge, evaluate_alerts, list_alerts, open_ticket, resolve
from crm_bridge.alerts.rules import demand_watch
from crm_bridge.registry import make_engine, migrate
from crm_bridge.registry.models import Alert, Contract, Customer, Meter, Site, TariffVersion, TierRecord
from crm_bridge.registry.repo import assign_meter

TZ = ZoneInfo("Europe/Berlin")
ALWAYS_SEEN = datetime(2030, 1, 1, tzinfo=UTC)  # meters look online unless a test says otherwise


class FnSource:
    """IntervalSource whose kW at each interval is `kw(t)`; NaN marks a missing interval."""

    def __init__(self, kw: Callable[[pd.DatetimeIndex], np.ndarray], pf: float = 0.95,
                 last_seen: datetime | None = ALWAYS_SEEN) -> None:
        self.kw, self.pf, self.last_seen = kw, pf, last_seen

    def _frame(self, start: datetime, end: datetime) -> pd.DataFrame:
        idx = pd.date_range(start, end, freq="15min", inclusive="left", tz=TZ)
        kw = np.asarray(self.kw(idx), dtype=float)
        kwh = kw / 4
        kvarh = kwh * np.tan(np.arccos(self.pf))
        return pd.DataFrame(
            {"kwh": kwh, "kvarh": kvarh, "kw": kw, "pf": np.where(np.isnan(kw), np.nan, self.pf),
             "missing": np.isnan(kw)}, index=idx,
        )

    def meter_intervals(self, meter: str, start: datetime, end: datetime) -> pd.DataFrame:
        return self._frame(start, end)

    def customer_intervals(self, customer: str, start: datetime, end: datetime) -> pd.DataFrame:
        return self._frame(start, end)

    def meter_last_seen(self, meter: str) -> datetime | None:
        return self.last_seen


def flat(v: float) -> Callable[[pd.DatetimeIndex], np.ndarray]:
    return lambda idx: np.full(len(idx), v)


def with_peak(base: float, at: datetime, peak: float) -> Callable[[pd.DatetimeIndex], np.ndarray]:
    def f(idx: pd.DatetimeIndex) -> np.ndarray:
        out = np.full(len(idx), base)
        out[idx == pd.Timestamp(at)] = peak
        return out
    return f


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    migrate(db_url)
    engine = make_engine(db_url)
    with Session(engine) as s:
        c = Customer(code="C1", name="Plant", timezone="Europe/Berlin")
        c.contract = Contract(transformer_kva=3200, contract_demand_kw=2000, basic_charge_mode="demand",
                              pf_standard=0.9, bill_threshold=None, tariff_id="T")
        site, meter = Site(customer=c, code="s"), Meter(code="M1")
        s.add_all([c, site, meter, TariffVersion(tariff_id="T", valid_from=date(2026, 1, 1),
                                                 document={"average_price_per_kwh": 0.1})])
        s.flush()
        assign_meter(s, meter, site, date(2026, 1, 1))
        s.commit()
        yield s
    engine.dispose()


NOW = datetime(2026, 3, 10, 10, 7, tzinfo=TZ)  # inside the default 08:00-20:00 delivery window
PEAK_AT = datetime(2026, 3, 4, 14, 30, tzinfo=TZ)


def test_demand_90_percent_names_window_and_is_not_duplicated(session: Session) -> None:
    src = FnSource(with_peak(1000, PEAK_AT, 0.95 * 1.05 * 2000))
    opened = evaluate_alerts(session, src, NOW)
    alerts = list_alerts(session, "C1")
    assert [a.type for a in alerts] == ["demand_90"]
    assert opened == [alerts[0].id]
    assert "2026-03-04 14:30" in alerts[0].message
    assert alerts[0].window_start == PEAK_AT
    assert evaluate_alerts(session, src, NOW + timedelta(minutes=15)) == []
    assert len(list_alerts(session)) == 1
    # acknowledged is still open for de-duplication
    acknowledge(session, alerts[0].id, NOW)
    assert evaluate_alerts(session, src, NOW + timedelta(minutes=30)) == []


def test_demand_100_percent_is_critical(session: Session) -> None:
    evaluate_alerts(session, FnSource(with_peak(1000, PEAK_AT, 1.01 * 1.05 * 2000)), NOW)
    [a] = list_alerts(session)
    assert (a.type, a.severity) == ("demand_100", "critical")


def test_open_condition_unique_in_database(session: Session) -> None:
    evaluate_alerts(session, FnSource(with_peak(1000, PEAK_AT, 2100)), NOW)
    [a] = list_alerts(session)
    session.add(Alert(type="x", severity="info", customer_code="C1", window_start=NOW, window_end=NOW, message="dup",
                      open_key=a.open_key, opened_at=NOW))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_resolved_condition_can_alert_again(session: Session) -> None:
    src = FnSource(with_peak(1000, PEAK_AT, 2100))
    evaluate_alerts(session, src, NOW)
    [a] = list_alerts(session)
    resolve(session, a.id, NOW)
    session.commit()
    assert len(evaluate_alerts(session, src, NOW + timedelta(hours=1))) == 1
    assert [x.status for x in list_alerts(session)] == ["open", "resolved"]


def test_pf_below_standard(session: Session) -> None:
    evaluate_alerts(session, FnSource(flat(1000), pf=0.85), NOW)
    assert [a.type for a in list_alerts(session)] == ["pf_low"]


def test_kw_threshold_from_settings(session: Session) -> None:
    evaluate_alerts(session, FnSource(flat(1000)), NOW, AlertSettings(kw_thresholds={"C1": 900}))
    assert [a.type for a in list_alerts(session)] == ["threshold_kw"]


def test_data_gap_names_meter(session: Session) -> None:
    gap_from = datetime(2026, 3, 10, 9, 0, tzinfo=TZ)
    src = FnSource(lambda idx: np.where(idx >= pd.Timestamp(gap_from), np.nan, 1000.0))
    evaluate_alerts(session, src, NOW)
    [a] = [x for x in list_alerts(session) if x.type == "data_gap"]
    assert a.meter_code == "M1"
    assert "since 2026-03-10 09:00" in a.message


def test_base_load_rise(session: Session) -> None:
    jump = datetime(2026, 3, 9, 0, 0, tzinfo=TZ)
    src = FnSource(lambda idx: np.where(idx >= pd.Timestamp(jump), 400.0, 300.0))
    evaluate_alerts(session, src, NOW)
    assert "base_load_rise" in [a.type for a in list_alerts(session)]


def _with_bill_threshold(session: Session) -> None:
    c = session.query(Customer).one()
    assert c.contract is not None
    c.contract.bill_threshold = 50_000.0  # 1000 kW flat: ~74,400 kWh x 0.1 = ~7,440/month... raise the load
    session.commit()


def test_bill_forecast_once_per_period_and_only_in_delivery_window(session: Session) -> None:
    _with_bill_threshold(session)
    src = FnSource(flat(1000))  # ~720 MWh/month x 0.1 = ~72,000 > 50,000
    early = datetime(2026, 3, 10, 7, 30, tzinfo=TZ)
    evaluate_alerts(session, src, early)
    assert [a for a in list_alerts(session) if a.type == "bill_forecast"] == []
    evaluate_alerts(session, src, NOW)
    [bill] = [a for a in list_alerts(session) if a.type == "bill_forecast"]
    resolve(session, bill.id, NOW)
    session.commit()
    evaluate_alerts(session, src, NOW + timedelta(days=3))  # same billing period: no second alert
    assert len([a for a in list_alerts(session) if a.type == "bill_forecast"]) == 1
    evaluate_alerts(session, src, datetime(2026, 4, 15, 12, 0, tzinfo=TZ))  # next period
    assert len([a for a in list_alerts(session) if a.type == "bill_forecast"]) == 2


def test_bill_under_threshold_no_alert(session: Session) -> None:
    _with_bill_threshold(session)
    evaluate_alerts(session, FnSource(flat(500)), NOW)
    assert [a for a in list_alerts(session) if a.type == "bill_forecast"] == []


def test_lifecycle_errors_and_ticket(session: Session) -> None:
    evaluate_alerts(session, FnSource(with_peak(1000, PEAK_AT, 2100)), NOW)
    [a] = list_alerts(session)
    tid = open_ticket(session, a.id, NOW)
    assert open_ticket(session, a.id, NOW) == tid
    acknowledge(session, a.id, NOW)
    with pytest.raises(AlertError, match="acknowledged"):
        acknowledge(session, a.id, NOW)
    resolve(session, a.id, NOW)
    with pytest.raises(AlertError, match="already resolved"):
        resolve(session, a.id, NOW)
    with pytest.raises(AlertError, match="12345"):
        acknowledge(session, 12345, NOW)


def test_one_bad_customer_does_not_stop_others(session: Session) -> None:
    session.add(Customer(code="BAD", name="bad tz", timezone="Not/AZone"))
    session.commit()
    evaluate_alerts(session, FnSource(with_peak(1000, PEAK_AT, 2100)), NOW)
    assert [a.customer_code for a in list_alerts(session)] == ["C1"]


def test_meter_offline(session: Session) -> None:
    src = FnSource(flat(1000), last_seen=NOW - timedelta(hours=3))
    evaluate_alerts(session, src, NOW)
    [a] = [x for x in list_alerts(session) if x.type == "meter_offline"]
    assert (a.meter_code, a.severity) == ("M1", "critical")
    evaluate_alerts(session, FnSource(flat(1000), last_seen=None), NOW + timedelta(minutes=15))
    assert len([x for x in list_alerts(session) if x.type == "meter_offline"]) == 1  # still the same open alert
    fresh = FnSource(flat(1000), last_seen=NOW)
    evaluate_alerts(session, fresh, NOW)
    assert len([x for x in list_alerts(session) if x.type == "meter_offline"]) == 1


def test_key_account_drop_against_last_year(session: Session) -> None:
    c = session.query(Customer).one()
    session.add(TierRecord(customer_id=c.id, score=0.9, computed="A", updated_at=NOW))
    session.commit()
    cut = datetime(2026, 1, 1, tzinfo=TZ)
    src = FnSource(lambda idx: np.where(idx >= pd.Timestamp(cut), 500.0, 1000.0))  # halved since new year
    evaluate_alerts(session, src, NOW)
    [a] = [x for x in list_alerts(session) if x.type.startswith("consumption_")]
    assert a.type == "consumption_drop"
    assert "-50%" in a.message


def test_non_key_account_gets_no_change_alert(session: Session) -> None:
    cut = datetime(2026, 1, 1, tzinfo=TZ)
    evaluate_alerts(session, FnSource(lambda idx: np.where(idx >= pd.Timestamp(cut), 500.0, 1000.0)), NOW)
    assert [x for x in list_alerts(session) if x.type.startswith("consumption_")] == []


def test_bill_forecast_prices_by_tou_when_the_contract_names_a_shipped_tariff(session: Session) -> None:
    c = session.query(Customer).one()
    assert c.contract is not None
    c.contract.tariff_id = "sichuan-2023"  # relative prices, flat = 1: ~744 MWh/month costs ~744,000 + basic
    c.contract.bill_threshold = 700_000.0  # the registry's 0.1/kWh estimate (~74,400) would never reach it
    session.commit()
    evaluate_alerts(session, FnSource(flat(1000)), NOW)
    [bill] = [a for a in list_alerts(session) if a.type == "bill_forecast"]
    forecast = float(bill.message.split("forecast bill ")[1].split(" ")[0].replace(",", ""))
    assert 744_000 < forecast < 744_000 + 40_000  # energy + one month's basic charge on 1000 kW max demand


def _contract(session: Session, **terms: object) -> None:
    c = session.query(Customer).one()
    assert c.contract is not None
    for k, v in terms.items():
        setattr(c.contract, k, v)
    session.commit()


def test_demand_watch_uses_the_contract_raised_to_its_40_percent_floor() -> None:
    idx = pd.date_range(datetime(2026, 3, 1, tzinfo=TZ), periods=96, freq="15min")
    frame = pd.DataFrame({"kwh": np.full(96, 250.0)}, index=idx)
    frame.iloc[58, 0] = 1400 / 4  # 14:30: 1400 kW
    # 3200 kVA + 800 kW HV motors = 4000; C = 1000 is raised to 1600, limit 1.05 x 1600 = 1680 kW
    assert demand_watch(frame, "C1", "2026-03", 1000, 3200, 800) == [], "1400 / 1680 = 83 %"
    [warning] = demand_watch(frame.assign(kwh=frame["kwh"].where(frame.index != idx[58], 1600 / 4)),
                             "C1", "2026-03", 1000, 3200, 800)
    assert warning.type == "demand_90"
    assert "95% of 1.05 x contract demand (1680 kW, the contract's 1000 kW raised to its floor)" in \
        warning.message
    # without motors the floor is 0.4 x 3200 = 1280: limit 1344 kW, and 1400 kW is over it
    [critical] = demand_watch(frame, "C1", "2026-03", 1000, 3200)
    assert critical.type == "demand_100"


def test_the_alert_job_watches_the_raised_contract(session: Session) -> None:
    _contract(session, contract_demand_kw=1000.0, hv_motors_kw=800.0)
    evaluate_alerts(session, FnSource(with_peak(1000, PEAK_AT, 1400)), NOW)
    assert [a.type for a in list_alerts(session)] == [], "1400 kW is 83 % of 1.05 x 1600, not 133 % of 1.05 x 1000"
    evaluate_alerts(session, FnSource(with_peak(1000, PEAK_AT, 1600)), NOW + timedelta(minutes=15))
    assert [a.type for a in list_alerts(session)] == ["demand_90"]


@pytest.mark.parametrize(("pf", "alerts"), [(0.8951, []), (0.8949, ["pf_low"])])
def test_pf_alert_reads_the_pf_as_billed(session: Session, pf: float, alerts: list[str]) -> None:
    # 0.8951 is billed as 0.90 (rounded half up): at the standard, no surcharge, no alert
    evaluate_alerts(session, FnSource(flat(1000), pf=pf), NOW)
    assert [a.type for a in list_alerts(session)] == alerts


def test_bill_forecast_alert_prices_on_the_customers_clock(session: Session) -> None:
    from crm_bridge.services import ContractInputs, bill_forecast
    from crm_bridge.tariffs import load_tariff

    _contract(session, tariff_id="sichuan-2023", bill_threshold=1.0)
    src = FnSource(lambda idx: np.where(idx.hour < 8, 200.0, 1500.0))  # a load that follows the Berlin clock
    evaluate_alerts(session, src, NOW)
    [bill] = [a for a in list_alerts(session) if a.type == "bill_forecast"]
    row = session.query(Customer).one().contract
    month = datetime(2026, 3, 1, tzinfo=TZ)
    end = NOW.replace(minute=0)
    frame = src.customer_intervals("C1", month, end)
    berlin = bill_forecast(frame, ContractInputs.from_contract(row, timezone="Europe/Berlin"),
                           load_tariff("sichuan-2023"), NOW).total
    assert f"forecast bill {berlin:,.0f} for 2026-03" in bill.message
    shanghai = bill_forecast(frame, ContractInputs.from_contract(row), load_tariff("sichuan-2023"), NOW).total
    assert f"{shanghai:,.0f}" != f"{berlin:,.0f}", "the tariff's own clock would price the same load otherwise"


def _own(session: Session, **limits: object) -> None:
    from crm_bridge.alerts.own_rules import replace_rules

    replace_rules(session, "C1", [limits], "cust-c1", NOW)
    session.commit()


@pytest.mark.parametrize(("limits", "types"), [
    ({"kw_demand": 900.0}, ["threshold_kw"]),
    ({"kw_demand": 1100.0}, []),
    # 1000 kW from 00:00 to 10:00 is 10,000 kWh so far today
    ({"daily_kwh": 9_000.0}, ["threshold_daily_kwh"]),
    ({"daily_kwh": 11_000.0}, []),
    ({"pf_floor": 0.97}, ["threshold_pf"]),
    ({"pf_floor": 0.93}, []),
    # 9 days + 10 h at 1000 kW = 226,000 kWh x 0.1 = 22,600 so far this month
    ({"bill_to_date": 20_000.0}, ["threshold_bill"]),
    ({"bill_to_date": 25_000.0}, []),
])
def test_a_customers_own_limits_alert_when_crossed(session: Session, limits: dict[str, float],
                                                   types: list[str]) -> None:
    _own(session, site=None, **limits)
    evaluate_alerts(session, FnSource(flat(1000), pf=0.95), NOW)
    assert [a.type for a in list_alerts(session)] == types


def test_own_limit_alert_carries_its_message_key_and_is_not_repeated(session: Session) -> None:
    from crm_bridge.registry.models import AlertText

    _own(session, site="s", kw_demand=900.0)
    src = FnSource(flat(1000))
    [aid] = evaluate_alerts(session, src, NOW)
    a = session.get(Alert, aid)
    assert a.type == "threshold_kw"
    assert "900.0 kW" in a.message
    assert a.message.startswith("s:"), "names the site"
    text = session.get(AlertText, aid)
    assert text.key == "alert_threshold_kw"
    assert text.params["value"] == pytest.approx(1000.0)
    assert text.params["limit"] == 900.0
    assert evaluate_alerts(session, src, NOW + timedelta(minutes=15)) == [], "still open: no second alert"
    from crm_bridge.notify.events import EventKind, alert_event

    event = alert_event(EventKind.ALERT_OPENED, a, NOW)
    assert event.kind is EventKind.THRESHOLD_CROSSED, "the notifier tells the people the customer names"


def test_a_rule_without_limits_is_not_kept_and_replacing_drops_the_old(session: Session) -> None:
    from crm_bridge.alerts.own_rules import rules_of

    _own(session, site=None, kw_demand=900.0)
    _own(session, site="s")
    assert rules_of(session, "C1") == []
    evaluate_alerts(session, FnSource(flat(1000)), NOW)
    assert list_alerts(session) == []


def _shift_plan(shifts: int) -> pd.DataFrame:
    """A production plan of `shifts` shifts every day of February and March 2026 (forecasting's parser)."""
    from forecasting import plan_from_frame

    days = pd.date_range("2026-02-01", "2026-03-31", freq="D")
    rows = pd.DataFrame({"start": [f"{d.date()}T00:00+01:00" for d in days], "operating": ["1"] * len(days),
                         "shift": [str(shifts)] * len(days)})
    return plan_from_frame(rows, "plan.csv", "Europe/Berlin")


def test_base_load_rise_reads_the_plans_shifts_and_says_which_basis(session: Session) -> None:
    from crm_bridge.registry.models import AlertText
    from gateway.portal.i18n import alert_message

    # 1000 kW in the day shift (08-16), 300 kW outside it; yesterday (Monday 9 March) 400 kW outside it.
    yesterday = pd.Timestamp(datetime(2026, 3, 9, tzinfo=TZ))
    src = FnSource(lambda idx: np.where((idx.hour >= 8) & (idx.hour < 16), 1000.0,
                                       np.where(idx.normalize() == yesterday, 400.0, 300.0)))
    asked: list[tuple[str, str]] = []

    def plans(shifts: int) -> Callable[[str, str], pd.DataFrame]:
        def plan_of(code: str, tz: str) -> pd.DataFrame:
            asked.append((code, tz))
            return _shift_plan(shifts)
        return plan_of

    def base_load_alerts() -> list[Alert]:
        return [a for a in list_alerts(session, status="open") if a.type == "base_load_rise"]

    evaluate_alerts(session, src, NOW, plans=plans(3))
    assert asked == [("C1", "Europe/Berlin")]
    assert base_load_alerts() == [], "three shifts run through the night: no idle hours, no false alarm"
    evaluate_alerts(session, src, NOW, plans=plans(1))
    [planned] = base_load_alerts()
    text = session.get(AlertText, planned.id)
    assert (text.key, text.params["basis"]) == ("alert_base_load_rise_plan", "plan")
    assert "production plan's idle hours 400.0 kW is 33% above its 4-week median 300.0 kW" in planned.message
    assert "production plan" in alert_message(text.key, text.params, planned.message, "Europe/Berlin", "en")
    assert "生产计划" in alert_message(text.key, text.params, planned.message, "Europe/Berlin", "zh")
    resolve(session, planned.id, NOW)
    evaluate_alerts(session, src, NOW)  # no plan: the configured night hours
    [night] = base_load_alerts()
    text = session.get(AlertText, night.id)
    assert (text.key, text.params["basis"]) == ("alert_base_load_rise_night", "calendar")
    assert "night base load (00:00–05:00) 400.0 kW" in night.message
    for lang in ("en", "zh"):
        assert "00:00–05:00" in alert_message(text.key, text.params, night.message, "Europe/Berlin", lang)
