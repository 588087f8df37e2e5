"""Service-desk workflow and statistics on a migrated SQLite and PostgreSQL registry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from crm_bridge.desk import (
    InvalidTransitionError,
    TicketError,
    add_comment,
    assign,
    create_ticket,
    desk_stats,
    due,
    list_tickets,
    transition,
)
from crm_bridge.registry import make_engine, migrate
from crm_bridge.registry.models import AccountManager, Customer, TierRecord

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    migrate(db_url)
    engine = make_engine(db_url)
    with Session(engine) as s:
        a = Customer(code="KA", name="Key account")
        c = Customer(code="SM", name="Small")
        s.add_all([a, c, AccountManager(code="ann", name="Ann"), AccountManager(code="bob", name="Bob")])
        s.flush()
        s.add(TierRecord(customer_id=a.id, score=0.9, computed="A", updated_at=T0))
        s.commit()
        yield s
    engine.dispose()


def _m(n: float) -> timedelta:
    return timedelta(minutes=n)


def test_full_lifecycle_records_every_transition(session: Session) -> None:
    t = create_ticket(session, "KA", "complaint", "billing", "bill too high", T0, owner_code="ann")
    assert (t.ack_target_min, t.resolve_target_min) == (15, 240)  # tier A complaint, from the data file
    for i, st in enumerate(["acknowledged", "in_progress", "resolved"], start=1):
        transition(session, t.id, st, T0 + _m(10 * i))
    transition(session, t.id, "closed", T0 + _m(40), satisfaction=4)
    session.commit()
    session.expire_all()
    assert [(x.from_status, x.to_status) for x in t.transitions] == [
        (None, "new"), ("new", "acknowledged"), ("acknowledged", "in_progress"),
        ("in_progress", "resolved"), ("resolved", "closed"),
    ]
    assert t.status == "closed"
    assert t.satisfaction == 4


def test_default_tier_targets_for_unscored_customer(session: Session) -> None:
    t = create_ticket(session, "SM", "request", "meter", "new meter", T0)
    assert (t.ack_target_min, t.resolve_target_min) == (480, 4320)


@pytest.mark.parametrize(
    ("path", "bad"),
    [([], "in_progress"), ([], "closed"), (["acknowledged"], "resolved"), (["acknowledged"], "new")],
)
def test_invalid_transitions_raise(session: Session, path: list[str], bad: str) -> None:
    t = create_ticket(session, "SM", "request", "meter", "x", T0)
    for st in path:
        transition(session, t.id, st, T0 + _m(1))
    with pytest.raises(InvalidTransitionError, match=f"to '{bad}'"):
        transition(session, t.id, bad, T0 + _m(2))
    assert t.status == (path[-1] if path else "new")


def test_close_needs_satisfaction_in_range_and_closed_is_final(session: Session) -> None:
    t = create_ticket(session, "SM", "request", "meter", "x", T0)
    for st in ["acknowledged", "in_progress", "resolved"]:
        transition(session, t.id, st, T0 + _m(1))
    with pytest.raises(TicketError, match="satisfaction"):
        transition(session, t.id, "closed", T0 + _m(2), satisfaction=6)
    with pytest.raises(TicketError, match="satisfaction"):
        transition(session, t.id, "closed", T0 + _m(2))
    transition(session, t.id, "closed", T0 + _m(2), satisfaction=1)
    with pytest.raises(InvalidTransitionError, match="closed"):
        transition(session, t.id, "in_progress", T0 + _m(3))


def test_bad_input_is_named(session: Session) -> None:
    with pytest.raises(TicketError, match="'wish'"):
        create_ticket(session, "SM", "wish", "meter", "x", T0)
    with pytest.raises(TicketError, match="'zed'"):
        create_ticket(session, "SM", "request", "meter", "x", T0, owner_code="zed")
    with pytest.raises(TicketError, match="999"):
        transition(session, 999, "acknowledged", T0)
    t = create_ticket(session, "SM", "request", "meter", "x", T0)
    with pytest.raises(TicketError, match="before"):
        transition(session, t.id, "acknowledged", T0 - _m(1))


def test_stats_per_category_and_manager(session: Session) -> None:
    # Ann: billing complaint on KA (targets 15/240): ack after 10, resolved after 300 (breach), closed 5.
    a = create_ticket(session, "KA", "complaint", "billing", "a", T0, owner_code="ann")
    transition(session, a.id, "acknowledged", T0 + _m(10))
    transition(session, a.id, "in_progress", T0 + _m(20))
    transition(session, a.id, "resolved", T0 + _m(300))
    transition(session, a.id, "closed", T0 + _m(310), satisfaction=5)
    # Ann: billing complaint on KA, ack after 30 (breach), still open.
    b = create_ticket(session, "KA", "complaint", "billing", "b", T0, owner_code="ann")
    transition(session, b.id, "acknowledged", T0 + _m(30))
    # Bob: meter request on SM (480/4320): resolved in 100, closed 3.
    c = create_ticket(session, "SM", "request", "meter", "c", T0, owner_code="bob")
    transition(session, c.id, "acknowledged", T0 + _m(50))
    transition(session, c.id, "in_progress", T0 + _m(60))
    transition(session, c.id, "resolved", T0 + _m(100))
    transition(session, c.id, "closed", T0 + _m(110), satisfaction=3)
    session.commit()

    st = desk_stats(session, now=T0 + _m(200))
    billing = st["category"]["billing"]
    assert billing.count == 2
    assert billing.mean_ack_min == pytest.approx(20.0)
    assert billing.mean_resolve_min == pytest.approx(300.0)
    assert billing.ack_breaches == 1
    assert billing.resolve_breaches == 1  # b is open but not yet past 240 min at now=200
    assert billing.mean_satisfaction == pytest.approx(5.0)
    assert st["manager"]["bob"].mean_satisfaction == pytest.approx(3.0)
    assert st["manager"]["bob"].ack_breaches == 0
    assert st["manager"]["ann"].count == 2
    later = desk_stats(session, now=T0 + _m(241))
    assert later["category"]["billing"].resolve_breaches == 2
    assert [t.title for t in list_tickets(session, owner_code="ann")] == ["a", "b"]
    assert [t.title for t in list_tickets(session, status="closed")] == ["a", "c"]
    assert [t.title for t in list_tickets(session, customer_code="SM")] == ["c"]
    assert st["tier"]["A"].count == 2, "KA is tier A"
    assert st["tier"]["C"].count == 1, "SM has no tier record: C"
    assert st["tier"]["C"].mean_satisfaction == pytest.approx(3.0)


def test_description_contact_thread_notes_and_assignee(session: Session) -> None:
    t = create_ticket(session, "KA", "request", "metering", "meter drifts", T0, description="since Monday, +3 %",
                      contact="Li Wei, 138 0000 0000")
    add_comment(session, t.id, "cust-ka", "customer", "  photo of the display follows  ", T0 + _m(1))
    add_comment(session, t.id, "ann", "account_manager", "old CT, check the ratio", T0 + _m(2), internal=True)
    assign(session, t.id, "bob")
    session.commit()
    session.expire_all()
    assert (t.description, t.contact) == ("since Monday, +3 %", "Li Wei, 138 0000 0000")
    assert [(c.body, c.internal) for c in t.comments] == [
        ("photo of the display follows", False), ("old CT, check the ratio", True)]
    assert t.owner_id == session.query(AccountManager).filter_by(code="bob").one().id
    with pytest.raises(TicketError, match="empty"):
        add_comment(session, t.id, "ann", "account_manager", "   ", T0)
    with pytest.raises(TicketError, match="'zed'"):
        assign(session, t.id, "zed")


def test_due_time_follows_the_status_and_is_overdue_after_it(session: Session) -> None:
    t = create_ticket(session, "KA", "complaint", "billing", "x", T0)  # tier A complaint: ack 15, resolve 240
    assert due(t, T0 + _m(14)) == due(t, T0)
    assert due(t, T0).at == T0 + _m(15)
    assert (due(t, T0).target, due(t, T0).overdue, due(t, T0 + _m(16)).overdue) == ("ack", False, True)
    transition(session, t.id, "acknowledged", T0 + _m(20))
    d = due(t, T0 + _m(241))
    assert (d.target, d.at, d.overdue) == ("resolve", T0 + _m(240), True)
    transition(session, t.id, "in_progress", T0 + _m(21))
    transition(session, t.id, "resolved", T0 + _m(22))
    assert due(t, T0 + _m(999)).target is None
    transition(session, t.id, "in_progress", T0 + _m(30))  # reopened: the resolve deadline is back
    assert due(t, T0 + _m(31)).target == "resolve"


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def test_attachments_type_from_content_and_limits(session: Session) -> None:
    from crm_bridge.desk.attachments import MAX_BYTES, MAX_PER_TICKET, attach, sniff

    t = create_ticket(session, "SM", "request", "metering", "x", T0)
    a = attach(session, t.id, "C:\\photos\\display.png", PNG, "cust", T0)
    assert (a.name, a.content_type, a.size) == ("display.png", "image/png", len(PNG))
    assert sniff(b"%PDF-1.7\n...") == "application/pdf"
    assert sniff("电表读数 12345\n".encode()) == "text/plain"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff(b"MZ\x90\x00\x03") is None, "a Windows program"
    with pytest.raises(TicketError, match="not a PNG"):
        attach(session, t.id, "photo.png", b"MZ\x90\x00\x03\x00\x00\x00", "cust", T0)  # the name does not matter
    with pytest.raises(TicketError, match="over the limit"):
        attach(session, t.id, "big.txt", b"a" * (MAX_BYTES + 1), "cust", T0)
    with pytest.raises(TicketError, match="empty"):
        attach(session, t.id, "none.txt", b"", "cust", T0)
    for i in range(MAX_PER_TICKET - 1):
        attach(session, t.id, f"{i}.txt", b"note", "cust", T0)
    with pytest.raises(TicketError, match="already has"):
        attach(session, t.id, "one-more.txt", b"note", "cust", T0)
    session.commit()
    session.expire_all()
    assert len(t.attachments) == MAX_PER_TICKET
