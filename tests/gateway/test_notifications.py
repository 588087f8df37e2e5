"""Notifications in a running gateway: the `[notify]` section, the notifier on its sessions, its jobs.

An alert raised in the gateway arrives at a real SMTP server through the send job.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from crm_bridge.alerts.engine import raise_alert
from crm_bridge.notify.events import PUBLISHER
from crm_bridge.registry.models import AccountManager, Customer, ManagerAssignment, Notification, NotificationPreference
from gateway.config import ConfigError, load_config
from gateway.jobs import register_jobs
from gateway.notifications import install_notifications, notifier_of
from gateway.runtime import Gateway
from tests.crm_bridge.notify.receivers import free_port

BASE = """
[gateway]
data_dir = "state"
environment = "development"

[api]
enabled = false

[[customers]]
id = "acme"
name = "Acme Steel"
language = "en"
"""

# The README's example section (with the SMTP port of the test server filled in).
NOTIFY = """
[notify]
language = "zh"                      # for recipients without a language, and group channels
timezone = "Asia/Shanghai"           # quiet hours and digests of users without a zone of their own
digest_time = "08:00"

[notify.channels.mail]
type = "email"
host = "127.0.0.1"
port = {port}
security = "none"                    # "starttls" (587) or "tls" (465) with a relay that has a certificate
sender = "alerts@utility.example"

[notify.channels.crm]
type = "webhook"
url = "https://crm.example/hooks/energy"
secret_env = "CRM_WEBHOOK_SECRET"    # HMAC-SHA256 key, from the environment
events = ["alert.opened", "ticket.opened"]

[notify.channels.ops]
type = "dingtalk"                    # or "wecom" with key_env
access_token_env = "DINGTALK_TOKEN"
secret_env = "DINGTALK_SECRET"       # the robot's 加签 secret
events = ["alert.escalated", "ticket.overdue"]
customers = ["acme"]

[notify.retry]
attempts = 5
backoff_s = 30

[notify.roles.customer]
quiet_hours = "22:00-07:00"

