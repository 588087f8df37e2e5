"""Contract history: versions that close each other, and the one rule that picks the version billing a month."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.orm import Session

from crm_bridge.registry.models import CONTRACT_EPOCH, Contract, Customer
from crm_bridge.registry.repo import add_contract_version, contract_versions
from crm_bridge.services.inputs import contract_in_force


def _terms(demand: float, valid_from: date) -> Contract:
    return Contract(transformer_kva=4000.0, contract_demand_kw=demand, basic_charge_mode="contract",
                    tariff_id="guangdong-1-10kv", valid_from=valid_from)


def test_a_new_version_closes_the_open_one_and_history_is_not_rewritten(session: Session) -> None:
    acme = Customer(code="acme", name="Acme", timezone="Asia/Shanghai")
    session.add(acme)
    session.flush()
    first = add_contract_version(session, acme, _terms(2000.0, date(2026, 1, 1)))
    second = add_contract_version(session, acme, _terms(2600.0, date(2026, 7, 1)))
    assert (first.valid_to, second.valid_to) == (date(2026, 7, 1), None)
    assert [c.contract_demand_kw for c in contract_versions(session, "acme")] == [2000.0, 2600.0]
    assert acme.contract is second
    with pytest.raises(ValueError, match="does not follow the one from 2026-07-01"):
        add_contract_version(session, acme, _terms(1000.0, date(2026, 3, 1)))


def test_a_contract_without_a_start_holds_from_the_epoch(session: Session) -> None:
    acme = Customer(code="acme", name="Acme", timezone="Asia/Shanghai")
    acme.contract = Contract(transformer_kva=4000.0, contract_demand_kw=2000.0, basic_charge_mode="demand",
                             tariff_id="guangdong-1-10kv")
    session.add(acme)
    session.flush()
    assert acme.contract.valid_from == CONTRACT_EPOCH


def test_each_month_is_billed_by_the_version_in_force_on_its_first_day(session: Session) -> None:
    acme = Customer(code="acme", name="Acme", timezone="Asia/Shanghai")
    session.add(acme)
    session.flush()
    add_contract_version(session, acme, _terms(2000.0, date(2026, 2, 10)))  # first contract, mid-month
    add_contract_version(session, acme, _terms(2600.0, date(2026, 7, 1)))
    add_contract_version(session, acme, _terms(3000.0, date(2026, 9, 15)))  # a mid-month change
    versions = contract_versions(session, "acme")

    def demand(first: date, end: date) -> float | None:
        v = contract_in_force(versions, first, end)
        return None if v is None else v.contract_demand_kw

    assert demand(date(2026, 1, 1), date(2026, 2, 1)) is None
    assert demand(date(2026, 2, 1), date(2026, 3, 1)) == 2000.0  # the first one, from the month it starts
    assert demand(date(2026, 6, 1), date(2026, 7, 1)) == 2000.0
    assert demand(date(2026, 7, 1), date(2026, 8, 1)) == 2600.0
    assert demand(date(2026, 9, 1), date(2026, 10, 1)) == 2600.0  # the change counts from the next month
    assert demand(date(2026, 10, 1), date(2026, 11, 1)) == 3000.0
    assert demand(date(2026, 9, 20), None) == 3000.0  # a single day: the version in force that day
