"""The registry's core: customers, sites, meters and account managers, and the rules every change follows.

The role rule and what is never deleted are told in `gateway/usecases/registry.py`, which builds on this.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_bridge.registry.models import (
    AccountManager,
    Customer,
    Inspection,
    ManagerAssignment,
    Meter,
    MeterAssignment,
    Site,
)
from crm_bridge.registry.repo import assign_meter
from crm_bridge.tariffs.contract import contract_floor_kw
from crm_bridge.tariffs.model import available_tariffs
from crm_bridge.tariffs.power_factor import pf_standards
from gateway.api.schemas.registry import (
    ContractTerms,
    ContractUpdate,
    CustomerCreate,
    CustomerPublic,
    CustomerUpdate,
    ManagerCreate,
    ManagerPublic,
    ManagersOfCustomer,
    ManagerUpdate,
    MeterAssignmentPublic,
    MeterCreate,
    MeterMove,
    MeterPublic,
    MeterUpdate,
    SiteCreate,
    SitePublic,
    SiteUpdate,
)
from gateway.auth.models import User
from gateway.auth.roles import Capability, allowed
from gateway.usecases.desk import Actor, Audit
from gateway.usecases.errors import BadInput, Conflict, Forbidden, NotFound

R = TypeVar("R")


def contract_problems(terms: ContractTerms | ContractUpdate, where: str = "body",
                      tariffs: list[str] | None = None) -> list[tuple[str, str]]:
    """What the gateway cannot bill in a contract's terms, as (field path, reason): tariff, PF table, 40 % floor.

    `tariffs` are the ids that can bill (`gateway.usecases.tariffs.Tariffs.ids`: shipped and imported); default the
    shipped ones.
    """
    out: list[tuple[str, str]] = []
    known = available_tariffs() if tariffs is None else tariffs
    if terms.tariff_id is not None and terms.tariff_id not in known:
        out.append((f"{where}.tariff_id", f"unknown tariff {terms.tariff_id!r}; known: {', '.join(known)}"))
    if terms.pf_standard is not None and round(terms.pf_standard, 2) not in pf_standards():
        out.append((f"{where}.pf_standard", f"no PF adjustment table for {terms.pf_standard}; known: "
                                            f"{', '.join(f'{s:.2f}' for s in pf_standards())}"))
    if terms.transformer_kva is not None and terms.contract_demand_kw is not None:
        floor = contract_floor_kw(terms.transformer_kva, terms.hv_motors_kw or 0.0)
        if terms.contract_demand_kw < floor:
            out.append((f"{where}.contract_demand_kw",
                        f"{terms.contract_demand_kw:g} kW is below the floor of {floor:g} kW (40 % of "
                        f"{terms.transformer_kva:g} kVA + {terms.hv_motors_kw or 0.0:g} kW of HV motors)"))
    return out


def _changes(row: Any, update: BaseModel, renames: dict[str, str] | None = None) -> list[str]:
    """Apply the fields set in `update` to `row`; the audit's "field: old -> new" for each that changed."""
    out = []
    for key, value in update.model_dump(exclude_unset=True).items():
        attr = (renames or {}).get(key, key)
        old = getattr(row, attr)
        if old != value:
            setattr(row, attr, value)
            out.append(f"{key}: {old!r} -> {value!r}")
    return out


