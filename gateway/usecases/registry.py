"""Entering and changing the registry, in one place: customers, sites, meters, managers, contracts, equipment, contacts.

The API routers (and the bulk import) call these. The role rule: an admin changes everything; an account manager
changes the accounts it manages (a customer it creates is linked to it); account managers and their links are the
admin's; engineers read equipment and inspections. Which customers a caller sees is `Actor.customers`: an id outside
them is NotFound, as for one that does not exist. Nothing is deleted: customers, sites, meters, contacts, managers and
equipment are retired (kept with `retired_on`, since history and the audit log name them), a meter's move closes its
assignment, and a contract's new version closes the previous one. Every change is audited: who, what, when.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from sqlalchemy import select

from crm_bridge.registry.models import (
    Contact,
    Contract,
    Customer,
    Equipment,
    Inspection,
    Site,
)
from crm_bridge.registry.repo import add_contract_version
from gateway.api.schemas.registry import (
    ContactCreate,
    ContactPublic,
    ContactUpdate,
    ContractCreate,
    ContractPublic,
    ContractTerms,
    ContractUpdate,
    EquipmentCreate,
    EquipmentPublic,
    EquipmentUpdate,
    InspectionCreate,
    InspectionPublic,
    InspectionUpdate,
)
from gateway.usecases.desk import Actor
from gateway.usecases.errors import BadInput, Conflict
from gateway.usecases.registry_core import RegistryCore, _changes, contract_problems


class Registry(RegistryCore):
    """The registry's create, change and retire operations on one session; `audit` records every change."""

    # -- contracts ----------------------------------------------------------------------------------------------
    @staticmethod
    def _contract_public(k: Contract) -> ContractPublic:
        return ContractPublic.model_validate({**{f: getattr(k, f) for f in ContractPublic.model_fields
                                                 if f != "customer"}, "customer": k.customer.code})

    def contracts(self, actor: Actor, customer: str) -> list[ContractPublic]:
        self._reader(actor)
        return [self._contract_public(k) for k in self.customer(actor, customer).contracts]

    def get_contract(self, actor: Actor, ident: int) -> ContractPublic:
        self._reader(actor)
        return self._contract_public(self.owned(actor, Contract, ident, "contract_id"))

    def _tariff_ids(self) -> list[str]:
        from gateway.usecases.tariffs import Tariffs

        return Tariffs(self.s, self._audit).ids()

    def create_contract(self, actor: Actor, customer: str, new: ContractCreate) -> ContractPublic:
        """A new version from `valid_from`; the version open then is closed on that day."""
        self._writer(actor)
        c = self.customer(actor, customer)
        if problems := contract_problems(new, tariffs=self._tariff_ids()):
            raise BadInput(f"{problems[0][0]}: {problems[0][1]}", where=problems[0][0])
        k = Contract(**new.model_dump())
        try:
            add_contract_version(self.s, c, k)
        except ValueError as exc:
            self.s.rollback()
            raise Conflict(f"body.valid_from: {exc}", where="body.valid_from") from None
        self._done(actor, "contract.create", f"customer:{customer}", new.model_dump_json())
        return self._contract_public(k)

    def update_contract(self, actor: Actor, ident: int, update: ContractUpdate) -> ContractPublic:
        self._writer(actor)
        k = self.owned(actor, Contract, ident, "contract_id")
        merged = ContractTerms.model_validate({**self._contract_public(k).model_dump(
            include=set(ContractTerms.model_fields)), **update.model_dump(exclude_unset=True)})
        if problems := contract_problems(merged, tariffs=self._tariff_ids()):
            raise BadInput(f"{problems[0][0]}: {problems[0][1]}", where=problems[0][0])
        changed = _changes(k, update)
        self._done(actor, "contract.update", f"contract:{ident}", "; ".join(changed) or "no change")
        return self._contract_public(k)

    def end_contract(self, actor: Actor, ident: int, valid_to: date) -> ContractPublic:
        self._writer(actor)
        k = self.owned(actor, Contract, ident, "contract_id")
        if valid_to <= k.valid_from:
            raise BadInput(f"body.valid_to: {valid_to} is not after the start {k.valid_from}", where="body.valid_to")
        if k.valid_to is not None and valid_to > k.valid_to:
            raise Conflict(f"contract {ident} ended on {k.valid_to} already", where="body.valid_to")
        k.valid_to = valid_to
        self._done(actor, "contract.end", f"contract:{ident}", f"valid_to={valid_to}")
        return self._contract_public(k)

    # -- equipment and inspections -------------------------------------------------------------------------------
    def _equipment_public(self, e: Equipment) -> EquipmentPublic:
        site = None if e.site_id is None else self.s.get(Site, e.site_id)
        due = [i.next_due for i in e.inspections if i.next_due is not None]
        return EquipmentPublic(id=e.id, customer=e.customer.code, site=site.code if site else None, kind=e.kind,
                               name=e.name, rating=e.rating, rating_unit=e.rating_unit, retired_on=e.retired_on,
                               next_due=max(due) if due else None)

    def _site_of(self, actor: Actor, customer: Customer, code: str | None) -> int | None:
        if code is None:
            return None
        site = self.site_row(actor, code, where="body.site")
        if site.customer_id != customer.id:
            raise BadInput(f"body.site: site {code!r} is not a site of {customer.code!r}", where="body.site")
        return site.id

    def equipment(self, actor: Actor, customer: str) -> list[EquipmentPublic]:
        self._reader(actor, equipment=True)
        c = self.customer(actor, customer)
        rows = self.s.scalars(select(Equipment).where(Equipment.customer_id == c.id).order_by(Equipment.id))
        return [self._equipment_public(e) for e in rows]

    def get_equipment(self, actor: Actor, ident: int) -> EquipmentPublic:
        self._reader(actor, equipment=True)
        return self._equipment_public(self.owned(actor, Equipment, ident, "equipment_id"))

    def create_equipment(self, actor: Actor, customer: str, new: EquipmentCreate) -> EquipmentPublic:
        self._writer(actor)
        c = self.customer(actor, customer)
        e = Equipment(customer_id=c.id, site_id=self._site_of(actor, c, new.site), kind=new.kind, name=new.name,
                      rating=new.rating, rating_unit=new.rating_unit)
        self.s.add(e)
        self.s.flush()
        self._done(actor, "equipment.create", f"equipment:{e.id}", f"customer={customer} {new.kind} {new.name}")
        return self._equipment_public(e)

    def update_equipment(self, actor: Actor, ident: int, update: EquipmentUpdate) -> EquipmentPublic:
        self._writer(actor)
        e = self.owned(actor, Equipment, ident, "equipment_id")
        fields = update.model_dump(exclude_unset=True)
        changed = []
        if "site" in fields:
            site_id = self._site_of(actor, e.customer, fields.pop("site"))
            if site_id != e.site_id:
                changed.append(f"site_id: {e.site_id} -> {site_id}")
                e.site_id = site_id
        for key in ("kind", "name"):
            if key in fields and fields[key] is None:
                raise BadInput(f"body.{key}: equipment keeps a {key}", where=f"body.{key}")
        changed += _changes(e, EquipmentUpdate.model_validate(fields))
        self._done(actor, "equipment.update", f"equipment:{ident}", "; ".join(changed) or "no change")
        return self._equipment_public(e)

    def retire_equipment(self, actor: Actor, ident: int, on: date | None) -> EquipmentPublic:
        self._writer(actor)
        e = self.owned(actor, Equipment, ident, "equipment_id")
        e.retired_on = on or self._today()
        self._done(actor, "equipment.retire", f"equipment:{ident}", f"retired_on={e.retired_on}")
        return self._equipment_public(e)

    @staticmethod
    def _inspection_public(i: Inspection) -> InspectionPublic:
        return InspectionPublic(id=i.id, equipment=i.equipment_id, kind=i.kind, at=i.at, result=i.result,
                                findings=i.notes, next_due=i.next_due)

    def inspections(self, actor: Actor, equipment: int) -> list[InspectionPublic]:
        self._reader(actor, equipment=True)
        e = self.owned(actor, Equipment, equipment, "equipment_id")
        return [self._inspection_public(i) for i in sorted(e.inspections, key=lambda i: i.at)]

    def add_inspection(self, actor: Actor, equipment: int, new: InspectionCreate) -> InspectionPublic:
        self._writer(actor)
        e = self.owned(actor, Equipment, equipment, "equipment_id")
        if new.next_due is not None and new.next_due <= new.on:
            raise BadInput(f"body.next_due: {new.next_due} is not after the inspection on {new.on}",
                           where="body.next_due")
        i = Inspection(equipment_id=e.id, kind=new.kind, at=datetime.combine(new.on, time(), UTC),
                       result=new.result, notes=new.findings, next_due=new.next_due)
        self.s.add(i)
        self.s.flush()
        self._done(actor, "inspection.add", f"equipment:{equipment}", f"inspection {i.id} on {new.on}")
        return self._inspection_public(i)

    def update_inspection(self, actor: Actor, ident: int, update: InspectionUpdate) -> InspectionPublic:
        self._writer(actor)
        i = self.owned(actor, Inspection, ident, "inspection_id")
        changed = _changes(i, update, renames={"findings": "notes"})
        self._done(actor, "inspection.update", f"inspection:{ident}", "; ".join(changed) or "no change")
        return self._inspection_public(i)

    # -- contacts -------------------------------------------------------------------------------------------------
    @staticmethod
    def _contact_public(x: Contact) -> ContactPublic:
        return ContactPublic(id=x.id, customer=x.customer.code, name=x.name, email=x.email, phone=x.phone,
                             role=x.role, retired_on=x.retired_on)

    def contacts(self, actor: Actor, customer: str) -> list[ContactPublic]:
        self._reader(actor)
        return [self._contact_public(x) for x in sorted(self.customer(actor, customer).contacts, key=lambda x: x.id)]

    def create_contact(self, actor: Actor, customer: str, new: ContactCreate) -> ContactPublic:
        self._writer(actor)
        c = self.customer(actor, customer)
        x = Contact(customer=c, **new.model_dump())
        self.s.add(x)
        self.s.flush()
        self._done(actor, "contact.create", f"contact:{x.id}", f"customer={customer} {new.name}")
        return self._contact_public(x)

    def update_contact(self, actor: Actor, ident: int, update: ContactUpdate) -> ContactPublic:
        self._writer(actor)
        x = self.owned(actor, Contact, ident, "contact_id")
        if "name" in update.model_fields_set and update.name is None:
            raise BadInput("body.name: a contact keeps a name", where="body.name")
        changed = _changes(x, update)
        self._done(actor, "contact.update", f"contact:{ident}", "; ".join(changed) or "no change")
        return self._contact_public(x)

    def retire_contact(self, actor: Actor, ident: int, on: date | None) -> ContactPublic:
        self._writer(actor)
        x = self.owned(actor, Contact, ident, "contact_id")
        x.retired_on = on or self._today()
        self._done(actor, "contact.retire", f"contact:{ident}", f"retired_on={x.retired_on}")
        return self._contact_public(x)


__all__ = ["Registry", "contract_problems"]


__all__ = ["Registry", "RegistryCore", "contract_problems"]
