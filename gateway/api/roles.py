"""Who may do what, in one place: named capabilities, the roles that hold them, and the dependency that checks.

The API routers and the portal pages both ask this module, so a portal page or form is open exactly when the API
route behind it is. Which *customers* a caller sees is the other half of the rule, in `gateway/api/scope.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import cache
from typing import Any

from fastapi import Depends

from gateway.api.deps import CurrentPrincipal
from gateway.api.errors import forbidden
from gateway.auth import Principal


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
    REPORTS = "reports"  # the monthly customer report (HTML, XLSX)
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


@cache
def require(capability: Capability) -> Callable[[Principal], Principal]:
    """A dependency answering 403 unless the caller's role holds `capability` (401 when nobody is logged in)."""

    def check(p: CurrentPrincipal) -> Principal:
        if not allowed(p.role, capability):
            roles = ", ".join(sorted(GRANTS[capability]))
            raise forbidden(f"role {p.role} may not use this ({capability.value}); allowed: {roles}")
        return p

    check.__name__ = f"require_{capability.value}"
    return check


def needs(capability: Capability) -> Any:
    """For `dependencies=[needs(Capability.X)]` on a router or route."""
    return Depends(require(capability))


__all__ = ["GRANTS", "Capability", "Role", "allowed", "capabilities_of", "needs", "require"]
