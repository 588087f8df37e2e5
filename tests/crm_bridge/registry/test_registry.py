"""Registry on SQLite and a real PostgreSQL: migrations, round trips, assignment validity, queries."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_bridge.registry import make_engine, migrate
from crm_bridge.registry.models import (
    AccountManager,
    Contract,
    Customer,
    Equipment,
    Inspection,
    ManagerAssignment,
    Meter,
    Site,
    TariffVersion,
)
from crm_bridge.registry.repo import (
    RegistryLookupError,
    assign_meter,
    customer_by_code,
    manager_portfolio,
    managers_of_customer,
    meters_of_customer,
)


def test_migrate_creates_schema_and_is_idempotent(db_url: str) -> None:
    migrate(db_url)
    migrate(db_url)  # already at head: no-op
    engine = make_engine(db_url)
    try:
        names = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"customer", "meter_assignment", "alert", "ticket", "alembic_version", "tier_change"} <= names


def test_customer_round_trip_with_contract_equipment_and_tariff(session: Session) -> None:
    c = Customer(code="C001", name="Acme Steel", timezone="Europe/Berlin", industry="steel")
    c.contract = Contract(
        transformer_kva=2500, hv_motors_kw=800, contract_demand_kw=1800, basic_charge_mode="demand",
        pf_standard=0.9, bill_threshold=120000.0, tariff_id="HV-TOU",
    )
    site = Site(customer=c, code="works-1", name="Works 1")
    eq = Equipment(customer=c, kind="transformer", name="T1", rating=2500, rating_unit="kVA")
    eq.inspections.append(Inspection(kind="inspection", at=datetime(2026, 3, 1, 9, tzinfo=UTC), result="ok"))
    doc = {"id": "HV-TOU", "energy": {"peak": 0.21, "offpeak": 0.11}}
    session.add_all([c, site, eq, TariffVersion(tariff_id="HV-TOU", valid_from=date(2026, 1, 1), document=doc)])
    session.commit()
    session.expunge_all()

    got = customer_by_code(session, "C001")
    assert got.contract is not None
    assert got.contract.contract_demand_kw == 1800
    assert [(s.code, s.name) for s in got.sites] == [("works-1", "Works 1")]
    tv = session.query(TariffVersion).one()
    assert tv.document == doc
    insp = session.query(Inspection).one()
    assert insp.equipment.name == "T1"
    assert insp.result == "ok"


def test_customer_code_unique(session: Session) -> None:
    session.add(Customer(code="C1", name="a"))
    session.commit()
    session.add(Customer(code="C1", name="b"))
    with pytest.raises(IntegrityError):
        session.commit()


def test_meter_assignment_validity_dates(session: Session) -> None:
    a = Customer(code="A", name="A")
    b = Customer(code="B", name="B")
    sa, sb = Site(customer=a, code="sa"), Site(customer=b, code="sb")
    m = Meter(code="M1")
    session.add_all([a, b, sa, sb, m])
    session.flush()
    assign_meter(session, m, sa, date(2026, 1, 1))
    assign_meter(session, m, sb, date(2026, 6, 1))  # moved: closes A's assignment on 1 June
    session.commit()
    assert [x.code for x in meters_of_customer(session, "A", date(2026, 5, 31))] == ["M1"]
    assert meters_of_customer(session, "A", date(2026, 6, 1)) == []
    assert [x.code for x in meters_of_customer(session, "B", date(2026, 6, 1))] == ["M1"]
    assert meters_of_customer(session, "B", date(2026, 5, 31)) == []
    assert meters_of_customer(session, "A", date(2025, 12, 31)) == []
    with pytest.raises(ValueError, match="M1"):
        assign_meter(session, m, sa, date(2026, 3, 1))


def test_manager_portfolio(session: Session) -> None:
    m1 = AccountManager(code="mgr1", name="Ann")
    m2 = AccountManager(code="mgr2", name="Bob")
    cs = [Customer(code=f"K{i}", name=f"K{i}") for i in range(3)]
    session.add_all([m1, m2, *cs])
    session.flush()
    session.add_all([
        ManagerAssignment(manager=m1, customer=cs[0]), ManagerAssignment(manager=m1, customer=cs[2]),
        ManagerAssignment(manager=m2, customer=cs[1]), ManagerAssignment(manager=m2, customer=cs[2]),
    ])
    session.commit()
    assert [c.code for c in manager_portfolio(session, "mgr1")] == ["K0", "K2"]
    assert [m.code for m in managers_of_customer(session, "K2")] == ["mgr1", "mgr2"]
    with pytest.raises(RegistryLookupError, match="nobody"):
        manager_portfolio(session, "nobody")
    with pytest.raises(RegistryLookupError, match="ZZ"):
        customer_by_code(session, "ZZ")


def test_migrated_schema_matches_models(db_url: str) -> None:
    """A model change without a new migration revision fails here (autogenerate finds a difference)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from crm_bridge.registry.models import Base

    migrate(db_url)
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diffs == []


def test_tariff_versions_do_not_overlap(session: Session) -> None:
    from crm_bridge.registry.repo import add_tariff_version, tariff_at

    add_tariff_version(session, "HV", date(2025, 1, 1), {"v": 1})
    add_tariff_version(session, "HV", date(2026, 7, 1), {"v": 2})
    session.commit()
    assert tariff_at(session, "HV", date(2026, 6, 30)).document == {"v": 1}
    assert tariff_at(session, "HV", date(2026, 7, 1)).document == {"v": 2}
    with pytest.raises(RegistryLookupError, match="2024-12-31"):
        tariff_at(session, "HV", date(2024, 12, 31))
    with pytest.raises(ValueError, match="does not follow"):
        add_tariff_version(session, "HV", date(2026, 1, 1), {"v": 3})