class RegistryCore:
    """Customers, sites, meters and account managers on one session; `audit` records every change.

    `gateway.usecases.registry.Registry` adds each account's file (contracts, equipment, inspections, contacts).
    """

    def __init__(self, session: Session, audit: Audit, today: Callable[[], date] = lambda: datetime.now(UTC).date()):
        self.s = session
        self._audit = audit
        self._today = today

    # -- the rule ------------------------------------------------------------------------------------
    @staticmethod
    def _writer(actor: Actor) -> None:
        if not allowed(actor.role, Capability.CUSTOMER_FILE):
            raise Forbidden(f"role {actor.role} may not change the registry")

    @staticmethod
    def _admin(actor: Actor) -> None:
        if not allowed(actor.role, Capability.USERS):
            raise Forbidden(f"role {actor.role} may not change account managers (admin only)")

    @staticmethod
    def _reader(actor: Actor, equipment: bool = False) -> None:
        if allowed(actor.role, Capability.CUSTOMER_FILE) or (equipment and allowed(actor.role, Capability.DEVICES)):
            return
        raise Forbidden(f"role {actor.role} may not read the registry")

    def _done(self, actor: Actor, action: str, target: str, detail: str | None = None) -> None:
        self.s.commit()
        self._audit(actor.username, f"registry.{action}", target, detail, actor.client)

    def customer(self, actor: Actor, code: str) -> Customer:
        """The customer `code` if the caller sees it; NotFound otherwise (the same for one that does not exist)."""
        row = self.s.scalar(select(Customer).where(Customer.code == code))
        if row is None or (actor.customers is not None and code not in actor.customers):
            raise NotFound(f"customer {code!r} not found", where="customer_id")
        return row

    def site_row(self, actor: Actor, code: str, where: str = "site_id") -> Site:
        """The site `code` if the caller sees its customer; NotFound otherwise."""
        row = self.s.scalar(select(Site).where(Site.code == code))
        if row is None or (actor.customers is not None and row.customer.code not in actor.customers):
            raise NotFound(f"site {code!r} not found", where=where)
        return row

    def meter_row(self, actor: Actor, code: str) -> Meter:
        """The meter `code` if the caller sees the customer it is installed at; NotFound otherwise."""
        row = self.s.scalar(select(Meter).where(Meter.code == code))
        if row is None or (actor.customers is not None and self.owner_of_meter(code) not in actor.customers):
            raise NotFound(f"meter {code!r} not found", where="meter_id")
        return row

    def owned(self, actor: Actor, kind: type[R], ident: int, where: str) -> R:
        """The row `ident` of `kind` if the caller sees its customer; NotFound (naming `where`) otherwise."""
        row = self.s.get(kind, ident)
        owner = None if row is None else self._owner(row)
        if row is None or (actor.customers is not None and owner not in actor.customers):
            raise NotFound(f"{where.removesuffix('_id')} {ident} not found", where=where)
        return row

    def _owner(self, row: Any) -> str | None:
        if isinstance(row, Inspection):
            return row.equipment.customer.code
        customer = self.s.get(Customer, row.customer_id)
        return None if customer is None else customer.code

    # -- owners, for the API's scope checks ------------------------------------------------------------
    def owner_of_site(self, code: str) -> str | None:
        return self.s.scalar(select(Customer.code).join(Site, Site.customer_id == Customer.id).where(Site.code == code))

    def owner_of_meter(self, code: str) -> str | None:
        """The customer of the site the meter is installed at now (None: unassigned or retired)."""
        return self.s.scalar(select(Customer.code).join(Site, Site.customer_id == Customer.id)
                             .join(MeterAssignment, MeterAssignment.site_id == Site.id)
                             .join(Meter, Meter.id == MeterAssignment.meter_id)
                             .where(Meter.code == code, MeterAssignment.valid_to.is_(None)))

    # -- customers ---------------------------------------------------------------------------------------
    def _customer_public(self, c: Customer) -> CustomerPublic:
        managers = self.s.scalars(select(AccountManager.code).join(ManagerAssignment, ManagerAssignment.manager_id
                                                                   == AccountManager.id)
                                  .where(ManagerAssignment.customer_id == c.id).order_by(AccountManager.code))
        return CustomerPublic(code=c.code, name=c.name, timezone=c.timezone, industry=c.industry,
                              annual_revenue=c.annual_revenue, retired_on=c.retired_on, managers=list(managers))

    def customers(self, actor: Actor) -> list[CustomerPublic]:
        self._reader(actor)
        rows = self.s.scalars(select(Customer).order_by(Customer.code))
        return [self._customer_public(c) for c in rows if actor.customers is None or c.code in actor.customers]

    def get_customer(self, actor: Actor, code: str) -> CustomerPublic:
        self._reader(actor)
        return self._customer_public(self.customer(actor, code))

    def create_customer(self, actor: Actor, new: CustomerCreate) -> CustomerPublic:
        self._writer(actor)
        if self.s.scalar(select(Customer.id).where(Customer.code == new.code)) is not None:
            raise Conflict(f"customer {new.code!r} exists already", where="body.code")
        manager_code = new.manager
        if actor.role != "admin":
            own = self.s.scalar(select(User.manager).where(User.username == actor.username))
            if manager_code is not None and manager_code != own:
                raise Forbidden("an account manager links the customers it creates to itself only")
            manager_code = own
        manager = None
        if manager_code is not None:
            manager = self.s.scalar(select(AccountManager).where(AccountManager.code == manager_code))
            if manager is None:
                raise BadInput(f"body.manager: no account manager {manager_code!r}", where="body.manager")
        c = Customer(code=new.code, name=new.name, timezone=new.timezone, industry=new.industry,
                     annual_revenue=new.annual_revenue)
        self.s.add(c)
        self.s.flush()
        if manager is not None:
            self.s.add(ManagerAssignment(manager_id=manager.id, customer_id=c.id))
        self._done(actor, "customer.create", f"customer:{new.code}", new.model_dump_json(exclude_none=True))
        return self._customer_public(c)

    def update_customer(self, actor: Actor, code: str, update: CustomerUpdate) -> CustomerPublic:
        self._writer(actor)
        c = self.customer(actor, code)
        if "name" in update.model_fields_set and update.name is None:
            raise BadInput("body.name: a customer keeps a name", where="body.name")
        changed = _changes(c, update)
        self._done(actor, "customer.update", f"customer:{code}", "; ".join(changed) or "no change")
        return self._customer_public(c)

    def retire_customer(self, actor: Actor, code: str, on: date | None) -> CustomerPublic:
        self._writer(actor)
        c = self.customer(actor, code)
        c.retired_on = on or self._today()
        self._done(actor, "customer.retire", f"customer:{code}", f"retired_on={c.retired_on}")
        return self._customer_public(c)

    # -- sites ------------------------------------------------------------------------------------------------
    @staticmethod
    def _site_public(s: Site) -> SitePublic:
        return SitePublic(code=s.code, customer=s.customer.code, name=s.name, address=s.address,
                          retired_on=s.retired_on)

    def sites(self, actor: Actor, customer: str) -> list[SitePublic]:
        self._reader(actor)
        c = self.customer(actor, customer)
        return [self._site_public(s) for s in sorted(c.sites, key=lambda s: s.code)]

    def get_site(self, actor: Actor, code: str) -> SitePublic:
        self._reader(actor)
        return self._site_public(self.site_row(actor, code))

    def create_site(self, actor: Actor, customer: str, new: SiteCreate) -> SitePublic:
        self._writer(actor)
        c = self.customer(actor, customer)
        if self.s.scalar(select(Site.id).where(Site.code == new.code)) is not None:
            raise Conflict(f"site {new.code!r} exists already", where="body.code")
        site = Site(customer=c, code=new.code, name=new.name, address=new.address)
        self.s.add(site)
        self._done(actor, "site.create", f"site:{new.code}", f"customer={customer}")
        return self._site_public(site)

    def update_site(self, actor: Actor, code: str, update: SiteUpdate) -> SitePublic:
        self._writer(actor)
        site = self.site_row(actor, code)
        changed = _changes(site, update)
        self._done(actor, "site.update", f"site:{code}", "; ".join(changed) or "no change")
        return self._site_public(site)

    def retire_site(self, actor: Actor, code: str, on: date | None) -> SitePublic:
        self._writer(actor)
        site = self.site_row(actor, code)
        day = on or self._today()
        if self.s.scalar(select(MeterAssignment.id).where(MeterAssignment.site_id == site.id,
                                                          MeterAssignment.valid_to.is_(None))) is not None:
            raise Conflict(f"site {code!r} still has meters installed: move or retire them first", where="site_id")
        site.retired_on = day
        self._done(actor, "site.retire", f"site:{code}", f"retired_on={day}")
        return self._site_public(site)

    # -- meters -----------------------------------------------------------------------------------------------
    def _meter_public(self, m: Meter) -> MeterPublic:
        rows = self.s.scalars(select(MeterAssignment).where(MeterAssignment.meter_id == m.id)
                              .order_by(MeterAssignment.valid_from))
        history = [MeterAssignmentPublic(site=a.site.code, valid_from=a.valid_from, valid_to=a.valid_to) for a in rows]
        now = next((a for a in history if a.valid_to is None), None)
        return MeterPublic(code=m.code, description=m.description, site=now.site if now else None,
                           customer=self.owner_of_site(now.site) if now else None, retired_on=m.retired_on,
                           assignments=history, role=m.role)

    def meters(self, actor: Actor, site: str) -> list[MeterPublic]:
        self._reader(actor)
        s = self.site_row(actor, site)
        rows = self.s.scalars(select(Meter).join(MeterAssignment, MeterAssignment.meter_id == Meter.id)
                              .where(MeterAssignment.site_id == s.id, MeterAssignment.valid_to.is_(None))
                              .order_by(Meter.code))
        return [self._meter_public(m) for m in rows]

    def get_meter(self, actor: Actor, code: str) -> MeterPublic:
        self._reader(actor)
        return self._meter_public(self.meter_row(actor, code))

    def create_meter(self, actor: Actor, site: str, new: MeterCreate) -> MeterPublic:
        self._writer(actor)
        s = self.site_row(actor, site)
        if self.s.scalar(select(Meter.id).where(Meter.code == new.code)) is not None:
            raise Conflict(f"meter {new.code!r} exists already", where="body.code")
        m = Meter(code=new.code, description=new.description)
        self.s.add(m)
        self.s.flush()
        assign_meter(self.s, m, s, new.valid_from or self._today())
        self._done(actor, "meter.create", f"meter:{new.code}", f"site={site}")
        return self._meter_public(m)

    def update_meter(self, actor: Actor, code: str, update: MeterUpdate) -> MeterPublic:
        self._writer(actor)
        m = self.meter_row(actor, code)
        changed = _changes(m, update)
        self._done(actor, "meter.update", f"meter:{code}", "; ".join(changed) or "no change")
        return self._meter_public(m)

    def move_meter(self, actor: Actor, code: str, move: MeterMove) -> MeterPublic:
        """Install the meter at another site from a date: its open assignment closes on that date."""
        self._writer(actor)
        m = self.meter_row(actor, code)
        target = self.site_row(actor, move.site, where="body.site")
        if m.retired_on is not None:
            raise Conflict(f"meter {code!r} was retired on {m.retired_on}", where="meter_id")
        try:
            assign_meter(self.s, m, target, move.valid_from or self._today())
        except ValueError as exc:
            raise BadInput(f"body.valid_from: {exc}", where="body.valid_from") from None
        self._done(actor, "meter.move", f"meter:{code}", f"site={move.site} from {move.valid_from or self._today()}")
        return self._meter_public(m)

    def retire_meter(self, actor: Actor, code: str, on: date | None) -> MeterPublic:
        self._writer(actor)
        m = self.meter_row(actor, code)
        day = on or self._today()
        for a in self.s.scalars(select(MeterAssignment).where(MeterAssignment.meter_id == m.id,
                                                              MeterAssignment.valid_to.is_(None))):
            if a.valid_from >= day:
                raise BadInput(f"body.on: {day} is not after the meter's installation on {a.valid_from}",
                               where="body.on")
            a.valid_to = day
        m.retired_on = day
        self._done(actor, "meter.retire", f"meter:{code}", f"retired_on={day}")
        return self._meter_public(m)

    # -- account managers and their accounts (admin) --------------------------------------------------------------
    def _manager_public(self, m: AccountManager) -> ManagerPublic:
        codes = self.s.scalars(select(Customer.code).join(ManagerAssignment, ManagerAssignment.customer_id
                                                          == Customer.id)
                               .where(ManagerAssignment.manager_id == m.id).order_by(Customer.code))
        return ManagerPublic(code=m.code, name=m.name, email=m.email, retired_on=m.retired_on, customers=list(codes))

    def _manager_row(self, code: str, where: str = "manager_code") -> AccountManager:
        row = self.s.scalar(select(AccountManager).where(AccountManager.code == code))
        if row is None:
            raise NotFound(f"account manager {code!r} not found", where=where)
        return row

    def managers(self, actor: Actor) -> list[ManagerPublic]:
        self._reader(actor)
        return [self._manager_public(m) for m in self.s.scalars(select(AccountManager).order_by(AccountManager.code))]

    def get_manager(self, actor: Actor, code: str) -> ManagerPublic:
        self._reader(actor)
        return self._manager_public(self._manager_row(code))

    def create_manager(self, actor: Actor, new: ManagerCreate) -> ManagerPublic:
        self._admin(actor)
        if self.s.scalar(select(AccountManager.id).where(AccountManager.code == new.code)) is not None:
            raise Conflict(f"account manager {new.code!r} exists already", where="body.code")
        m = AccountManager(code=new.code, name=new.name, email=new.email)
        self.s.add(m)
        self.s.flush()
        self._done(actor, "manager.create", f"manager:{new.code}", new.model_dump_json(exclude_none=True))
        return self._manager_public(m)

    def update_manager(self, actor: Actor, code: str, update: ManagerUpdate) -> ManagerPublic:
        self._admin(actor)
        m = self._manager_row(code)
        if "name" in update.model_fields_set and update.name is None:
            raise BadInput("body.name: an account manager keeps a name", where="body.name")
        changed = _changes(m, update)
        self._done(actor, "manager.update", f"manager:{code}", "; ".join(changed) or "no change")
        return self._manager_public(m)

    def retire_manager(self, actor: Actor, code: str, on: date | None) -> ManagerPublic:
        """Retire an account manager: its links end (its accounts need another manager)."""
        self._admin(actor)
        m = self._manager_row(code)
        m.retired_on = on or self._today()
        for link in self.s.scalars(select(ManagerAssignment).where(ManagerAssignment.manager_id == m.id)):
            self.s.delete(link)
        self._done(actor, "manager.retire", f"manager:{code}", f"retired_on={m.retired_on}")
        return self._manager_public(m)

    def managers_of(self, actor: Actor, customer: str) -> ManagersOfCustomer:
        self._reader(actor)
        return ManagersOfCustomer(customer=customer, managers=self._customer_public(self.customer(actor,
                                                                                                 customer)).managers)

    def set_managers(self, actor: Actor, customer: str, codes: Sequence[str]) -> ManagersOfCustomer:
        """Make `codes` the customer's account managers: links are added and removed to match."""
        self._admin(actor)
        c = self.customer(actor, customer)
        wanted = {code: self._manager_row(code, where=f"body.managers.{i}") for i, code in enumerate(codes)}
        for code, m in wanted.items():
            if m.retired_on is not None:
                raise BadInput(f"body.managers: account manager {code!r} was retired on {m.retired_on}",
                               where="body.managers")
        current = {link.manager.code: link for link in self.s.scalars(
            select(ManagerAssignment).where(ManagerAssignment.customer_id == c.id))}
        for code in current.keys() - wanted.keys():
            self.s.delete(current[code])
        for code in wanted.keys() - current.keys():
            self.s.add(ManagerAssignment(manager_id=wanted[code].id, customer_id=c.id))
        self._done(actor, "manager.links", f"customer:{customer}",
                   f"added={sorted(wanted.keys() - current.keys())} removed={sorted(current.keys() - wanted.keys())}")
        return self.managers_of(actor, customer)
