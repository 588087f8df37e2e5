"""Scheduled reports: due on each customer's clock, delivered once per (report, customer, period), across restarts.

The notifier is another module; here `deliver` is a real function that keeps what it was given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.numbers import format_currency
from sqlalchemy import select

import tests.gateway.api.world as world_mod
from crm_bridge.registry.models import Contact, Customer
from gateway.report_jobs import ReportSchedule, SentLog, send_due_reports
from gateway.usecases import UseCases
from tests.reports.pdf import pdf_text

ALWAYS = ReportSchedule(monthly_day=1, monthly_at=time(0, 0), daily_at=time(0, 0), fmt="pdf")
RECIPIENTS = {"acme": ["energy@acme.example", "plant.director@acme.example"], "beta": ["ops@beta.example"]}


@dataclass
class Outbox:
    """A deliver callable that keeps every message; `fail` makes the next calls raise, as a mail server that is down."""

    sent: list[dict[str, object]] = field(default_factory=list)
    fail: bool = False

    def __call__(self, recipients: list[str], subject: str, body: str, attachment_name: str,
                 attachment_bytes: bytes, lang: str, period: str) -> None:
        if self.fail:
            raise ConnectionRefusedError("mail server down")
        self.sent.append({"to": recipients, "subject": subject, "body": body, "name": attachment_name,
                          "data": attachment_bytes, "lang": lang, "period": period})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    os.environ.setdefault("GATEWAY_SECRET_KEY", "test-secret-key-0123456789abcdef")
    saved = world_mod.HISTORY_DAYS
    world_mod.HISTORY_DAYS = 40  # last month has data whatever today's date
    try:
        w = world_mod.build_world(tmp_path_factory.mktemp("reportjobs"))
    finally:
        world_mod.HISTORY_DAYS = saved
    with w.gw.db() as s:  # gamma has no contact with an e-mail address
        for code, emails in RECIPIENTS.items():
            customer = s.scalar(select(Customer).where(Customer.code == code))
            for i, email in enumerate(emails):
                s.add(Contact(customer=customer, name=f"{code} contact {i}", email=email))
        s.add(Contact(customer=s.scalar(select(Customer).where(Customer.code == "gamma")), name="no mail"))
        s.commit()
    return w


def test_reports_fall_due_on_the_chosen_day_and_hour():
    sched = ReportSchedule(monthly_day=3, monthly_at=time(8, 0), daily_at=time(7, 30))
    tz = ZoneInfo("Asia/Shanghai")
    assert sched.due(datetime(2026, 12, 3, 7, 29, tzinfo=tz)) == []
    assert sched.due(datetime(2026, 12, 3, 7, 30, tzinfo=tz)) == [("brief", date(2026, 12, 2))]
    assert sched.due(datetime(2026, 12, 3, 8, 0, tzinfo=tz)) == [("monthly", date(2026, 11, 1)),
                                                                  ("brief", date(2026, 12, 2))]
    assert sched.due(datetime(2026, 12, 2, 23, 0, tzinfo=tz)) == [("brief", date(2026, 12, 1))]
    assert sched.due(datetime(2027, 1, 20, 9, 0, tzinfo=tz))[0] == ("monthly", date(2026, 12, 1))
    assert ReportSchedule(daily_at=None).due(datetime(2026, 12, 3, 23, 0, tzinfo=tz)) == [
        ("monthly", date(2026, 11, 1))]
    with pytest.raises(ValueError, match="1..28"):
        ReportSchedule(monthly_day=31)


def test_the_defaults_the_portal_shows_are_the_jobs():
    from gateway.usecases.report_delivery import DEFAULTS

    job = ReportSchedule()
    assert (job.monthly_day, job.monthly_at, job.daily_at, job.fmt) == (
        DEFAULTS.monthly_day, time(DEFAULTS.monthly_hour), time(DEFAULTS.daily_hour or 0), DEFAULTS.format)


def test_an_owners_own_schedule_and_each_recipients_language_come_first(world, tmp_path):
    from gateway.usecases.report_delivery import Plan

    plans = {"beta": Plan(1, 0, None, "pdf", (("a@beta.example", "en"), ("b@beta.example", "zh"))),
             "manager:am-b": Plan(1, 0, None, "html", (("am.b@utility.example", "en"),))}
    outbox = Outbox()
    runs = send_due_reports(UseCases(world.gw), outbox, schedule=ReportSchedule(daily_at=None), store_dir=tmp_path,
                            recipients=lambda c: [], managers=lambda m: [], plans=plans.get)
    assert [(d.kind, d.customer, d.outcome) for d in runs if d.outcome != "no_recipients"] == [
        ("monthly", "beta", "sent"), ("portfolio", "manager:am-b", "sent")]
    month = (datetime.now(ZoneInfo("Europe/Berlin")).date().replace(day=1) - timedelta(days=1)).replace(day=1)
    portfolio_month = (datetime.now(ZoneInfo("Asia/Shanghai")).date().replace(day=1) - timedelta(days=1)).replace(
        day=1)
    assert [(m["to"], m["lang"], m["name"]) for m in outbox.sent] == [
        (["a@beta.example"], "en", f"monthly_{month:%Y-%m}.pdf"),  # beta's own language first, under the plain name
        (["b@beta.example"], "zh", f"monthly_{month:%Y-%m}_zh.pdf"),
        (["am.b@utility.example"], "en", f"portfolio_{portfolio_month:%Y-%m}_en.html")]
    assert (tmp_path / "beta" / f"monthly_{month:%Y-%m}_zh.pdf").read_bytes() == outbox.sent[1]["data"]
    assert "Portfolio" in bytes(outbox.sent[2]["data"]).decode()  # type: ignore[arg-type]
    records = {r["customer"]: r["recipients"] for r in SentLog(tmp_path / "sent.db").records()}
    assert records == {"beta": "a@beta.example, b@beta.example", "manager:am-b": "am.b@utility.example"}


def test_each_report_is_delivered_once_also_after_a_restart(world, tmp_path):
    outbox = Outbox()
    first = send_due_reports(UseCases(world.gw), outbox, schedule=ALWAYS, store_dir=tmp_path)
    outcomes = {(d.kind, d.customer): d.outcome for d in first}
    assert outcomes == {("monthly", "acme"): "sent", ("brief", "acme"): "sent", ("monthly", "beta"): "sent",
                        ("brief", "beta"): "sent", ("monthly", "gamma"): "no_recipients",
                        ("brief", "gamma"): "no_recipients",  # no contact with an address
                        ("portfolio", "manager:am-a"): "no_recipients",  # the managers have no address either
                        ("portfolio", "manager:am-b"): "no_recipients"}
    assert len(outbox.sent) == 4
    again = send_due_reports(UseCases(world.gw), outbox, schedule=ALWAYS, store_dir=tmp_path)
    assert {d.outcome for d in again if d.outcome != "no_recipients"} == {"already_sent"}
    # a restart: a new process has new use cases and reads the record from the file
    restarted = send_due_reports(UseCases(world.gw), outbox, schedule=ALWAYS, store_dir=tmp_path)
    assert [d for d in restarted if d.outcome == "sent"] == []
    assert len(outbox.sent) == 4
    records = SentLog(tmp_path / "sent.db").records()
    assert sorted((r["kind"], r["customer"], r["state"]) for r in records) == [
        ("brief", "acme", "sent"), ("brief", "beta", "sent"), ("monthly", "acme", "sent"), ("monthly", "beta", "sent")]
    acme = next(r for r in records if r["customer"] == "acme" and r["kind"] == "monthly")
    assert acme["recipients"] == "energy@acme.example, plant.director@acme.example"
    assert (tmp_path / "acme").is_dir()
    assert acme["file"].endswith(".pdf")


def test_the_message_and_attachment_are_in_the_customers_language(world, tmp_path):
    outbox = Outbox()
    send_due_reports(UseCases(world.gw), outbox, schedule=ALWAYS, store_dir=tmp_path)
    acme = next(m for m in outbox.sent if m["to"] == RECIPIENTS["acme"] and str(m["name"]).startswith("monthly"))
    beta = next(m for m in outbox.sent if m["to"] == RECIPIENTS["beta"] and str(m["name"]).startswith("monthly"))
    last_month = (datetime.now(ZoneInfo("Asia/Shanghai")).date().replace(day=1) - timedelta(days=1)).replace(day=1)
    assert acme["lang"] == "zh"
    assert acme["subject"] == f"Acme Works：{last_month.year}年{last_month.month}月 用电报告"
    assert acme["name"] == f"monthly_{last_month:%Y-%m}.pdf"
    _, bill = UseCases(world.gw).month_bill("acme", last_month)
    assert bill is not None
    text = pdf_text(acme["data"])  # type: ignore[arg-type]
    assert format_currency(round(bill.total, 2), "CNY", locale="zh_CN") in text
    assert beta["lang"] == "en"
    assert str(beta["subject"]).startswith("Beta Works: energy report ")
    assert "Monthly energy report" in pdf_text(beta["data"])  # type: ignore[arg-type]


def test_a_failed_delivery_is_tried_again_at_the_next_run(world, tmp_path):
    outbox = Outbox(fail=True)
    schedule = ReportSchedule(monthly_day=1, monthly_at=time(0, 0), daily_at=None, fmt="html")
    failed = send_due_reports(UseCases(world.gw), outbox, schedule=schedule, store_dir=tmp_path,
                              recipients=lambda c: ["x@example.com"] if c == "acme" else [])
    (acme,) = [d for d in failed if d.customer == "acme"]
    assert acme.outcome == "failed"
    assert acme.detail == "mail server down"
    assert SentLog(tmp_path / "sent.db").records() == []
    outbox.fail = False
    retried = send_due_reports(UseCases(world.gw), outbox, schedule=schedule, store_dir=tmp_path,
                               recipients=lambda c: ["x@example.com"] if c == "acme" else [])
    assert [(d.customer, d.outcome) for d in retried if d.customer == "acme"] == [("acme", "sent")]
    assert len(outbox.sent) == 1
    assert b"<script" not in outbox.sent[0]["data"]  # type: ignore[operator]


def test_a_claim_left_by_a_crash_is_not_sent_again(world, tmp_path):
    """At most once: a run that died between claiming and recording leaves the claim; nothing is sent twice."""
    log = SentLog(tmp_path / "sent.db")
    sched = ReportSchedule(monthly_day=1, monthly_at=time(0, 0), daily_at=None, fmt="html")
    now = datetime.now(UTC)
    period = sched.due(now.astimezone(ZoneInfo("Asia/Shanghai")))[0][1]
    assert log.claim("monthly", "acme", f"{period:%Y-%m}")
    outbox = Outbox()
    run = send_due_reports(UseCases(world.gw), outbox, schedule=sched, now=now, store_dir=tmp_path,
                           recipients=lambda c: ["x@example.com"] if c == "acme" else [])
    assert [d.outcome for d in run if d.customer == "acme"] == ["already_sent"]
    assert outbox.sent == []
    assert [r["state"] for r in log.records()] == ["sending"]


def test_each_manager_gets_its_portfolio_once_a_month(world, tmp_path):
    outbox = Outbox()
    schedule = ReportSchedule(monthly_day=1, monthly_at=time(0, 0), daily_at=None, fmt="html")
    for _ in range(2):
        runs = send_due_reports(UseCases(world.gw), outbox, schedule=schedule, store_dir=tmp_path,
                                recipients=lambda c: [], managers=lambda m: ["am.a@utility.example"] if m == "am-a"
                                else [])
    assert [(d.kind, d.customer, d.outcome) for d in runs if d.kind == "portfolio"] == [
        ("portfolio", "manager:am-a", "already_sent"), ("portfolio", "manager:am-b", "no_recipients")]
    (mail,) = outbox.sent
    assert mail["to"] == ["am.a@utility.example"]
    assert mail["lang"] == "zh"
    html = bytes(mail["data"]).decode()  # type: ignore[arg-type]
    assert "客户组合报告" in html
    assert "Acme Works" in html
    assert "Gamma Works" in html
    assert "Beta Works" not in html
    assert (tmp_path / "managers" / "am-a" / str(mail["name"])).read_bytes() == mail["data"]


def test_the_scheduled_job_mails_the_pdf_through_the_notifier_to_a_real_smtp_server(tmp_path_factory):
    """The report job hands each report to the notifier (installed by register_jobs), whose send job mails it."""
    from aiosmtpd.controller import Controller

    from crm_bridge.notify.config import NotifyConfig
    from crm_bridge.registry.models import AccountManager, ManagerAssignment, Notification
    from gateway.jobs import register_jobs
    from tests.crm_bridge.notify.receivers import free_port
    from tests.gateway.test_notifications import _Box

    saved = world_mod.HISTORY_DAYS
    world_mod.HISTORY_DAYS = 40
    try:
        w = world_mod.build_world(tmp_path_factory.mktemp("mailed"))
    finally:
        world_mod.HISTORY_DAYS = saved
    box, port = _Box(), free_port()
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        w.gw.config = w.gw.config.model_copy(update={"notify": NotifyConfig.model_validate(
            {"channels": {"mail": {"type": "email", "host": "127.0.0.1", "port": port, "security": "none",
                                   "sender": "reports@utility.example"}}})})
        with w.gw.db() as s:
            acme = s.scalar(select(Customer).where(Customer.code == "acme"))
            zhao = AccountManager(code="ZHAO", name="Zhao", email="zhao@utility.example")
            s.add(zhao)
            s.flush()
            s.add(ManagerAssignment(manager_id=zhao.id, customer_id=acme.id))
            s.commit()
        register_jobs(w.gw)
        report_job = next(j for j in w.gw.scheduler.specs if j.name == "reports")
        from gateway.report_jobs import NotifierDelivery

        # The registered job on the schedule that is due now; then the notifier's send job.
        first = send_due_reports(UseCases(w.gw), NotifierDelivery(w.gw), schedule=ALWAYS,
                                 recipients=lambda customer: [customer], managers=lambda _code: [])
        assert report_job.description.startswith("Monthly reports and daily briefs")
        assert {(d.kind, d.customer) for d in first if d.outcome == "sent"} >= {("monthly", "acme"), ("brief", "acme")}
        w.gw.scheduler.run_now("notify_send")
        again = send_due_reports(UseCases(w.gw), NotifierDelivery(w.gw), schedule=ALWAYS,
                                 recipients=lambda customer: [customer], managers=lambda _code: [])
        w.gw.scheduler.run_now("notify_send")
    finally:
        ctl.stop()
    assert {d.outcome for d in again} <= {"already_sent", "no_recipients"}
    to_zhao = [msg for rcpts, msg, _ in box.messages if rcpts == ["zhao@utility.example"]]
    attachments = {part.get_filename(): part.get_content() for msg in to_zhao for part in msg.iter_attachments()}
    monthly = next(name for name in attachments if name.startswith("monthly_"))
    assert attachments[monthly][:5] == b"%PDF-"
    assert len(to_zhao) == len(attachments)  # one mail per report: the second run sent nothing again
    with w.gw.db() as s:
        records = {(n.recipient, n.status, n.error) for n in s.scalars(select(Notification))}
    assert {status for who, status, _ in records if who == "manager:ZHAO"} == {"delivered"}
    # The world's logins have no e-mail address: recorded as failed, saying why, and nothing else held up.
    others = {(status, error.split(" has ")[1] if error else None) for who, status, error in records
              if who != "manager:ZHAO"}
    assert others == {("failed", "no e-mail address (set it in the notification preferences)")}


def test_the_job_mails_each_schedule_to_its_recipients_once_also_after_a_restart(tmp_path_factory):
    """The `reports` job on the registry's schedules: a manager's portfolio PDF and a customer's reports, each copy
    in its recipient's language, reach a real SMTP server once, however often the job and the sender run."""
    from aiosmtpd.controller import Controller

    from crm_bridge.notify.config import NotifyConfig
    from crm_bridge.registry.models import AccountManager, ManagerAssignment
    from gateway.config import load_config
    from gateway.jobs import register_jobs
    from gateway.report_jobs import report_job
    from gateway.runtime import Gateway
    from gateway.usecases.report_delivery import (
        PortfolioScheduleUpdate,
        ReportScheduleUpdate,
        deliveries_of,
        set_schedule,
    )
    from tests.crm_bridge.notify.receivers import free_port
    from tests.gateway.test_notifications import _Box

    saved = world_mod.HISTORY_DAYS
    world_mod.HISTORY_DAYS = 40
    home = tmp_path_factory.mktemp("scheduled")
    try:
        w = world_mod.build_world(home)
    finally:
        world_mod.HISTORY_DAYS = saved
    box, port = _Box(), free_port()
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    due_now = {"monthly_day": 1, "monthly_hour": 0, "format": "pdf"}  # day 1 at 00:00 has passed in every month
    notify = NotifyConfig.model_validate({"channels": {"mail": {
        "type": "email", "host": "127.0.0.1", "port": port, "security": "none", "sender": "reports@utility.example"}}})
    try:
        w.gw.config = w.gw.config.model_copy(update={"notify": notify})
        with w.gw.db() as s:
            zhao = AccountManager(code="ZHAO", name="Zhao", email="zhao@utility.example")
            s.add(zhao)
            s.flush()
            s.add(ManagerAssignment(manager_id=zhao.id, customer_id=s.scalar(
                select(Customer.id).where(Customer.code == "beta"))))
            set_schedule(s, "manager:ZHAO", PortfolioScheduleUpdate.model_validate(due_now), "admin")
            set_schedule(s, "acme", ReportScheduleUpdate.model_validate({**due_now, "daily_hour": 0, "recipients": [
                {"email": "energy@acme.example", "language": "zh"},
                {"email": "director@acme.example", "language": "en"}]}), "cust-acme")
        register_jobs(w.gw)
        first = report_job(w.gw)
        w.gw.scheduler.run_now("notify_send")
        again = report_job(w.gw)  # the next run
        w.gw.scheduler.run_now("notify_send")
        # a restart: a new gateway on the same config, registry and data folder
        restarted = Gateway.from_config(load_config(home / "gateway.toml"))
        restarted.config = restarted.config.model_copy(update={"notify": notify})
        register_jobs(restarted)
        after_restart = report_job(restarted)
        restarted.scheduler.run_now("notify_send")
    finally:
        ctl.stop()
    mine = {(d.kind, d.customer): d.outcome for d in first if d.customer in ("acme", "manager:ZHAO")}
    assert mine == {("monthly", "acme"): "sent", ("brief", "acme"): "sent", ("portfolio", "manager:ZHAO"): "sent"}
    assert {d.outcome for d in again if d.customer in ("acme", "manager:ZHAO")} == {"already_sent"}
    assert {d.outcome for d in after_restart if d.customer in ("acme", "manager:ZHAO")} == {"already_sent"}

    def mailed(to: str) -> dict[str, bytes]:
        parts = [(part.get_filename(), part.get_content()) for rcpts, msg, _ in box.messages if rcpts == [to]
                 for part in msg.iter_attachments()]
        assert len(parts) == len(dict(parts)), f"{to} got a report twice: {[name for name, _ in parts]}"
        return dict(parts)

    last_month = (datetime.now(ZoneInfo("Asia/Shanghai")).date().replace(day=1) - timedelta(days=1)).replace(day=1)
    to_zhao = mailed("zhao@utility.example")
    portfolio = f"portfolio_{last_month:%Y-%m}.pdf"
    assert to_zhao[portfolio][:5] == b"%PDF-"
    assert "客户组合报告" in pdf_text(to_zhao[portfolio])
    assert "Beta Works" in pdf_text(to_zhao[portfolio])
    kept = w.gw.config.data_path(Path("reports")) / "managers" / "ZHAO" / portfolio
    assert kept.read_bytes() == to_zhao[portfolio]
    # acme's two addresses, each in its own language; a brief and a monthly report apiece
    zh, en = mailed("energy@acme.example"), mailed("director@acme.example")
    assert sorted(zh) == [f"brief_{(datetime.now(ZoneInfo('Asia/Shanghai')).date() - timedelta(days=1))}.pdf",
                          f"monthly_{last_month:%Y-%m}.pdf"]
    assert sorted(en) == sorted(name.replace(".pdf", "_en.pdf") for name in zh)
    assert "Monthly energy report" in pdf_text(en[f"monthly_{last_month:%Y-%m}_en.pdf"])
    assert "月" in pdf_text(zh[f"monthly_{last_month:%Y-%m}.pdf"])
    # the record of what went to whom, as the API and the downloads page show it
    with w.gw.db() as s:
        acme, total = deliveries_of(s, "acme")
        zhao_rows, _ = deliveries_of(s, "manager:ZHAO")
    assert total == 4
    assert {(d.kind, d.address, d.status) for d in acme} == {
        (kind, address, "delivered") for kind in ("monthly", "brief")
        for address in ("energy@acme.example", "director@acme.example")}
    assert [(d.report, d.recipient, d.status) for d in zhao_rows] == [(portfolio, "mailto:zhao@utility.example",
                                                                       "delivered")]
