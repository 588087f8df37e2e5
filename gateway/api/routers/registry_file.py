"""The registry's customer file: contract versions, equipment and its inspections, contacts.

Thin: every route calls `gateway.usecases.registry.Registry`, which holds the role rule and writes the audit log.
Engineers read equipment and inspections (the plants they look after); changes are the admin's and the account
managers' (their own accounts).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from gateway.api.roles import Capability, needs
from gateway.api.routers.registry_scope import (
    ContactId,
    ContractId,
    EquipmentId,
    InspectionId,
    RegCustomerId,
    RegistryDep,
    needs_any,
)
from gateway.api.schemas.registry import (
    ContactCreate,
    ContactPublic,
    ContactUpdate,
    ContractCreate,
    ContractEnd,
    ContractPublic,
    ContractUpdate,
    EquipmentCreate,
    EquipmentPublic,
    EquipmentUpdate,
    InspectionCreate,
    InspectionPublic,
    InspectionUpdate,
)
from gateway.api.scope import ActorDep

router = APIRouter(prefix="/api/v1/registry", tags=["registry"])
FILE = [needs(Capability.CUSTOMER_FILE)]
EQUIPMENT_READERS = [needs_any(Capability.CUSTOMER_FILE, Capability.DEVICES)]
RetireOn = Annotated[date | None, Query(description="The day it leaves service (default today)")]


@router.get("/customers/{customer_id}/contracts", dependencies=FILE)
def list_contracts(customer_id: RegCustomerId, registry: RegistryDep, actor: ActorDep) -> list[ContractPublic]:
    """Every version of the customer's contract, oldest first; each month is billed by the version in force."""
    return registry.contracts(actor, customer_id)


@router.post("/customers/{customer_id}/contracts", status_code=201, dependencies=FILE)
def create_contract(customer_id: RegCustomerId, body: ContractCreate, registry: RegistryDep,
                    actor: ActorDep) -> ContractPublic:
    """A new version from `valid_from`: the version in force then closes on that day."""
    return registry.create_contract(actor, customer_id, body)


@router.get("/contracts/{contract_id}", dependencies=FILE)
def get_contract(contract_id: ContractId, registry: RegistryDep, actor: ActorDep) -> ContractPublic:
    return registry.get_contract(actor, contract_id)


@router.patch("/contracts/{contract_id}", dependencies=FILE)
def update_contract(contract_id: ContractId, body: ContractUpdate, registry: RegistryDep,
                    actor: ActorDep) -> ContractPublic:
    """Correct a version's terms (a change from a date is a new version)."""
    return registry.update_contract(actor, contract_id, body)


@router.post("/contracts/{contract_id}/end", dependencies=FILE)
def end_contract(contract_id: ContractId, body: ContractEnd, registry: RegistryDep,
                 actor: ActorDep) -> ContractPublic:
    """End a version on `valid_to` (the customer has no contract from then until a new version starts)."""
    return registry.end_contract(actor, contract_id, body.valid_to)


@router.get("/customers/{customer_id}/equipment", dependencies=EQUIPMENT_READERS)
def list_equipment(customer_id: RegCustomerId, registry: RegistryDep, actor: ActorDep) -> list[EquipmentPublic]:
    return registry.equipment(actor, customer_id)


@router.post("/customers/{customer_id}/equipment", status_code=201, dependencies=FILE)
def create_equipment(customer_id: RegCustomerId, body: EquipmentCreate, registry: RegistryDep,
                     actor: ActorDep) -> EquipmentPublic:
    return registry.create_equipment(actor, customer_id, body)


@router.get("/equipment/{equipment_id}", dependencies=EQUIPMENT_READERS)
def get_equipment(equipment_id: EquipmentId, registry: RegistryDep, actor: ActorDep) -> EquipmentPublic:
    return registry.get_equipment(actor, equipment_id)


@router.patch("/equipment/{equipment_id}", dependencies=FILE)
def update_equipment(equipment_id: EquipmentId, body: EquipmentUpdate, registry: RegistryDep,
                     actor: ActorDep) -> EquipmentPublic:
    return registry.update_equipment(actor, equipment_id, body)


@router.delete("/equipment/{equipment_id}", dependencies=FILE)
def retire_equipment(equipment_id: EquipmentId, registry: RegistryDep, actor: ActorDep,
                     on: RetireOn = None) -> EquipmentPublic:
    return registry.retire_equipment(actor, equipment_id, on)


@router.get("/equipment/{equipment_id}/inspections", dependencies=EQUIPMENT_READERS)
def list_inspections(equipment_id: EquipmentId, registry: RegistryDep, actor: ActorDep) -> list[InspectionPublic]:
    return registry.inspections(actor, equipment_id)


@router.post("/equipment/{equipment_id}/inspections", status_code=201, dependencies=FILE)
def add_inspection(equipment_id: EquipmentId, body: InspectionCreate, registry: RegistryDep,
                   actor: ActorDep) -> InspectionPublic:
    """Record an inspection: the day, the findings and when the next one is due."""
    return registry.add_inspection(actor, equipment_id, body)


@router.patch("/inspections/{inspection_id}", dependencies=FILE)
def update_inspection(inspection_id: InspectionId, body: InspectionUpdate, registry: RegistryDep,
                      actor: ActorDep) -> InspectionPublic:
    return registry.update_inspection(actor, inspection_id, body)


@router.get("/customers/{customer_id}/contacts", dependencies=FILE)
def list_contacts(customer_id: RegCustomerId, registry: RegistryDep, actor: ActorDep) -> list[ContactPublic]:
    return registry.contacts(actor, customer_id)


@router.post("/customers/{customer_id}/contacts", status_code=201, dependencies=FILE)
def create_contact(customer_id: RegCustomerId, body: ContactCreate, registry: RegistryDep,
                   actor: ActorDep) -> ContactPublic:
    return registry.create_contact(actor, customer_id, body)


@router.patch("/contacts/{contact_id}", dependencies=FILE)
def update_contact(contact_id: ContactId, body: ContactUpdate, registry: RegistryDep,
                   actor: ActorDep) -> ContactPublic:
    return registry.update_contact(actor, contact_id, body)


@router.delete("/contacts/{contact_id}", dependencies=FILE)
def retire_contact(contact_id: ContactId, registry: RegistryDep, actor: ActorDep,
                   on: RetireOn = None) -> ContactPublic:
    return registry.retire_contact(actor, contact_id, on)