[notify.escalation]
alert_ack_min = {{ critical = 15, warning = 120 }}
to = ["duty-lead"]
"""


class _Box:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message, float]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default),
                              time.perf_counter()))
        return "250 OK"


def _gateway(tmp_path: Path, text: str) -> Gateway:
    (tmp_path / "gateway.toml").write_text(text)
    return Gateway.from_config(load_config(tmp_path / "gateway.toml", environ={}, secrets=()))


def test_the_readme_example_is_a_valid_notify_section(tmp_path: Path) -> None:
    (tmp_path / "gateway.toml").write_text(BASE + NOTIFY.format(port=2525))
    cfg = load_config(tmp_path / "gateway.toml", environ={}, secrets=())
    assert sorted(cfg.notify.channels) == ["crm", "mail", "ops"]
    assert cfg.notify.role_defaults("customer").quiet_hours == "22:00-07:00"


@pytest.mark.parametrize(("section", "where"), [
    ('[notify]\nlangauge = "en"\n', "notify.langauge: unknown key"),
    ('[notify.retry]\nattempts = 0\n', "notify.retry.attempts"),
    ('[notify.roles.customer]\nchannels = ["sms"]\n', "unknown channel 'sms'"),
])
def test_a_bad_notify_section_is_refused_naming_the_key(tmp_path: Path, section: str, where: str) -> None:
    (tmp_path / "gateway.toml").write_text(BASE + section)
    with pytest.raises(ConfigError, match=where):
        load_config(tmp_path / "gateway.toml", environ={}, secrets=())


def test_without_channels_nothing_is_installed_and_no_job_is_added(tmp_path: Path) -> None:
    gw = _gateway(tmp_path, BASE)
    register_jobs(gw)
    assert notifier_of(gw.db) is None
    assert not any(j.name.startswith("notify_") for j in gw.scheduler.specs)


def test_an_alert_raised_in_the_gateway_is_mailed_by_the_send_job(tmp_path: Path) -> None:
    box = _Box()
    port = free_port()
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        gw = _gateway(tmp_path, BASE + NOTIFY.format(port=port))
        notifier = install_notifications(gw, environ={})  # no CRM or DingTalk secret in this environment
        register_jobs(gw)
        assert {"notify_send", "notify_escalate", "notify_digest"} <= {j.name for j in gw.scheduler.specs}
        assert notifier is notifier_of(gw.db)  # installed once
        at = datetime.now(UTC)
        with gw.db() as s:
            assert PUBLISHER in s.info
            acme = s.scalars(select(Customer).where(Customer.code == "acme")).one()
            m1 = AccountManager(code="M1", name="Wang", email="wang@utility.example")
            s.add(m1)
            s.flush()
            s.add(ManagerAssignment(manager_id=m1.id, customer_id=acme.id))
            s.add(NotificationPreference(username="acme-ops", email="ops@acme.example", updated_at=at))
            s.commit()
        from gateway.web import auth_service

        auth = auth_service(gw)
        auth.add_user("wang", "manager-pass-1", "account_manager", manager="M1")
        auth.add_user("acme-ops", "customer-pass-1", "customer", customer="acme")
        with gw.db() as s:
            started = time.perf_counter()
            raise_alert(s, key="demand:acme", type="demand_watch", severity="critical", customer_code="acme",
                        meter_code=None, window_start=at, window_end=at, message="acme: 6,694 kW projected", now=at)
            s.commit()
        gw.scheduler.run_now("notify_send")
        arrived = {rcpts[0]: (msg, t - started) for rcpts, msg, t in box.messages}
    finally:
        ctl.stop()
    # The manager's user has no language: the section's (zh); the customer's user gets its company's (en).
    assert arrived["wang@utility.example"][0]["Subject"] == "【严重】Acme Steel (acme)：demand_watch 告警"
    assert arrived["ops@acme.example"][0]["Subject"] == "[Critical] Acme Steel (acme): alert demand_watch"
    with gw.db() as s:
        records = {r.recipient: r.status for r in s.scalars(select(Notification))}
    # The CRM webhook has no secret in this environment: it fails, naming the variable, and blocks nothing.
    assert records == {"wang": "delivered", "acme-ops": "delivered", "channel:crm": "failed"}
    print({"alert_to_smtp_s": round(max(t for _, t in arrived.values()), 3)})


def test_an_alert_with_a_message_key_is_mailed_in_each_recipients_language(tmp_path: Path) -> None:
    """The `{message}` of a mail is the alert's message in the recipient's language, from its key and values."""
    box = _Box()
    port = free_port()
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        gw = _gateway(tmp_path, BASE + NOTIFY.format(port=port))
        install_notifications(gw, environ={})
        register_jobs(gw)
        at = datetime(2026, 12, 2, 6, 15, tzinfo=UTC)
        with gw.db() as s:
            acme = s.scalars(select(Customer).where(Customer.code == "acme")).one()
            m1 = AccountManager(code="M1", name="Wang", email="wang@utility.example")
            s.add(m1)
            s.flush()
            s.add(ManagerAssignment(manager_id=m1.id, customer_id=acme.id))
            s.add(NotificationPreference(username="acme-ops", email="ops@acme.example", updated_at=at))
            s.commit()
        from gateway.web import auth_service

        auth = auth_service(gw)
        auth.add_user("wang", "manager-pass-1", "account_manager", manager="M1")  # no language: the section's zh
        auth.add_user("acme-ops", "customer-pass-1", "customer", customer="acme")  # its company's en
        english = "Month-to-date demand 6694.0 kW (stored English text)"
        with gw.db() as s:
            raise_alert(s, key="demand:acme", type="demand_100", severity="critical", customer_code="acme",
                        meter_code=None, window_start=at, window_end=at, message=english, now=at,
                        text_key="alert_demand",
                        params={"value": 6694.0, "at": at.isoformat(), "share": 1.02, "factor": 1, "limit": 6560})
            s.commit()
        gw.scheduler.run_now("notify_send")
        bodies = {rcpts[0]: msg.get_body(("plain",)).get_content() for rcpts, msg, _ in box.messages}
    finally:
        ctl.stop()
    zh, en = bodies["wang@utility.example"], bodies["ops@acme.example"]
    for part in ("有一条新告警", "本月最大需量", "合同需量"):
        assert part in zh, zh
    assert "Month-to-date" not in zh
    for part in ("has a new alert", "Month-to-date demand", "contract demand"):
        assert part in en, en
    assert english not in en  # rendered from the key too, not the stored text
