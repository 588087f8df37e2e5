"""Report schedule and delivery record: defaults, saving, validation naming the field, and who sees whose."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete

from crm_bridge.registry.models import Notification, NotificationEvent, ReportSubscription
from tests.gateway.api.world import token_for

GOOD = {"monthly_day": 3, "monthly_hour": 9, "daily_hour": None, "format": "xlsx",
        "recipients": [{"email": "energy@acme.example", "language": "zh"},
                       {"email": "director@acme.example", "language": "en"}]}


@pytest.fixture
def fresh(world):
    """No schedule and no report record before or after the test (the API world is shared by the session)."""

    def clear() -> None:
        with world.gw.db() as s:
            s.execute(delete(ReportSubscription))
            s.execute(delete(NotificationEvent).where(NotificationEvent.kind == "report.ready"))
            s.commit()

    clear()
    yield world
    clear()


def test_without_a_schedule_the_defaults_hold(client, fresh):
    r = client.get("/api/v1/customers/acme/report-schedule", headers=token_for(client, "cust-acme"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["custom"], body["monthly_day"], body["monthly_hour"], body["daily_hour"], body["format"]) == (
        False, 1, 8, 7, "pdf")
    assert body["recipients"] == []
    assert body["timezone"] == "Asia/Shanghai"


def test_a_customer_saves_its_schedule_and_recipients(client, fresh):
    cust = token_for(client, "cust-acme")
    r = client.put("/api/v1/customers/acme/report-schedule", headers=cust, json=GOOD)
    assert r.status_code == 200, r.text
    saved = client.get("/api/v1/customers/acme/report-schedule", headers=cust).json()
    assert saved["custom"] is True
    assert saved["updated_by"] == "cust-acme"
    assert {k: saved[k] for k in GOOD} == GOOD
    # replacing keeps one address once and drops the one left out
    again = {**GOOD, "recipients": [{"email": "director@acme.example", "language": "zh"}]}
    assert client.put("/api/v1/customers/acme/report-schedule", headers=cust, json=again).status_code == 200
    assert client.get("/api/v1/customers/acme/report-schedule", headers=cust).json()["recipients"] == [
        {"email": "director@acme.example", "language": "zh"}]


@pytest.mark.parametrize(("change", "where"), [
    ({"monthly_day": 29}, "monthly_day"), ({"monthly_day": 0}, "monthly_day"),
    ({"monthly_hour": 24}, "monthly_hour"), ({"daily_hour": -1}, "daily_hour"),
    ({"recipients": [{"email": "not-an-address", "language": "zh"}]}, "email"),
    ({"recipients": [{"email": "a@b.example", "language": "zh"}, {"email": "A@b.example", "language": "en"}]},
     "listed twice"),
    ({"recipients": [{"email": "a@b.example", "language": "de"}]}, "language"),
])
def test_a_bad_schedule_is_422_naming_the_field_and_changes_nothing(client, fresh, change, where):
    cust = token_for(client, "cust-acme")
    r = client.put("/api/v1/customers/acme/report-schedule", headers=cust, json={**GOOD, **change})
    assert r.status_code == 422, r.text
    assert where in r.text
    assert client.get("/api/v1/customers/acme/report-schedule", headers=cust).json()["custom"] is False


@pytest.mark.parametrize(("user", "customer", "status"), [
    ("cust-acme", "acme", 200), ("cust-acme", "beta", 404), ("cust-beta", "acme", 404),
    ("mgr-a", "acme", 200), ("mgr-a", "gamma", 200), ("mgr-a", "beta", 404), ("mgr-b", "beta", 200),
    ("mgr-b", "acme", 404), ("admin", "beta", 200), ("eng", "acme", 403),
])
def test_a_customer_edits_its_own_a_manager_its_accounts_an_admin_all(client, fresh, user, customer, status):
    h = token_for(client, user)
    url = f"/api/v1/customers/{customer}/report-schedule"
    assert client.put(url, headers=h, json=GOOD).status_code == status
    assert client.get(url, headers=h).status_code == status
    assert client.get(f"/api/v1/customers/{customer}/report-deliveries", headers=h).status_code == status
    with fresh.gw.db() as s:
        saved = s.query(ReportSubscription).filter_by(owner=customer).one_or_none()
    assert (saved is not None) == (status == 200)


def _record(world, customer: str, name: str, recipient: str, status: str) -> None:
    now = datetime.now(UTC)
    with world.gw.db() as s:
        ev = NotificationEvent(key=f"report:{customer}:2026-11:{name}", kind="report.ready", customer_code=customer,
                               severity="info", data={"period": "2026-11", "attachment": name}, at=now,
                               attachment_name=name, attachment_type="application/pdf", attachment=b"%PDF-1.7")
        s.add(ev)
        s.flush()
        s.add(Notification(event_id=ev.id, recipient=recipient, channel="mail", address="x@acme.example",
                           language="zh", subject="s", body="b", status=status, attempts=1, created_at=now,
                           sent_at=now if status == "delivered" else None))
        s.commit()


def test_the_delivery_record_shows_what_went_to_whom_for_that_customer_only(client, fresh):
    _record(fresh, "acme", "monthly_2026-11.pdf", "mailto:x@acme.example", "delivered")
    _record(fresh, "acme", "monthly_2026-11_en.pdf", "admin", "delivered")  # staff who chose to hear of reports
    _record(fresh, "beta", "brief_2026-11-30.pdf", "cust-beta", "failed")
    for user, staff in (("cust-acme", False), ("mgr-a", True), ("admin", True)):
        r = client.get("/api/v1/customers/acme/report-deliveries", headers=token_for(client, user))
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["total"] == (2 if staff else 1), "a customer sees its side only"
        row = next(i for i in page["items"] if i["recipient"] != "admin")
        assert (row["report"], row["kind"], row["period"], row["recipient"], row["status"]) == (
            "monthly_2026-11.pdf", "monthly", "2026-11", "mailto:x@acme.example", "delivered")
    beta = client.get("/api/v1/customers/beta/report-deliveries", headers=token_for(client, "cust-beta")).json()
    assert [(i["kind"], i["status"]) for i in beta["items"]] == [("brief", "failed")]


def test_a_manager_sets_its_own_portfolio_schedule_and_an_admin_any(client, fresh):
    mgr = token_for(client, "mgr-a")
    r = client.get("/api/v1/portfolio/report-schedule", headers=mgr)
    assert r.status_code == 200, r.text
    assert (r.json()["manager"], r.json()["custom"], r.json()["monthly_day"]) == ("am-a", False, 1)
    body = {"monthly_day": 2, "monthly_hour": 6, "format": "pdf",
            "recipients": [{"email": "am.a@utility.example", "language": "en"}]}
    r = client.put("/api/v1/portfolio/report-schedule", headers=mgr, json=body)
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in body} == body
    assert client.put("/api/v1/portfolio/report-schedule", headers=mgr,
                      json={**body, "daily_hour": 7}).status_code == 422, "a portfolio has no daily brief"
    assert client.put("/api/v1/portfolio/report-schedule", headers=mgr,
                      json={**body, "monthly_day": 30}).status_code == 422
    assert client.get("/api/v1/portfolio/report-schedule?manager=am-b", headers=mgr).status_code == 404
    assert client.put("/api/v1/portfolio/report-schedule?manager=am-b", headers=mgr, json=body).status_code == 404
    admin = token_for(client, "admin")
    assert client.get("/api/v1/portfolio/report-schedule", headers=admin).status_code == 422, "an admin names one"
    assert client.get("/api/v1/portfolio/report-schedule?manager=nobody", headers=admin).status_code == 404
    r = client.put("/api/v1/portfolio/report-schedule?manager=am-b", headers=admin, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["updated_by"] == "admin"
    assert client.get("/api/v1/portfolio/report-deliveries", headers=mgr).json()["total"] == 0
    for user in ("cust-acme", "eng"):
        assert client.get("/api/v1/portfolio/report-schedule?manager=am-a",
                          headers=token_for(client, user)).status_code == 403
