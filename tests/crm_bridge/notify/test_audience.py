"""Who hears what: managers always, preferences and role defaults, quiet hours, digest, escalation, deadlines.

In both languages; events raised by the alert engine and the service desk, each published once.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from crm_bridge.alerts.engine import acknowledge, resolve
from crm_bridge.desk.workflow import create_ticket, transition
from crm_bridge.notify.config import NotifyConfig
from crm_bridge.notify.events import PUBLISHER, Event, EventKind, alert_event, publish
from crm_bridge.notify.texts import missing_translations, render, text, values
from crm_bridge.registry.models import NotificationEvent
from tests.crm_bridge.notify.receivers import free_port, smtp_server
from tests.crm_bridge.notify.world import START, World

MAIL = {"mail": {"type": "email", "host": "127.0.0.1", "port": 9, "security": "none",
                 "sender": "alerts@utility.example"}}
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(f"sqlite:///{tmp_path / 'registry.db'}")
    yield w
    w.close()


def _who(world: World, **where: Any) -> list[tuple[str, str]]:
    return sorted((r.recipient, r.event.kind) for r in world.records(**where))


def test_managers_always_customers_by_default_others_only_when_they_ask(world: World) -> None:
    world.notifier({"channels": MAIL})
    for u in ("mgr1", "acme", "acme-en", "beta", "eng", "lead"):
        world.prefs(u, email=f"{u}@x.example")
    world.alert("C1")
    # mgr1 manages C1; lead manages another account; beta is another customer; eng has asked for nothing.
    assert _who(world) == [("acme", "alert.opened"), ("acme-en", "alert.opened"), ("mgr1", "alert.opened")]
    world.alert("C2")
    # C2's manager has no login: the registry's address.
    c2 = [(r.recipient, r.address) for r in world.records() if r.event.customer_code == "C2"]
    assert sorted(c2) == [("beta", "beta@x.example"), ("manager:M2", "li@utility.example")]


def test_preferences_choose_events_and_channels_and_the_manager_cannot_opt_out(world: World) -> None:
    world.notifier({"channels": {**MAIL, "ops": {"type": "wecom", "url": "http://127.0.0.1:9/", "key_env": "K"}}})
    world.prefs("acme", email="a@x.example", events=["alert.resolved"])  # not opened
    world.prefs("eng", email="e@x.example", events=["alert.opened"], channels=["ops"])
    world.prefs("mgr1", email="m@x.example", events=[])
    alert_id = world.alert("C1")
    assert sorted((r.recipient, r.channel) for r in world.records()) == [
        ("acme-en", "mail"), ("channel:ops", "ops"), ("mgr1", "mail")]
    with world.db() as s:
        resolve(s, alert_id, world.now)
        s.commit()
    resolved = sorted(r.recipient for r in world.records() if r.event.kind == "alert.resolved")
    assert resolved == ["acme", "acme-en", "mgr1"]


def test_customers_never_hear_internal_events(world: World) -> None:
    n = world.notifier({"channels": MAIL, "escalation": {"alert_ack_min": {"critical": 15}}})
    world.prefs("acme", email="a@x.example", events=["alert.escalated", "alert.opened"])
    world.alert("C1")
    world.now += timedelta(minutes=16)
    assert n.escalate(world.db())
    escalated = [r.recipient for r in world.records() if r.event.kind == "alert.escalated"]
    assert "acme" not in escalated


def test_an_engineer_hears_of_alerts_but_never_of_tickets(world: World) -> None:
    world.notifier({"channels": MAIL})
    world.prefs("eng", email="e@x.example", events=["alert.opened", "ticket.opened", "report.ready"])
    world.alert("C2")
    with world.db() as s:
        create_ticket(s, "C2", "request", "billing", "Question", world.now)
        s.commit()
    assert [r.event.kind for r in world.records(recipient="eng")] == ["alert.opened"]


def test_quiet_hours_hold_a_warning_until_morning_but_not_a_critical_alert(world: World) -> None:
    n = world.notifier({"channels": MAIL})
    world.prefs("acme", email="a@x.example", quiet_start="22:00", quiet_end="07:00")
    world.prefs("acme-en", email="b@x.example")
    world.now = datetime(2026, 12, 2, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai
    world.alert("C1", severity="warning", type="pf_low")
    world.alert("C1", severity="critical", type="demand_watch")
    acme = {r.event.severity: r for r in world.records(recipient="acme")}
    assert acme["warning"].status == "held"
    assert acme["warning"].next_attempt_at == datetime(2026, 12, 2, 23, 0, tzinfo=UTC)  # 07:00 Shanghai
    assert acme["critical"].status == "queued"
    assert world.records(recipient="acme-en")[0].status == "queued"  # no quiet hours of its own
    n.deliver_due(world.db)  # (port 9 refuses: the queued ones fail an attempt; the held one is not tried)
    held = world.records(recipient="acme", status="held")
    assert [(r.event.severity, r.attempts) for r in held] == [("warning", 0)]
    world.now = datetime(2026, 12, 2, 23, 0, tzinfo=UTC)
    n.deliver_due(world.db)
    assert world.records(recipient="acme", status="held") == []


def test_the_daily_digest_folds_a_days_messages_into_one_email(world: World, tmp_path: Path) -> None:
    port = free_port()
    with smtp_server(tmp_path, "starttls", port) as (box, cert):
        n = world.notifier({"channels": {"mail": {
            "type": "email", "host": "127.0.0.1", "port": port, "security": "starttls", "username": "gateway",
            "password_env": "PW", "sender": "a@utility.example", "ca_file": str(cert)}},
            "digest_time": "08:00"}, {"PW": "relay-pass-123"})
        world.prefs("acme-en", email="boss@acme.example", digest=True)
        world.prefs("acme", email="ops@acme.example", events=[])
        world.prefs("mgr1", email="wang@utility.example", events=[])
        world.alert("C1", severity="warning", type="pf_low")
        world.now += timedelta(hours=2)
        world.alert("C1", severity="warning", type="base_load")
        world.alert("C1", severity="critical", type="demand_watch")  # critical: at once, not in the digest
        waiting = world.records(recipient="acme-en", status="digest")
        assert len(waiting) == 2
        assert {r.next_attempt_at for r in waiting} == {datetime(2026, 12, 3, 0, 0, tzinfo=UTC)}  # 08:00 Shanghai
        assert n.send_digests(world.db()) == 0
        n.deliver_due(world.db)
        assert [m["Subject"] for r, m in box.messages if r == ["boss@acme.example"]] == [
            "[Critical] Acme Steel (C1): alert demand_watch"]
        world.now = datetime(2026, 12, 3, 0, 0, tzinfo=UTC)
        assert n.send_digests(world.db()) == 1
        assert n.send_digests(world.db()) == 0
        n.deliver_due(world.db)
        digest = [m for r, m in box.messages if r == ["boss@acme.example"]][-1]
    assert digest["Subject"] == "Daily summary of your notifications (2)"
    body = digest.get_content()
    assert "2 Dec 2026 10:00: [Warning] Acme Steel (C1): alert pf_low" in body
    assert "2 Dec 2026 12:00: [Warning] Acme Steel (C1): alert base_load" in body
    assert {r.status for r in world.records(recipient="acme-en", status="digested")} == {"digested"}


def test_an_unacknowledged_alert_escalates_once_to_the_second_person(world: World) -> None:
    n = world.notifier({"channels": MAIL, "escalation": {"alert_ack_min": {"critical": 15},
                                                         "by_manager": {"M1": ["lead"]}}})
    world.prefs("lead", email="zhao@x.example")
    world.prefs("mgr1", email="wang@x.example")
    first = world.alert("C1")
    second = world.alert("C1", type="other")
    with world.db() as s:
        acknowledge(s, second, world.now)
        s.commit()
    world.now += timedelta(minutes=14)
    assert n.escalate(world.db()) == []
    world.now += timedelta(minutes=2)
    assert n.escalate(world.db()) == [f"alert:{first}:alert.escalated"]
    assert n.escalate(world.db()) == []
    escalated = {r.recipient: r for r in world.records() if r.event.kind == "alert.escalated"}
    assert sorted(escalated) == ["lead", "mgr1"]
    assert escalated["lead"].subject == "[Escalated] Acme Steel (C1): alert demand_watch not acknowledged for 15 min"
    assert escalated["mgr1"].subject == "【升级】Acme Steel (C1)：demand_watch 告警 15 分钟未确认"


def test_a_request_escalates_past_its_ack_target_and_warns_before_and_after_its_deadline(world: World) -> None:
    n = world.notifier({"channels": MAIL, "escalation": {"to": ["lead"]}, "due_soon_fraction": 0.8})
    world.prefs("lead", email="zhao@x.example")
    world.prefs("mgr1", email="wang@x.example")
    with world.db() as s:
        ticket = create_ticket(s, "C1", "complaint", "billing", "Bill too high", world.now)  # tier C: 240 / 2880
        s.commit()
        tid = ticket.id
    assert [(r.recipient, r.event.kind) for r in world.records()] == [("mgr1", "ticket.opened")]
    assert "应确认时间：2026年12月2日 14:00" in world.records()[0].body
    world.now += timedelta(minutes=241)
    assert n.escalate(world.db()) == [f"ticket:{tid}:ticket.escalated"]
    with world.db() as s:
        transition(s, tid, "acknowledged", world.now)
        s.commit()
    world.now = START + timedelta(minutes=2880 * 0.8)
    assert n.deadlines(world.db()) == [f"ticket:{tid}:ticket.due_soon"]
    assert n.deadlines(world.db()) == []
    world.now = START + timedelta(minutes=2880)
    assert n.deadlines(world.db()) == [f"ticket:{tid}:ticket.overdue"]
    kinds = sorted((r.recipient, r.event.kind) for r in world.records()[1:])
    assert kinds == [("lead", "ticket.escalated"), ("mgr1", "ticket.due_soon"), ("mgr1", "ticket.escalated"),
                     ("mgr1", "ticket.overdue")]
    overdue = world.records()[-1]
    assert overdue.subject == "【已超期】Acme Steel (C1) 的投诉 1 已于 2026年12月4日 10:00 到期"


def test_an_event_is_published_once_and_a_failing_publisher_never_stops_an_alert(world: World) -> None:
    world.notifier({"channels": MAIL})
    world.prefs("mgr1", email="wang@x.example")
    alert_id = world.alert("C1")
    with world.db() as s:
        alert = world.alert_row(alert_id)
        publish(s, alert_event(EventKind.ALERT_OPENED, alert, world.now))  # again, e.g. after a restart
        s.commit()
        assert len(list(s.scalars(select(NotificationEvent)))) == 1
    assert len(world.records(recipient="mgr1")) == 1

    def broken(session: Any, event: Event) -> None:
        raise RuntimeError("notifier down")

    world.db.configure(info={PUBLISHER: broken})
    assert world.alert("C1", type="still_raised")  # the alert is opened and committed all the same


def test_without_a_notifier_nothing_is_queued(world: World) -> None:
    world.alert("C1")
    assert world.records() == []


def test_every_text_exists_in_both_languages_and_renders_every_event() -> None:
    assert missing_translations() == []
    data = {"alert_id": 1, "ticket_id": 2, "type": "demand_watch", "severity": "warning", "message": "m",
            "meter": "m1", "window_start": "2026-12-02T02:00:00+00:00", "window_end": "2026-12-02T02:15:00+00:00",
            "opened_at": "2026-12-02T02:00:00+00:00", "created_at": "2026-12-02T02:00:00+00:00",
            "due": "2026-12-03T02:00:00+00:00", "kind": "request", "title": "t", "category": "c", "status": "new",
            "minutes": 30, "period": "2026-11", "attachment": "r.pdf", "amount": 10.0}
    for kind in EventKind:
        if kind is EventKind.DIGEST:
            continue
        for lang in ("zh", "en"):
            vals = values(kind, data, "Acme (C1)", lang, "Asia/Shanghai")
            for part in ("subject", "body"):
                # str.format, unlike the renderer, fails on a placeholder the event's data does not fill.
                assert "{" not in text(kind.value, part, lang).format(**vals), (kind, lang, part)
    zh = render(EventKind.TICKET_OPENED, data, "Acme (C1)", "zh", "Asia/Shanghai")
    en = render(EventKind.TICKET_OPENED, data, "Acme (C1)", "en", "Europe/Berlin")
    assert zh.subject == "Acme (C1) 新服务请求 2：t"
    assert "2026年12月3日 10:00" in zh.body
    assert en.subject == "New request no. 2 from Acme (C1): t"
    assert "3 Dec 2026 03:00" in en.body


@pytest.mark.parametrize(("raw", "message"), [
    ({"channels": {"m": {"type": "email", "host": "h", "sender": "a@b.example", "password_env": "P"}}},
     "username and password_env go together"),
    ({"channels": {"m": {"type": "email", "host": "h", "sender": "a@b.example", "security": "none",
                         "username": "u", "password_env": "P"}}}, "password in clear"),
    ({"channels": {"m": {"type": "email", "host": "h", "sender": "nobody"}}}, "not an e-mail address"),
    ({"channels": {"w": {"type": "webhook", "url": "ftp://x", "secret_env": "S"}}}, "not an http"),
    ({"channels": {"w": {"type": "webhook", "url": "http://x", "secret_env": "S", "events": ["alert.openned"]}}},
     "alert.openned"),
    ({"channels": {"d": {"type": "dingtalk", "access_token_env": "T", "sigh": 1}}}, "sigh"),
    ({"channels": {"d": {"type": "slack"}}}, "slack"),
    ({"roles": {"customer": {"channels": ["sms"]}}}, "roles.customer.channels: unknown channel 'sms'"),
    ({"roles": {"customer": {"events": ["ticket.overdue"]}}}, "'ticket.overdue' is not for the customer role"),
    ({"roles": {"engineer": {"events": ["report.ready"]}}}, "'report.ready' is not for the engineer role"),
    ({"roles": {"engineer": {"quiet_hours": "22-7"}}}, "not HH:MM-HH:MM"),
    ({"escalation": {"alert_ack_min": {"critical": 0}}}, "positive"),
    ({"timezone": "Mars/Olympus"}, "unknown time zone"),
])
def test_config_errors_name_the_key(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        NotifyConfig.model_validate(raw)


def test_config_defaults_by_role_and_secrets() -> None:
    cfg = NotifyConfig.model_validate({
        "channels": {"mail": {"type": "email", "host": "smtp.example", "sender": "a@b.example", "username": "u",
                              "password_env": "SMTP_PW"},
                     "ding": {"type": "dingtalk", "access_token_env": "DT", "secret_env": "DS"}},
        "roles": {"customer": {"quiet_hours": "22:00-07:00"}}})
    assert cfg.role_defaults("customer").events == [EventKind.ALERT_OPENED, EventKind.ALERT_RESOLVED,
                                                    EventKind.THRESHOLD_CROSSED, EventKind.REPORT_READY]
    assert cfg.role_defaults("customer").quiet_hours == "22:00-07:00"
    assert cfg.channels["mail"].effective_port == 587  # type: ignore[union-attr]
    assert cfg.secret_envs() == [("notify.channels.mail.password_env", "SMTP_PW"),
                                 ("notify.channels.ding.secret_env", "DS"),
                                 ("notify.channels.ding.access_token_env", "DT")]


def test_a_customer_threshold_crossing_is_its_own_event(world: World) -> None:
    world.notifier({"channels": {"crm": {"type": "webhook", "url": "http://127.0.0.1:9/", "secret_env": "S",
                                         "events": ["threshold.crossed"]}}})
    world.alert("C1", severity="warning", type="threshold_kw")
    world.alert("C1", severity="warning", type="pf_low")
    assert [(r.recipient, r.event.kind) for r in world.records()] == [("channel:crm", "threshold.crossed")]
