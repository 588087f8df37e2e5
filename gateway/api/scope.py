"""Data scope, in one place: which customers a caller may see, and the owner of every id a route takes.

Every route that takes a customer, site, meter, device, alert or ticket id declares its parameter with one of the
types below (CustomerId, SiteId, MeterId, DeviceName, AlertId, TicketId). The dependency resolves the owning
customer and answers 404 when the caller may not see it, the same answer as for an id that does not exist, so a
caller learns nothing about other customers. Routes never check ownership themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session

from gateway.api.deps import CurrentPrincipal, client_of, get_auth, get_gw
from gateway.api.errors import not_found
from gateway.auth import AuthService, Principal
from gateway.runtime import Gateway
from gateway.usecases.accounts import Accounts
from gateway.usecases.desk import Actor, Desk

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"


@dataclass(frozen=True)
class Access:
    """The caller, the customers it may see (None: every customer) and the sites it is limited to (None: no limit).

    A site-limited engineer sees the customers owning its sites, and of their sites, meters and devices only those at
    its own sites (docs/registry.md, "Engineers limited to sites").
    """

    principal: Principal
    customers: frozenset[str] | None
    sites: frozenset[str] | None = None

    def sees(self, customer: str | None) -> bool:
        return customer is not None and (self.customers is None or customer in self.customers)

    def sees_site(self, gw: Gateway, site: str | None) -> bool:
        return (site is not None and self.sees(gw.directory.owner_of_site(site))
                and (self.sites is None or site in self.sites))

    def sees_meter(self, gw: Gateway, meter: str) -> bool:
        m = gw.directory.meters.get(meter)
        return m is not None and self.sees_site(gw, m.site)

    def sees_device(self, gw: Gateway, device: str) -> bool:
        """Engineers and admins see every device; a site-limited one only those whose every meter is at its sites."""
        if self.customers is not None and not self.sees(gw.directory.owner_of_device(device)):
            return False
        if self.sites is None:
            return True
        meters = [m for m in gw.directory.meters.values() if m.device == device]
        return bool(meters) and all(self.sees_site(gw, m.site) for m in meters)

    def visible(self, all_customers: list[str]) -> list[str]:
        return [c for c in all_customers if self.sees(c)]


def get_access(p: CurrentPrincipal, auth: Annotated[AuthService, Depends(get_auth)]) -> Access:
    return Access(p, auth.visible_customers(p), p.sites)


AccessDep = Annotated[Access, Depends(get_access)]
GatewayDep = Annotated[Gateway, Depends(get_gw)]


def get_session(gw: GatewayDep) -> Iterator[Session]:
    """One registry session per request, closed when the response is sent (use cases commit what they change)."""
    with gw.db() as s:
        yield s


SessionDep = Annotated[Session, Depends(get_session)]


def get_actor(access: AccessDep, request: Request) -> Actor:
    """The caller as the use cases know it: name, role, own account, the accounts it sees, its address."""
    p = access.principal
    return Actor(p.username, p.role, p.customer, access.customers, client_of(request))


ActorDep = Annotated[Actor, Depends(get_actor)]


def get_desk(session: SessionDep, auth: Annotated[AuthService, Depends(get_auth)]) -> Desk:
    return Desk(session, auth.audit)


DeskDep = Annotated[Desk, Depends(get_desk)]


def get_accounts(session: SessionDep, auth: Annotated[AuthService, Depends(get_auth)]) -> Accounts:
    return Accounts(session, auth.audit)


AccountsDep = Annotated[Accounts, Depends(get_accounts)]


def _customer(customer_id: Annotated[str, Path(pattern=_ID, description="Customer id")], access: AccessDep,
              gw: GatewayDep) -> str:
    if customer_id not in gw.directory.customers or not access.sees(customer_id):
        raise not_found("customer", customer_id)
    return customer_id


def _site(site_id: Annotated[str, Path(pattern=_ID, description="Site id")], access: AccessDep, gw: GatewayDep) -> str:
    if not access.sees_site(gw, site_id):
        raise not_found("site", site_id)
    return site_id


def _meter(meter_id: Annotated[str, Path(pattern=_ID, description="Meter id")], access: AccessDep,
           gw: GatewayDep) -> str:
    if not access.sees_meter(gw, meter_id):
        raise not_found("meter", meter_id)
    return meter_id


def _device(device: Annotated[str, Path(pattern=_ID, description="Device name")], access: AccessDep,
            gw: GatewayDep) -> str:
    if device not in gw.directory.devices:
        raise not_found("device", device)
    # Devices are the engineers' (who see all, or those at their sites); others only through a meter they own.
    if not access.sees_device(gw, device):
        raise not_found("device", device)
    return device


def _alert(alert_id: Annotated[int, Path(ge=1, le=2**62, description="Alert id")], access: AccessDep,
           desk: DeskDep) -> int:
    if not access.sees(desk.owner_of_alert(alert_id)):
        raise not_found("alert", alert_id)
    return alert_id


def _ticket(ticket_id: Annotated[int, Path(ge=1, le=2**62, description="Ticket id")], access: AccessDep,
            desk: DeskDep) -> int:
    if not access.sees(desk.owner_of_ticket(ticket_id)):
        raise not_found("ticket", ticket_id)
    return ticket_id


CustomerId = Annotated[str, Depends(_customer)]
SiteId = Annotated[str, Depends(_site)]
MeterId = Annotated[str, Depends(_meter)]
DeviceName = Annotated[str, Depends(_device)]
AlertId = Annotated[int, Depends(_alert)]
TicketId = Annotated[int, Depends(_ticket)]


def customer_in_scope(access: Access, gw: Gateway, customer_id: str) -> str:
    """For ids that arrive in a body or query (not the path): the same rule as CustomerId."""
    if customer_id not in {c.id for c in gw.config.customers} or not access.sees(customer_id):
        raise not_found("customer", customer_id)
    return customer_id
