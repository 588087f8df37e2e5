"""The registry's typed shapes: XCreate (a new row), XUpdate (fields to change, all optional), XPublic (what is shown).

Codes follow the config's id rule, so a customer, site or meter entered here can be named in gateway.toml too.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from zoneinfo import available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from crm_bridge.tariffs.contract import BasicChargeMode

CODE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Code = Annotated[str, Field(pattern=CODE, description="An id: letters, digits, '_', '.', '-' (as in gateway.toml)")]
Name = Annotated[str, Field(min_length=1, max_length=200)]


def _zone(value: str) -> str:
    if value not in available_timezones():
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. Asia/Shanghai)")
    return value


TimeZone = Annotated[str, AfterValidator(_zone)]
EquipmentKind = Annotated[str, Field(min_length=1, max_length=40,
                                     description="transformer, motor, capacitor_bank, switchgear, ...")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Retire(_In):
    on: date | None = Field(None, description="The day it leaves service (default today)")


class CustomerCreate(_In):
    code: Code
    name: Name
    timezone: TimeZone = "Asia/Shanghai"
    industry: str | None = Field(None, max_length=100)
    annual_revenue: float | None = Field(None, ge=0, allow_inf_nan=False)
    manager: Code | None = Field(None, description="Account-manager code to link (an account manager is linked "
                                                   "to the customers it creates)")


class CustomerUpdate(_In):
    name: Name | None = None
    timezone: TimeZone | None = None
    industry: str | None = Field(None, max_length=100)
    annual_revenue: float | None = Field(None, ge=0, allow_inf_nan=False)


class CustomerPublic(BaseModel):
    code: str
    name: str
    timezone: str
    industry: str | None
    annual_revenue: float | None
    retired_on: date | None
    managers: list[str]


class SiteCreate(_In):
    code: Code
    name: str | None = Field(None, max_length=300)
    address: str | None = Field(None, max_length=300)


class SiteUpdate(_In):
    name: str | None = Field(None, max_length=300)
    address: str | None = Field(None, max_length=300)


class SitePublic(BaseModel):
    code: str
    customer: str
    name: str | None
    address: str | None
    retired_on: date | None


class MeterCreate(_In):
    code: Code
    description: str | None = Field(None, max_length=200)
    valid_from: date | None = Field(None, description="Installed at the site from (default today)")


class MeterUpdate(_In):
    description: str | None = Field(None, max_length=200)


class MeterMove(_In):
    site: Code = Field(description="The site it moves to")
    valid_from: date | None = Field(None, description="At the new site from (default today)")


class MeterAssignmentPublic(BaseModel):
    site: str
    valid_from: date
    valid_to: date | None


class MeterPublic(BaseModel):
    code: str
    description: str | None
    site: str | None = Field(description="The site it is installed at now (None when retired or unassigned)")
    customer: str | None
    retired_on: date | None
    assignments: list[MeterAssignmentPublic]
    role: str | None = Field(None, description="billing or sub, as gateway.toml says (synced at start-up); None: "
                                               "not synced yet, counted as billing")


class ManagerCreate(_In):
    code: Code
    name: Name
    email: str | None = Field(None, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")


class ManagerUpdate(_In):
    name: Name | None = None
    email: str | None = Field(None, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")


class ManagerPublic(BaseModel):
    code: str
    name: str
    email: str | None
    retired_on: date | None
    customers: list[str]


class ManagerLinks(_In):
    managers: list[Code] = Field(description="Every account manager of the customer (replaces the current list)")


class ManagersOfCustomer(BaseModel):
    customer: str
    managers: list[str]


class ContractTerms(_In):
    transformer_kva: float = Field(gt=0, allow_inf_nan=False, description="Installed transformer capacity (kVA)")
    hv_motors_kw: float = Field(0.0, ge=0, allow_inf_nan=False, description="HV motors not behind a transformer (kW)")
    contract_demand_kw: float = Field(gt=0, allow_inf_nan=False, description="Contract demand C (kW)")
    basic_charge_mode: BasicChargeMode = BasicChargeMode.CONTRACT
    pf_standard: float = Field(0.9, gt=0, le=1, description="PF standard of the adjustment table (0.80/0.85/0.90)")
    bill_threshold: float | None = Field(None, ge=0, allow_inf_nan=False,
                                         description="Month bill above which an alert is raised")
    tariff_id: str = Field(min_length=1, max_length=64)


class ContractCreate(ContractTerms):
    valid_from: date = Field(description="In force from (closes the version in force then)")


class ContractUpdate(_In):
    """A correction of a version's terms (a change of terms from a date is a new version)."""

    transformer_kva: float | None = Field(None, gt=0, allow_inf_nan=False)
    hv_motors_kw: float | None = Field(None, ge=0, allow_inf_nan=False)
    contract_demand_kw: float | None = Field(None, gt=0, allow_inf_nan=False)
    basic_charge_mode: BasicChargeMode | None = None
    pf_standard: float | None = Field(None, gt=0, le=1)
    bill_threshold: float | None = Field(None, ge=0, allow_inf_nan=False)
    tariff_id: str | None = Field(None, min_length=1, max_length=64)


class ContractEnd(_In):
    valid_to: date = Field(description="The first day it is no longer in force")


class ContractPublic(BaseModel):
    id: int
    customer: str
    valid_from: date
    valid_to: date | None
    transformer_kva: float
    hv_motors_kw: float
    contract_demand_kw: float
    basic_charge_mode: BasicChargeMode
    pf_standard: float
    bill_threshold: float | None
    tariff_id: str


class EquipmentCreate(_In):
    kind: EquipmentKind
    name: Name
    site: Code | None = Field(None, description="The site it stands at")
    rating: float | None = Field(None, ge=0, allow_inf_nan=False)
    rating_unit: str | None = Field(None, max_length=20, description="kVA, kW, kvar ...")


class EquipmentUpdate(_In):
    kind: EquipmentKind | None = None
    name: Name | None = None
    site: Code | None = None
    rating: float | None = Field(None, ge=0, allow_inf_nan=False)
    rating_unit: str | None = Field(None, max_length=20)


class InspectionCreate(_In):
    on: date = Field(description="The day of the inspection")
    kind: str = Field("inspection", min_length=1, max_length=20, description="inspection, test, visit, repair ...")
    result: str | None = Field(None, max_length=100, description="ok, defects, failed ...")
    findings: str | None = Field(None, max_length=5000)
    next_due: date | None = None


class InspectionUpdate(_In):
    result: str | None = Field(None, max_length=100)
    findings: str | None = Field(None, max_length=5000)
    next_due: date | None = None


class InspectionPublic(BaseModel):
    id: int
    equipment: int
    kind: str
    at: datetime
    result: str | None
    findings: str | None
    next_due: date | None


class EquipmentPublic(BaseModel):
    id: int
    customer: str
    site: str | None
    kind: str
    name: str
    rating: float | None
    rating_unit: str | None
    retired_on: date | None
    next_due: date | None = Field(description="The earliest next-due date of its inspections")


class ContactCreate(_In):
    name: Name
    email: str | None = Field(None, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = Field(None, max_length=50)
    role: str | None = Field(None, max_length=100)


class ContactUpdate(_In):
    name: Name | None = None
    email: str | None = Field(None, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = Field(None, max_length=50)
    role: str | None = Field(None, max_length=100)


class ContactPublic(BaseModel):
    id: int
    customer: str
    name: str
    email: str | None
    phone: str | None
    role: str | None
    retired_on: date | None
