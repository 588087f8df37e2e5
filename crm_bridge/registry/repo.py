"""Repository queries other parts need: customer by code, meters at a date, portfolios, contract and tariff versions."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from crm_bridge.errors import CrmError
from crm_bridge.registry.models import (
    AccountManager,
    Contract,
    Customer,
    ManagerAssignment,
    Meter,
    MeterAssignment,
    Site,
    TariffVersion,
)


class RegistryLookupError(CrmError, LookupError):
    """A code that names nothing in the registry."""


def customer_by_code(session: Session, code: str) -> Customer:
    """The customer with customer id `code`; RegistryLookupError naming the code if there is none."""
    customer = session.scalar(select(Customer).where(Customer.code == code))
    if customer is None:
        raise RegistryLookupError(f"no customer with code {code!r}")
    return customer


def meters_of_customer(session: Session, code: str, on: date) -> list[Meter]:
    """Meters assigned to any site of customer `code` on date `on` (valid_from <= on < valid_to)."""
    customer = customer_by_code(session, code)
    stmt = (
        select(Meter)
        .join(MeterAssignment, MeterAssignment.meter_id == Meter.id)
        .join(Site, Site.id == MeterAssignment.site_id)
        .where(
            Site.customer_id == customer.id,
            MeterAssignment.valid_from <= on,
            or_(MeterAssignment.valid_to.is_(None), MeterAssignment.valid_to > on),
        )
        .order_by(Meter.code)
        .distinct()
    )
    return list(session.scalars(stmt))


def assign_meter(session: Session, meter: Meter, site: Site, valid_from: date) -> MeterAssignment:
    """Install `meter` at `site` from `valid_from`, closing its open assignment (if any) on that date."""
    current = session.scalar(
        select(MeterAssignment).where(MeterAssignment.meter_id == meter.id, MeterAssignment.valid_to.is_(None))
    )
    if current is not None:
        if current.valid_from >= valid_from:
            raise ValueError(
                f"meter {meter.code!r}: new assignment from {valid_from} does not follow the open one "
                f"from {current.valid_from}"
            )
        current.valid_to = valid_from
    row = MeterAssignment(meter=meter, site=site, valid_from=valid_from)
    session.add(row)
    session.flush()
    return row


def manager_portfolio(session: Session, manager_code: str) -> list[Customer]:
    """Companies assigned to the account manager `manager_code`, by code."""
    manager = session.scalar(select(AccountManager).where(AccountManager.code == manager_code))
    if manager is None:
        raise RegistryLookupError(f"no account manager with code {manager_code!r}")
    stmt = (
        select(Customer)
        .join(ManagerAssignment, ManagerAssignment.customer_id == Customer.id)
        .where(ManagerAssignment.manager_id == manager.id)
        .order_by(Customer.code)
    )
    return list(session.scalars(stmt))


def managers_of_customer(session: Session, code: str) -> list[AccountManager]:
    """Account managers of customer `code`."""
    customer = customer_by_code(session, code)
    stmt = (
        select(AccountManager)
        .join(ManagerAssignment, ManagerAssignment.manager_id == AccountManager.id)
        .where(ManagerAssignment.customer_id == customer.id)
        .order_by(AccountManager.code)
    )
    return list(session.scalars(stmt))


def add_tariff_version(
    session: Session, tariff_id: str, valid_from: date, document: dict[str, Any], valid_to: date | None = None
) -> TariffVersion:
    """Store a new tariff version; the previous open-ended version is closed on `valid_from`.

    Refuses a version that does not start after the newest one (versions never overlap).
    """
    if valid_to is not None and valid_to <= valid_from:
        raise ValueError(f"tariff {tariff_id!r}: valid_to {valid_to} is not after valid_from {valid_from}")
    latest = session.scalar(
        select(TariffVersion).where(TariffVersion.tariff_id == tariff_id).order_by(TariffVersion.valid_from.desc())
    )
    if latest is not None:
        if latest.valid_from >= valid_from:
            raise ValueError(
                f"tariff {tariff_id!r}: new version from {valid_from} does not follow the one from {latest.valid_from}"
            )
        if latest.valid_to is None or latest.valid_to > valid_from:
            latest.valid_to = valid_from
    row = TariffVersion(tariff_id=tariff_id, valid_from=valid_from, valid_to=valid_to, document=document)
    session.add(row)
    session.flush()
    return row


def tariff_at(session: Session, tariff_id: str, on: date) -> TariffVersion:
    """The version of `tariff_id` in force on `on`; RegistryLookupError naming both if none."""
    row = session.scalar(
        select(TariffVersion).where(
            TariffVersion.tariff_id == tariff_id,
            TariffVersion.valid_from <= on,
            or_(TariffVersion.valid_to.is_(None), TariffVersion.valid_to > on),
        )
    )
    if row is None:
        raise RegistryLookupError(f"no version of tariff {tariff_id!r} in force on {on}")
    return row


def contract_versions(session: Session, code: str) -> list[Contract]:
    """Every contract version of customer `code`, oldest first (empty for a customer not in the registry)."""
    stmt = (select(Contract).join(Customer, Customer.id == Contract.customer_id).where(Customer.code == code)
            .order_by(Contract.valid_from))
    return list(session.scalars(stmt))


def add_contract_version(session: Session, customer: Customer, contract: Contract) -> Contract:
    """Add `contract` (its valid_from set) as the customer's newest version, closing the open one on that date.

    Refuses a version that does not start after the newest one: versions never overlap and history is not rewritten.
    """
    latest = session.scalar(select(Contract).where(Contract.customer_id == customer.id)
                            .order_by(Contract.valid_from.desc()))
    if latest is not None:
        if latest.valid_from >= contract.valid_from:
            raise ValueError(f"customer {customer.code!r}: a contract from {contract.valid_from} does not follow "
                             f"the one from {latest.valid_from}")
        if latest.valid_to is None or latest.valid_to > contract.valid_from:
            latest.valid_to = contract.valid_from
    customer.contracts.append(contract)
    session.flush()
    return contract


def tariff_version_rows(session: Session, tariff_id: str | None = None) -> list[TariffVersion]:
    """Every stored tariff version (of `tariff_id` only, when given), by tariff and valid_from."""
    stmt = select(TariffVersion).order_by(TariffVersion.tariff_id, TariffVersion.valid_from)
    if tariff_id is not None:
        stmt = stmt.where(TariffVersion.tariff_id == tariff_id)
    return list(session.scalars(stmt))


def insert_tariff_versions(session: Session, tariff_id: str,
                           versions: list[tuple[date, date | None, dict[str, Any]]]) -> list[TariffVersion]:
    """Store versions (valid_from, valid_to, document) already checked to fit the history, before or after it.

    The check is the caller's (`crm_bridge.tariffs.versions.plan_import`); here an open-ended row that now has a
    successor is closed on the successor's first day, so `tariff_at` finds exactly one version for every day.
    """
    added = [TariffVersion(tariff_id=tariff_id, valid_from=f, valid_to=t, document=d) for f, t, d in versions]
    session.add_all(added)
    session.flush()
    rows = tariff_version_rows(session, tariff_id)
    for row, nxt in zip(rows, rows[1:], strict=False):
        if row.valid_to is None:
            row.valid_to = nxt.valid_from
    session.flush()
    return added
