"""Who may do what, in one place: named capabilities and the roles that hold them.

The API routers, the portal pages and the use cases all ask this module (the API through the dependency in
`gateway/api/roles.py`), so a portal page or form is open exactly when the API route behind it is, and a use case
refuses what its route would. Which *customers* a caller sees is the other half of the rule (`Actor.customers`).
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    ENGINEER = "engineer"
    ACCOUNT_MANAGER = "account_manager"
    CUSTOMER = "customer"


class Capability(StrEnum):
    """Something a role may do; the value is what templates ask for (`can('money')`)."""

    METERED_DATA = "metered_data"  # customers, sites, meters, day curve, series, month energy/peak/PF, exports, alerts
    DEVICES = "devices"  # device health, points, live values, Modbus probe, OPC UA browse
    TARIFFS = "tariffs"  # the published tariff tables
    MONEY = "money"  # TOU costs, basic charge and PF adjustment in the month view; advice and services (money)
    CONTRACTS = "contracts"  # a customer's contract terms
    REPORTS = "reports"  # the monthly report, daily brief and portfolio report (PDF, HTML, XLSX)
    TICKETS = "tickets"  # open, follow, rate or reopen service requests
    TICKET_DESK = "ticket_desk"  # the queue: move any ticket it sees through the workflow, open one for an alert
    ALERT_ACKNOWLEDGE = "alert_acknowledge"
    ALERT_RESOLVE = "alert_resolve"
    CUSTOMER_FILE = "customer_file"  # the account file, its interaction log, the portfolio
    USERS = "users"  # users and the audit log


_ALL = frozenset(Role)
GRANTS: dict[Capability, frozenset[Role]] = {
    Capability.METERED_DATA: _ALL,
    Capability.DEVICES: frozenset({Role.ADMIN, Role.ENGINEER}),
    Capability.TARIFFS: _ALL,
    Capability.MONEY: frozenset({Role.ADMIN, Role.ACCOUNT_MANAGER, Role.CUSTOMER}),
    Capability.CONTRACTS: frozenset({Role.ADMIN, Role.ACCOUNT_MANAGER, Role.CUSTOMER}),
    Capability.REPORTS: frozenset({Role.ADMIN, Role.ACCOUNT_MANAGER, Role.CUSTOMER}),
    Capability.TICKETS: frozenset({Role.ADMIN, Role.ACCOUNT_MANAGER, Role.CUSTOMER}),
    Capability.TICKET_DESK: frozenset({Role.ADMIN, Role.ACCOUNT_MANAGER}),
    Capability.ALERT_ACKNOWLEDGE: frozenset({Role.ADMIN, Role.ACCOUNT_MANAGER, Role.CUSTOMER}),
    Capability.ALERT_RESOLVE: frozenset({Role.ADMIN, Role.ACCOUNT_MANAGER, Role.ENGINEER}),
    Capability.CUSTOMER_FILE: frozenset({Role.ADMIN, Role.ACCOUNT_MANAGER}),
    Capability.USERS: frozenset({Role.ADMIN}),
}


def allowed(role: str, capability: Capability) -> bool:
    """True when `role` holds `capability`; an unknown role holds nothing."""
    return role in GRANTS[capability]


def capabilities_of(role: str) -> frozenset[Capability]:
    return frozenset(c for c in Capability if allowed(role, c))


__all__ = ["GRANTS", "Capability", "Role", "allowed", "capabilities_of"]
