"""The service desk through the API.

Description and contact, the thread and internal notes, attachments, assignee, due time, overdue, an alert turned
into a request and linked both ways, statistics per manager, category and tier.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.gateway.api.world import token_for


def test_a_request_with_description_contact_thread_and_private_notes(client):
    cust, mgr = token_for(client, "cust-acme"), token_for(client, "mgr-a")
    r = client.post("/api/v1/tickets", headers=cust, json={
        "kind": "complaint", "category": "metering", "title": "meter reads high",
        "description": "Since Monday the meter shows 3 % more than our sub-meter.", "contact": "Li Wei, ext. 301"})
    assert r.status_code == 201, r.text
    t = r.json()
    assert (t["description"], t["contact"], t["customer_name"]) == (
        "Since Monday the meter shows 3 % more than our sub-meter.", "Li Wei, ext. 301", "Acme Works")
    assert t["owner"] == "am-a"
    assert t["owner_name"] == "Manager am-a"
    assert t["due_target"] == "ack"
    assert t["overdue"] is False
    created = datetime.fromisoformat(t["created_at"])
    assert datetime.fromisoformat(t["due_at"]) == created + timedelta(minutes=t["ack_target_min"])

    tid = t["id"]
    r = client.post(f"/api/v1/tickets/{tid}/comments", headers=cust, json={"body": "photo follows"})
    assert r.status_code == 201, r.text
    r = client.post(f"/api/v1/tickets/{tid}/comments", headers=cust, json={"body": "x", "internal": True})
    assert r.status_code == 403, "a customer writes no internal notes"
    r = client.post(f"/api/v1/tickets/{tid}/comments", headers=mgr,
                    json={"body": "CT ratio looks wrong; send the technician", "internal": True})
    assert r.status_code == 201
    r = client.post(f"/api/v1/tickets/{tid}/comments", headers=mgr, json={"body": "We will visit on Thursday."})
    mine = [(c["author"], c["body"], c["internal"]) for c in r.json()["comments"]]
    assert mine == [("cust-acme", "photo follows", False),
                    ("mgr-a", "CT ratio looks wrong; send the technician", True),
                    ("mgr-a", "We will visit on Thursday.", False)]
    seen = client.get(f"/api/v1/tickets/{tid}", headers=cust).json()["comments"]
    assert [c["body"] for c in seen] == ["photo follows", "We will visit on Thursday."], "the note stays inside"
    listed = client.get("/api/v1/tickets", headers=cust, params={"customer": "acme"}).json()["items"]
    assert all(not c["internal"] for x in listed for c in x["comments"])
    r = client.post(f"/api/v1/tickets/{tid}/comments", headers=cust, json={"body": ""})
    assert r.status_code == 422
    assert "body" in r.json()["error"]["message"]

    other = token_for(client, "cust-beta")
    assert client.post(f"/api/v1/tickets/{tid}/comments", headers=other, json={"body": "hi"}).status_code == 404


def test_assign_to_a_manager_of_the_account_only(client):
    admin, mgr = token_for(client, "admin"), token_for(client, "mgr-a")
    tid = client.post("/api/v1/tickets", headers=admin, json={"customer": "gamma", "category": "billing",
                                                              "title": "assign me"}).json()["id"]
    r = client.post(f"/api/v1/tickets/{tid}/assign", headers=admin, json={"manager": "am-b"})
    assert r.status_code == 422
    assert r.json()["error"]["detail"]["where"] == "manager", "am-b is beta's, not gamma's"
    r = client.post(f"/api/v1/tickets/{tid}/assign", headers=mgr, json={"manager": "am-a"})
    assert r.status_code == 200
    assert r.json()["owner"] == "am-a"
    cust = token_for(client, "cust-gamma")
    assert client.post(f"/api/v1/tickets/{tid}/assign", headers=cust, json={"manager": "am-a"}).status_code == 403


def test_overdue_once_past_the_target(client, world):
    from crm_bridge.desk import create_ticket

    with world.gw.db() as s:
        t = create_ticket(s, "beta", "request", "other", "old question", datetime.now(UTC) - timedelta(days=3),
                          owner_code="am-b")
        s.commit()
        tid = t.id
    r = client.get(f"/api/v1/tickets/{tid}", headers=token_for(client, "mgr-b")).json()
    assert (r["due_target"], r["overdue"]) == ("ack", True)


def test_an_alert_becomes_a_request_linked_both_ways(client, world):
    from crm_bridge.alerts import raise_alert

    now = datetime.now(UTC)
    with world.gw.db() as s:
        a = raise_alert(s, key="api-desk:link", type="demand_90", severity="warning", customer_code="acme",
                        meter_code=None, window_start=now, window_end=now, message="near the limit", now=now)
        s.commit()
        aid = a.id
    mgr = token_for(client, "mgr-a")
    r = client.post(f"/api/v1/alerts/{aid}/ticket", headers=mgr)
    assert r.status_code == 200
    tid = r.json()["ticket_id"]
    t = client.get(f"/api/v1/tickets/{tid}", headers=mgr).json()
    assert (t["alert_id"], t["category"], t["owner"]) == (aid, "alert:demand_90", "am-a")
    assert client.post(f"/api/v1/alerts/{aid}/ticket", headers=mgr).json()["ticket_id"] == tid, "once"


def test_statistics_per_manager_category_and_tier(client):
    mgr, admin = token_for(client, "mgr-b"), token_for(client, "admin")
    tid = client.post("/api/v1/tickets", headers=mgr, json={"customer": "beta", "category": "capacity",
                                                            "title": "stats"}).json()["id"]
    for step in ("acknowledged", "in_progress", "resolved"):
        assert client.post(f"/api/v1/tickets/{tid}/transition", headers=mgr, json={"to": step}).status_code == 200
    cust = token_for(client, "cust-beta")
    assert client.post(f"/api/v1/tickets/{tid}/rate", headers=cust, json={"satisfaction": 2}).status_code == 200
    r = client.get("/api/v1/tickets/stats", headers=mgr)
    assert r.status_code == 200, r.text
    st = r.json()
    assert set(st) == {"category", "manager", "tier"}
    assert st["category"]["capacity"]["mean_satisfaction"] == 2.0
    assert set(st["manager"]) == {"am-b"}, "a manager's statistics cover the accounts it sees"
    assert st["tier"]["C"]["count"] >= 2
    everyone = client.get("/api/v1/tickets/stats", headers=admin).json()
    assert {"am-a", "am-b"} <= set(everyone["manager"])
    assert client.get("/api/v1/tickets/stats", headers=cust).status_code == 403


def test_attachments_are_checked_by_content_and_come_back_as_downloads(client, world):
    cust = token_for(client, "cust-acme")
    tid = world.tickets["acme"]
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    r = client.post(f"/api/v1/tickets/{tid}/attachments", headers=cust,
                    files={"file": ("meter display.png", png, "application/octet-stream")})
    assert r.status_code == 201, r.text
    [att] = [a for a in r.json()["attachments"] if a["name"] == "meter display.png"]
    assert (att["content_type"], att["size"], att["uploaded_by"]) == ("image/png", len(png), "cust-acme")
    got = client.get(f"/api/v1/tickets/attachments/{att['id']}", headers=cust)
    assert got.status_code == 200
    assert got.content == png
    assert got.headers["content-type"] == "image/png"
    assert got.headers["content-disposition"].startswith("attachment;")
    r = client.post(f"/api/v1/tickets/{tid}/attachments", headers=cust,
                    files={"file": ("invoice.pdf", b"MZ\x90\x00 not a pdf at all \x00\x01", "application/pdf")})
    assert r.status_code == 422
    assert r.json()["error"]["detail"]["where"] == "file"
    for other in ("cust-beta", "mgr-b"):
        r = client.get(f"/api/v1/tickets/attachments/{att['id']}", headers=token_for(client, other))
        assert r.status_code == 404, f"{other} does not see acme's ticket, nor its files"
    assert client.get("/api/v1/tickets/attachments/999999", headers=cust).status_code == 404
