"""Delivery against real receivers on loopback: SMTP over TLS with login, signed webhook, WeCom and DingTalk.

Also: retries with backoff, dead letters and replay; one dead channel does not hold up another; a restart never
sends a message twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from crm_bridge.notify.chat import dingtalk_sign
from crm_bridge.notify.events import Attachment, notify_report
from crm_bridge.registry.models import DeadLetter, Notification
from tests.crm_bridge.notify.receivers import SMTP_PASSWORD, SMTP_USER, HttpReceiver, free_port, smtp_server
from tests.crm_bridge.notify.world import World

HOOK_SECRET = "hook-secret-for-tests"
WECOM_KEY = "wecom-robot-key-0001"
DING_TOKEN = "ding-access-token"
DING_SECRET = "SECding-signing-secret"
# aiosmtpd warns about AUTH without STARTTLS on every connection of the implicit-TLS server (which is all TLS).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
ENV = {"SMTP_PW": SMTP_PASSWORD, "HOOK_SECRET": HOOK_SECRET, "WECOM_KEY": WECOM_KEY, "DING_TOKEN": DING_TOKEN,
       "DING_SECRET": DING_SECRET}


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    w = World(db_url)
    yield w
    w.close()


def _email(port: int, security: str, cert: Path) -> dict[str, object]:
    return {"type": "email", "host": "127.0.0.1", "port": port, "security": security, "username": SMTP_USER,
            "password_env": "SMTP_PW", "sender": "alerts@utility.example", "ca_file": str(cert), "timeout_s": 10}


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_an_alert_reaches_the_manager_and_the_customer_by_email_over_tls_with_login(
        world: World, tmp_path: Path, security: str) -> None:
    _run_email_case(world, tmp_path / security, security)


def _run_email_case(world: World, folder: Path, security: str) -> None:
    folder.mkdir()
    port = free_port()
    with smtp_server(folder, security, port) as (box, cert):
        notifier = world.notifier({"channels": {"mail": _email(port, security, cert)}}, ENV)
        world.prefs("acme", email="ops@acme.example")
        world.prefs("acme-en", email="boss@acme.example")
        world.alert()
        queued = world.records(status="queued")
        # The customer's two users (their own e-mail) and the account manager (the registry's address).
        assert sorted((r.recipient, r.address) for r in queued) == [
            ("acme", "ops@acme.example"), ("acme-en", "boss@acme.example"), ("mgr1", "wang@utility.example")]
        stats = notifier.deliver_due(world.db)
        assert stats.delivered == 3
        assert box.logins == [SMTP_USER] * 3
        by_rcpt = {rcpts[0]: msg for rcpts, msg in box.messages}
        assert by_rcpt["ops@acme.example"]["Subject"] == "【严重】Acme Steel (C1)：demand_watch 告警"
        assert by_rcpt["boss@acme.example"]["Subject"] == "[Critical] Acme Steel (C1): alert demand_watch"
        zh_body = by_rcpt["wang@utility.example"].get_content()
        assert "时段：2026年12月2日 10:00–10:00 (Asia/Shanghai)" in zh_body
    done = world.records(status="delivered")
    assert len(done) == 3
    assert all(r.attempts == 1 and r.sent_at is not None and r.error is None for r in done)


def test_a_wrong_smtp_password_fails_at_once_with_the_reason_and_a_dead_letter(world: World, tmp_path: Path) -> None:
    port = free_port()
    with smtp_server(tmp_path, "starttls", port) as (box, cert):
        notifier = world.notifier({"channels": {"mail": _email(port, "starttls", cert)}}, {"SMTP_PW": "wrong"})
        world.alert()
        stats = notifier.deliver_due(world.db)
    assert stats.failed == 1
    assert box.messages == []
    [rec] = world.records(recipient="mgr1")
    assert rec.status == "failed"
    assert rec.attempts == 1
    assert "535" in (rec.error or "")
    assert f"127.0.0.1:{port}" in (rec.error or "")
    with world.db() as s:
        dl = s.get(DeadLetter, rec.dead_letter_id)
        assert dl is not None
        assert dl.url == f"smtp://127.0.0.1:{port}"
        assert dl.event == "alert.opened"


def test_an_untrusted_certificate_is_refused(world: World, tmp_path: Path) -> None:
    port = free_port()
    with smtp_server(tmp_path, "starttls", port) as (box, _cert):
        cfg = _email(port, "starttls", _cert)
        cfg.pop("ca_file")  # the system's CAs do not know the relay's self-signed certificate
        notifier = world.notifier({"channels": {"mail": cfg}}, ENV)
        world.alert()
        notifier.deliver_due(world.db)
    [rec] = world.records(recipient="mgr1")
    assert rec.status == "failed"
    assert "CERTIFICATE_VERIFY_FAILED" in (rec.error or "")
    assert box.messages == []


def test_a_report_arrives_with_its_attachment(world: World, tmp_path: Path) -> None:
    port = free_port()
    with smtp_server(tmp_path, "tls", port) as (box, cert):
        notifier = world.notifier({"channels": {"mail": _email(port, "tls", cert)}}, ENV)
        world.prefs("acme-en", email="boss@acme.example")
        pdf = b"%PDF-1.7 test report"
        with world.db() as s:
            notify_report(s, "C1", period="2026-11", attachment=Attachment("acme-2026-11.pdf", "application/pdf", pdf),
                          at=world.now, amount=1234567.5)
            notify_report(s, "C1", period="2026-11", attachment=Attachment("acme-2026-11.pdf", "application/pdf", pdf),
                          at=world.now)  # the same report again: nothing more
            s.commit()
        assert notifier.deliver_due(world.db).delivered == 2  # acme-en and the manager (acme has no address)
        msgs = {rcpts[0]: m for rcpts, m in box.messages}
    en = msgs["boss@acme.example"]
    assert en["Subject"] == "Acme Steel (C1): monthly report for 2026-11 is ready"
    [text, attached] = list(en.iter_parts())
    assert "Total: CN¥1,234,567.50." in text.get_content()
    assert attached.get_filename() == "acme-2026-11.pdf"
    assert attached.get_payload(decode=True) == pdf
    zh = msgs["wang@utility.example"]
    assert zh["Subject"] == "Acme Steel (C1)：2026-11 月度报告已生成"
    assert "合计：¥1,234,567.50。" in next(zh.iter_parts()).get_content()
    failed = world.records(status="failed")
    assert [(r.recipient, r.error) for r in failed] == [
        ("acme", "user acme has no e-mail address (set it in the notification preferences)")]


def test_signed_webhook_retries_with_backoff_until_the_receiver_recovers(world: World) -> None:
    with HttpReceiver("webhook", HOOK_SECRET, script=[(503, None), (503, None)]) as rx:
        notifier = world.notifier({
            "channels": {"crm": {"type": "webhook", "url": rx.url, "secret_env": "HOOK_SECRET",
                                 "events": ["alert.opened"]}},
            "retry": {"attempts": 4, "backoff_s": 30, "backoff_max_s": 3600}}, ENV)
        world.alert()
        assert notifier.deliver_due(world.db).retrying == 1
        [rec] = world.records()
        assert rec.attempts == 1
        assert rec.status == "queued"
        assert "HTTP 503" in (rec.error or "")
        assert rec.next_attempt_at == world.now + timedelta(seconds=30)
        assert notifier.deliver_due(world.db).delivered == 0  # not due yet: nothing sent
        assert len(rx.hits) == 1
        world.now += timedelta(seconds=30)
        notifier.deliver_due(world.db)
        [rec] = world.records()
        assert rec.attempts == 2
        assert rec.next_attempt_at == world.now + timedelta(seconds=60)
        world.now += timedelta(seconds=60)
        assert notifier.deliver_due(world.db).delivered == 1
        hits = rx.wait_for(3)
    assert all(h.signed_ok for h in hits)
    body = hits[-1].json()
    assert body["event"] == "alert.opened"
    assert body["data"]["customer"] == "C1"
    assert body["data"]["recipient"] == "channel:crm"
    assert body["data"]["data"]["severity"] == "critical"
    assert body["data"]["language"] == "zh"
    [rec] = world.records()
    assert rec.status == "delivered"
    assert rec.attempts == 3
    assert rec.error is None


def test_after_the_last_retry_a_dead_letter_that_an_admin_replays(world: World) -> None:
    with HttpReceiver("webhook", HOOK_SECRET, script=[(500, None)] * 3) as rx:
        notifier = world.notifier({
            "channels": {"crm": {"type": "webhook", "url": rx.url, "secret_env": "HOOK_SECRET",
                                 "events": ["alert.opened"]}},
            "retry": {"attempts": 3, "backoff_s": 10}}, ENV)
        world.alert()
        for _ in range(3):
            notifier.deliver_due(world.db)
            world.now += timedelta(hours=1)
        [rec] = world.records()
        assert rec.status == "failed"
        assert rec.attempts == 3
        assert "HTTP 500" in (rec.error or "")
        with world.db() as s:
            [dl] = s.scalars(select(DeadLetter))
            assert dl.id == rec.dead_letter_id
            assert dl.attempts == 3
            assert dl.url == rx.url
            again = notifier.replay(s, dl.id)
            with pytest.raises(Exception, match="already being replayed"):
                notifier.replay(s, dl.id)
            s.commit()
        assert notifier.deliver_due(world.db).delivered == 1
        assert len(rx.wait_for(4)) == 4
    replayed = world.records(id=again.id)[0]
    assert replayed.status == "delivered"
    assert replayed.replay_of == rec.dead_letter_id


def test_a_receiver_that_refuses_the_signature_is_not_retried(world: World) -> None:
    with HttpReceiver("webhook", "another-secret") as rx:
        notifier = world.notifier({"channels": {"crm": {"type": "webhook", "url": rx.url,
                                                        "secret_env": "HOOK_SECRET", "events": ["alert.opened"]}}},
                                  ENV)
        world.alert()
        notifier.deliver_due(world.db)
    [rec] = world.records()
    assert rec.status == "failed"
    assert rec.attempts == 1
    assert "HTTP 401" in (rec.error or "")


def test_wecom_robot_gets_markdown_with_its_key(world: World) -> None:
    with HttpReceiver("wecom", WECOM_KEY) as rx:
        notifier = world.notifier({"language": "en", "channels": {"ops": {
            "type": "wecom", "url": rx.url, "key_env": "WECOM_KEY", "events": ["alert.opened", "alert.resolved"]}}},
            ENV)
        alert_id = world.alert()
        notifier.deliver_due(world.db)
        [hit] = rx.wait_for(1)
    assert hit.signed_ok
    assert hit.query["key"] == [WECOM_KEY]
    body = hit.json()
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["content"].startswith("**[Critical] Acme Steel (C1): alert demand_watch**\n\n")
    assert world.records()[0].status == "delivered"
    assert alert_id


def test_wecom_refusal_is_recorded_with_its_error_code(world: World) -> None:
    with HttpReceiver("wecom", "the-real-key") as rx:
        notifier = world.notifier({"channels": {"ops": {
            "type": "wecom", "url": rx.url, "key_env": "WECOM_KEY", "msgtype": "text",
            "mentioned_mobiles": ["13800001111"], "events": ["alert.opened"]}}}, ENV)
        world.alert()
        notifier.deliver_due(world.db)
        [hit] = rx.wait_for(1)
    assert hit.json()["text"]["mentioned_mobile_list"] == ["13800001111"]
    [rec] = world.records()
    assert rec.status == "failed"
    assert "errcode 93000" in (rec.error or "")


def test_dingtalk_robot_checks_the_signature_of_each_request(world: World) -> None:
    with HttpReceiver("dingtalk", DING_SECRET, token=DING_TOKEN, script=[(200, {"errcode": 130101,
                                                                               "errmsg": "send too fast"})]) as rx:
        notifier = world.notifier({"channels": {"ding": {
            "type": "dingtalk", "url": rx.url, "access_token_env": "DING_TOKEN", "secret_env": "DING_SECRET",
            "at_mobiles": ["13900002222"], "events": ["alert.opened"]}}}, ENV)
        world.alert()
        assert notifier.deliver_due(world.db).retrying == 1  # 130101: too fast, tried again later
        world.now += timedelta(minutes=5)
        assert notifier.deliver_due(world.db).delivered == 1
        hits = rx.wait_for(2)
    assert all(h.signed_ok for h in hits)
    # The sign travels URL-encoded exactly once: its Base64 '+', '/' and '=' are escaped in the raw query.
    raw_sign = hits[1].raw_query.split("sign=")[1].split("&")[0]
    assert raw_sign == dingtalk_sign(DING_SECRET, hits[1].query["timestamp"][0])
    body = hits[1].json()
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"] == "【严重】Acme Steel (C1)：demand_watch 告警"
    assert body["markdown"]["text"].endswith(" @13900002222")
    assert body["at"] == {"atMobiles": ["13900002222"], "isAtAll": False}


def test_a_dead_channel_does_not_hold_up_another(world: World) -> None:
    dead_port = free_port()  # nothing listens here
    with HttpReceiver("wecom", WECOM_KEY) as rx:
        notifier = world.notifier({"channels": {
            "dead": {"type": "webhook", "url": f"http://127.0.0.1:{dead_port}/x", "secret_env": "HOOK_SECRET",
                     "events": ["alert.opened"]},
            "ops": {"type": "wecom", "url": rx.url, "key_env": "WECOM_KEY", "events": ["alert.opened"]}}}, ENV)
        world.alert(key="first")
        world.alert(key="second")
        stats = notifier.deliver_due(world.db)
        rx.wait_for(2)
    # The dead channel's first message took an attempt; its second waits for the next run without one.
    assert (stats.delivered, stats.retrying, stats.deferred) == (2, 1, 1)
    assert [r.status for r in world.records(channel="ops")] == ["delivered", "delivered"]
    first, second = world.records(channel="dead")
    assert (first.status, first.attempts) == ("queued", 1)
    assert "ConnectError" in (first.error or "")
    assert (second.status, second.attempts) == ("queued", 0)
    assert (second.error or "").startswith("not tried: the channel had just failed")


def test_a_missing_secret_fails_the_channel_naming_the_variable(world: World) -> None:
    notifier = world.notifier({"channels": {"crm": {"type": "webhook", "url": "http://127.0.0.1:9/x",
                                                    "secret_env": "NOT_SET_ANYWHERE", "events": ["alert.opened"]}}})
    world.alert()
    notifier.deliver_due(world.db)
    [rec] = world.records()
    assert rec.status == "failed"
    assert rec.error == "notify.channels.crm.secret_env: environment variable NOT_SET_ANYWHERE is not set"


def test_a_message_interrupted_while_sending_is_never_sent_twice(world: World) -> None:
    with HttpReceiver("webhook", HOOK_SECRET) as rx:
        notifier = world.notifier({"channels": {"crm": {"type": "webhook", "url": rx.url,
                                                        "secret_env": "HOOK_SECRET", "events": ["alert.opened"]}}},
                                  ENV)
        world.alert()
        # A run claimed it and the process died before recording the outcome.
        with world.db() as s:
            rec = s.scalars(select(Notification)).one()
            rec.status, rec.next_attempt_at = "sending", world.now
            s.commit()
        world.now += timedelta(minutes=1)
        assert notifier.deliver_due(world.db).interrupted == 0  # a claim this young may still be sending
        world.now += timedelta(minutes=15)
        stats = notifier.deliver_due(world.db)
        assert stats.interrupted == 1
        assert stats.delivered == 0
        assert rx.hits == []
    [rec] = world.records()
    assert rec.status == "failed"
    assert "interrupted" in (rec.error or "")
    assert rec.dead_letter_id is not None


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the texts do not depend on the database
def test_the_subject_names_the_alerts_rule_by_its_title_in_each_recipients_language(
        world: World, tmp_path: Path) -> None:
    from crm_bridge.notify.config import NotifyConfig
    from crm_bridge.notify.events import PUBLISHER
    from crm_bridge.notify.service import Notifier
    from gateway.portal.i18n import alert_message

    port = free_port()
    with smtp_server(tmp_path, "tls", port) as (box, cert):
        # As the gateway installs it (gateway/notifications.py): the portal's catalogue renders the alert texts.
        notifier = Notifier(NotifyConfig.model_validate({"channels": {"mail": _email(port, "tls", cert)}}), world,
                            ENV, clock=world.clock, alert_text=alert_message)
        world.db.configure(info={PUBLISHER: notifier})
        world.prefs("acme", email="ops@acme.example")
        world.prefs("acme-en", email="boss@acme.example")
        world.alert(severity="warning", type="base_load_rise")
        assert notifier.deliver_due(world.db).delivered == 3
        by_rcpt = {rcpts[0]: msg for rcpts, msg in box.messages}
    assert by_rcpt["ops@acme.example"]["Subject"] == "【警告】Acme Steel (C1)：基础负荷上升 告警"
    assert by_rcpt["boss@acme.example"]["Subject"] == "[Warning] Acme Steel (C1): alert Base load rise"
