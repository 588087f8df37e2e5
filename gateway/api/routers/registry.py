"""The registry's accounts: create, change and retire customers, sites, meters (and their moves), account managers.

Thin: every route calls `gateway.usecases.registry.Registry`, which holds the role rule and writes the audit log.
Retiring keeps the row (history and the audit log name it) and answers it with its `retired_on`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query

from gateway.api.deps import Page, PageParams, page_of
from gateway.api.roles import Capability, needs
from gateway.api.routers.registry_scope import RegCustomerId, RegistryDep, RegMeterId, RegSiteId
from gateway.api.schemas.registry import (
    CODE,
    CustomerCreate,
    CustomerPublic,
    CustomerUpdate,
    ManagerCreate,
    ManagerLinks,
    ManagerPublic,
    ManagersOfCustomer,
    ManagerUpdate,
    MeterCreate,
    MeterMove,
    MeterPublic,
    MeterUpdate,
    SiteCreate,
    SitePublic,
    SiteUpdate,
)
from gateway.api.scope import ActorDep

router = APIRouter(prefix="/api/v1/registry", tags=["registry"], dependencies=[needs(Capability.CUSTOMER_FILE)])
RetireOn = Annotated[date | None, Query(description="The day it leaves service (default today)")]
ManagerCode = Annotated[str, Path(pattern=CODE, description="Account-manager code")]


@router.get("/customers")
def list_customers(registry: RegistryDep, actor: ActorDep, page: PageParams) -> Page[CustomerPublic]:
    """The customers the caller sees, retired ones included (with `retired_on`)."""
    return page_of(registry.customers(actor), page)


@router.post("/customers", status_code=201)
def create_customer(body: CustomerCreate, registry: RegistryDep, actor: ActorDep) -> CustomerPublic:
    """A new customer; an account manager's new customer is linked to it."""
    return registry.create_customer(actor, body)


@router.get("/customers/{customer_id}")
def get_customer(customer_id: RegCustomerId, registry: RegistryDep, actor: ActorDep) -> CustomerPublic:
    return registry.get_customer(actor, customer_id)


@router.patch("/customers/{customer_id}")
def update_customer(customer_id: RegCustomerId, body: CustomerUpdate, registry: RegistryDep,
                    actor: ActorDep) -> CustomerPublic:
    return registry.update_customer(actor, customer_id, body)


@router.delete("/customers/{customer_id}")
def retire_customer(customer_id: RegCustomerId, registry: RegistryDep, actor: ActorDep,
                    on: RetireOn = None) -> CustomerPublic:
    return registry.retire_customer(actor, customer_id, on)


@router.get("/customers/{customer_id}/sites")
def list_sites(customer_id: RegCustomerId, registry: RegistryDep, actor: ActorDep) -> list[SitePublic]:
    return registry.sites(actor, customer_id)


@router.post("/customers/{customer_id}/sites", status_code=201)
def create_site(customer_id: RegCustomerId, body: SiteCreate, registry: RegistryDep, actor: ActorDep) -> SitePublic:
    return registry.create_site(actor, customer_id, body)


@router.get("/sites/{site_id}")
def get_site(site_id: RegSiteId, registry: RegistryDep, actor: ActorDep) -> SitePublic:
    return registry.get_site(actor, site_id)


@router.patch("/sites/{site_id}")
def update_site(site_id: RegSiteId, body: SiteUpdate, registry: RegistryDep, actor: ActorDep) -> SitePublic:
    return registry.update_site(actor, site_id, body)


@router.delete("/sites/{site_id}")
def retire_site(site_id: RegSiteId, registry: RegistryDep, actor: ActorDep, on: RetireOn = None) -> SitePublic:
    """Retire a site without meters installed (move or retire them first: 409 otherwise)."""
    return registry.retire_site(actor, site_id, on)


@router.get("/sites/{site_id}/meters")
def list_meters(site_id: RegSiteId, registry: RegistryDep, actor: ActorDep) -> list[MeterPublic]:
    """The meters installed at the site now."""
    return registry.meters(actor, site_id)


@router.post("/sites/{site_id}/meters", status_code=201)
def create_meter(site_id: RegSiteId, body: MeterCreate, registry: RegistryDep, actor: ActorDep) -> MeterPublic:
    """A new meter, installed at the site from `valid_from`."""
    return registry.create_meter(actor, site_id, body)


@router.get("/meters/{meter_id}")
def get_meter(meter_id: RegMeterId, registry: RegistryDep, actor: ActorDep) -> MeterPublic:
    """The meter with every site it has been installed at."""
    return registry.get_meter(actor, meter_id)


@router.patch("/meters/{meter_id}")
def update_meter(meter_id: RegMeterId, body: MeterUpdate, registry: RegistryDep, actor: ActorDep) -> MeterPublic:
    return registry.update_meter(actor, meter_id, body)


@router.put("/meters/{meter_id}/site")
def move_meter(meter_id: RegMeterId, body: MeterMove, registry: RegistryDep, actor: ActorDep) -> MeterPublic:
    """Install the meter at another site from a date (its current assignment closes that day)."""
    return registry.move_meter(actor, meter_id, body)


@router.delete("/meters/{meter_id}")
def retire_meter(meter_id: RegMeterId, registry: RegistryDep, actor: ActorDep, on: RetireOn = None) -> MeterPublic:
    return registry.retire_meter(actor, meter_id, on)


@router.get("/customers/{customer_id}/managers")
def managers_of_customer(customer_id: RegCustomerId, registry: RegistryDep, actor: ActorDep) -> ManagersOfCustomer:
    return registry.managers_of(actor, customer_id)


@router.put("/customers/{customer_id}/managers")
def set_managers(customer_id: RegCustomerId, body: ManagerLinks, registry: RegistryDep,
                 actor: ActorDep) -> ManagersOfCustomer:
    """Make `managers` the customer's account managers (admin)."""
    return registry.set_managers(actor, customer_id, body.managers)


@router.get("/managers")
def list_managers(registry: RegistryDep, actor: ActorDep, page: PageParams) -> Page[ManagerPublic]:
    return page_of(registry.managers(actor), page)


@router.post("/managers", status_code=201)
def create_manager(body: ManagerCreate, registry: RegistryDep, actor: ActorDep) -> ManagerPublic:
    """A new account manager (admin)."""
    return registry.create_manager(actor, body)


@router.get("/managers/{manager_code}")
def get_manager(manager_code: ManagerCode, registry: RegistryDep, actor: ActorDep) -> ManagerPublic:
    return registry.get_manager(actor, manager_code)


@router.patch("/managers/{manager_code}")
def update_manager(manager_code: ManagerCode, body: ManagerUpdate, registry: RegistryDep,
                   actor: ActorDep) -> ManagerPublic:
    return registry.update_manager(actor, manager_code, body)


@router.delete("/managers/{manager_code}")
def retire_manager(manager_code: ManagerCode, registry: RegistryDep, actor: ActorDep,
                   on: RetireOn = None) -> ManagerPublic:
    """Retire an account manager (admin): its links to accounts end."""
    return registry.retire_manager(actor, manager_code, on)
