"""The migration chain with data in it, on SQLite and a real PostgreSQL: every row survives every revision."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from crm_bridge.registry import downgrade, make_engine, migrate
from crm_bridge.registry.models import AlertPeriodMark, Contract, Customer, Site, Ticket

# Rows as revision 0001 stored them: the "company" names, a site whose name held the config's id and whose
# address held its name, and basic-charge modes in the two older spellings.
_AT_0001 = [
    "INSERT INTO company (id, code, name, timezone) VALUES (1, 'acme', 'Acme Steel', 'Asia/Shanghai'), "
    "(2, 'beta', 'Beta Paper', 'Asia/Shanghai')",
    "INSERT INTO site (id, company_id, name, address) VALUES (10, 1, 'acme-works', 'Acme Works 1'), "
    "(11, 2, 'beta-mill', NULL)",
    "INSERT INTO contract (id, company_id, transformer_kva, hv_motors_kw, contract_demand_kw, basic_charge_mode, "
    "pf_standard, tariff_id) VALUES (1, 1, 3200, 0, 2300, 'contract_demand', 0.9, 'cn-gd-10kv'), "
    "(2, 2, 1000, 0, 600, 'Max_Demand', 0.9, 'cn-gd-10kv')",
    "INSERT INTO ticket (id, company_id, kind, category, title, status, created_at, ack_target_min, "
    "resolve_target_min) VALUES (5, 2, 'request', 'billing', 'Why so high?', 'new', '2026-11-02 08:00:00+00', 60, 480)",
    "INSERT INTO alert_period_mark (id, rule, company_code, period) VALUES (1, 'bill_forecast', 'acme', '2026-11')",
]


def test_rows_written_at_the_first_schema_read_back_at_the_latest(db_url: str) -> None:
    migrate(db_url, "0001")
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            for statement in _AT_0001:
                conn.execute(text(statement))
        migrate(db_url)
        with Session(engine) as s:
            acme, beta = s.get(Customer, 1), s.get(Customer, 2)
            assert (acme.code, acme.name, beta.code) == ("acme", "Acme Steel", "beta")
            sites = {site.id: (site.code, site.name, site.address, site.customer.code) for site in s.query(Site)}
            assert sites == {10: ("acme-works", "Acme Works 1", None, "acme"), 11: ("beta-mill", None, None, "beta")}
            modes = {c.customer.code: c.basic_charge_mode for c in s.query(Contract)}
            assert modes == {"acme": "contract", "beta": "demand"}
            ticket = s.get(Ticket, 5)
            assert (ticket.customer_id, ticket.title) == (2, "Why so high?")
            mark = s.query(AlertPeriodMark).one()
            assert (mark.customer_code, mark.period) == ("acme", "2026-11")
        # The foreign keys follow the renamed table: the database still cascades a deleted customer to its rows.
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM customer WHERE code = 'beta'"))
            assert conn.execute(text("SELECT count(*) FROM site WHERE id = 11")).scalar() == 0
            assert conn.execute(text("SELECT count(*) FROM ticket WHERE id = 5")).scalar() == 0
            assert conn.execute(text("SELECT count(*) FROM contract")).scalar() == 1
    finally:
        engine.dispose()


def test_the_chain_goes_back_down_and_up_again(db_url: str) -> None:
    migrate(db_url)
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO customer (id, code, name, timezone) VALUES (1, 'acme', 'Acme', 'UTC')"))
            conn.execute(text("INSERT INTO site (id, customer_id, code, name) VALUES (3, 1, 'w1', 'Works 1')"))
        downgrade(db_url, "0001")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT name, address FROM site WHERE company_id = 1")).one() == ("w1", "Works 1")
        migrate(db_url)
        with Session(engine) as s:
            site = s.get(Site, 3)
            assert (site.code, site.name, site.customer.code) == ("w1", "Works 1", "acme")
    finally:
        engine.dispose()

