"""CSV import with bad rows (line numbers and reasons), idempotent re-import by code, export round trip."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from crm_bridge.registry import make_engine, migrate
from crm_bridge.registry.models import Contact, Customer
from crm_bridge.sync import export_customers, import_contacts, import_customers

CUSTOMERS = """code,name,timezone,industry,annual_revenue
C1,Acme Steel,Europe/Berlin,steel,"1,200,000"
,No Code,Europe/Berlin,x,1
C2,Bolt Works,Mars/Olympus,metal,10
C3,"Cement, Inc.",Asia/Shanghai,cement,abc
C4,Dairy,Europe/Berlin,food,
C1,Acme again,Europe/Berlin,steel,5
C5,,Europe/Berlin,,
"""


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    migrate(db_url)
    engine = make_engine(db_url)
    with Session(engine) as s:
        yield s
    engine.dispose()


def test_bad_rows_reported_good_rows_kept(session: Session) -> None:
    rep = import_customers(session, CUSTOMERS)
    assert (rep.created, rep.updated) == (2, 0)
    errs = {e.line: e.reasons for e in rep.errors}
    assert sorted(errs) == [3, 4, 5, 7, 8]
    assert errs[3] == ["code is empty"]
    assert errs[4] == ["timezone 'Mars/Olympus' is unknown"]
    assert errs[5] == ["annual_revenue 'abc' is not a number"]
    assert errs[7] == ["code 'C1' repeats line 2"]
    assert errs[8] == ["name is empty"]
    assert sorted(c.code for c in session.query(Customer)) == ["C1", "C4"]
    assert session.query(Customer).filter_by(code="C1").one().annual_revenue == 1_200_000


def test_reimport_is_idempotent_and_updates_by_code(session: Session) -> None:
    import_customers(session, CUSTOMERS)
    again = import_customers(session, CUSTOMERS)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    changed = import_customers(session, "code,name\nC4,Dairy North\n")
    assert (changed.created, changed.updated) == (0, 1)
    assert session.query(Customer).count() == 2
    assert session.query(Customer).filter_by(code="C4").one().name == "Dairy North"


def test_missing_header_column_is_named(session: Session) -> None:
    rep = import_customers(session, "id,name\n1,x\n")
    assert rep.errors[0].line == 1
    assert "code" in rep.errors[0].reasons[0]
    assert session.query(Customer).count() == 0


def test_contacts_import(session: Session) -> None:
    import_customers(session, CUSTOMERS)
    text = (
        "customer_code,name,email,phone,role\n"
        "C1,Ann Smith,ann@acme.example,+49 1,energy manager\n"
        "C9,Nobody,n@x.example,,\n"
        "C1,Bad Mail,not-an-address,,\n"
        "C4,Dora,,,\n"
    )
    rep = import_contacts(session, text)
    assert rep.created == 2
    assert [(e.line, e.reasons) for e in rep.errors] == [
        (3, ["customer_code 'C9' is not in the registry"]), (4, ["email 'not-an-address' is not an address"]),
    ]
    again = import_contacts(session, text.replace("energy manager", "CEO"))
    assert (again.created, again.updated, again.unchanged) == (0, 1, 1)
    assert session.query(Contact).count() == 2


def test_export_round_trip(session: Session) -> None:
    import_customers(session, CUSTOMERS)
    out = export_customers(session)
    assert out.splitlines()[0] == "code,name,timezone,industry,annual_revenue"
    rep = import_customers(session, out)
    assert (rep.created, rep.updated, rep.unchanged, rep.errors) == (0, 0, 2, [])
