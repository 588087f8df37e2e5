"""Cost allocation of a customer's month bill: the registry's cost centres and rule, the store's meters, exports.

The bill is `UseCases.month_bill` (the one the month view shows) and the split is
`crm_bridge.services.allocation.allocate`; nothing here prices or rounds a second way.

Finance export (SAP CO upload layout): one row per cost centre x cost element, the residual `UNMETERED` included,
rows of zero amount and zero quantity left out; the amounts add up to the month bill's total to the cent.

| column      | SAP CO     | content                                                                          |
|-------------|------------|----------------------------------------------------------------------------------|
| CompanyCode | BUKRS      | the rule's company code (empty when not set)                                     |
| FiscalYear  | GJAHR      | the calendar year of the month                                                   |
| Period      | PERIO      | the month as three digits (001..012)                                             |
| CostCenter  | KOSTL      | the cost centre's code; `UNMETERED` for unmetered and losses                     |
| CostElement | KSTAR      | the rule's cost element for energy_<band>, basic_charge, pf_adjustment or        |
|             |            | government_funds; the element key itself when the rule maps none (longer than    |
|             |            | SAP's 10 characters: `unmapped_elements` lists them, the costs page warns)       |
| Amount      | WTGBTR     | Decimal to the cent, `.` as decimal point, no grouping (CSV); a number (XLSX)      |
| Currency    | TWAER      | the bill's currency (ISO 4217)                                                   |
| Quantity    | MBGBTR     | kWh (3 decimals) for energy and funds rows; empty for basic charge and PF        |
| Unit        | MEINH      | `KWH` where there is a quantity                                                  |
| Text        | SGTXT      | the element and month in the reader's language (zh or en)                        |

CSV: UTF-8 with a byte-order mark, the header row first, separated by `,` (default) or `;` (`sep=semicolon`); the
separator in use is the one of the header row. XLSX: one sheet `allocation`, the same columns.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_bridge.errors import CrmError
from crm_bridge.registry.allocation_models import AllocationRule, CostCentre, VirtualMeter
from crm_bridge.registry.models import Customer
from crm_bridge.services.allocation import (
    RESIDUAL,
    Allocation,
    AllocationError,
    Rule,
    RuleDef,
    parse_formula,
)
from crm_bridge.services.allocation_setup import Setup, allocate_month, setup_of
from crm_bridge.tariffs.bill import priced_intervals, priced_rows
from crm_bridge.tariffs.model import next_month
from gateway.usecases.errors import BadInput, Conflict, NoContract, NotFound
from gateway.usecases.figures import UseCases, contract_of, customer_config, tariff_of

CODE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$"
ELEMENT = r"^(energy_[a-z_]{1,30}|basic_charge|pf_adjustment|government_funds)$"
COLUMNS = ("CompanyCode", "FiscalYear", "Period", "CostCenter", "CostElement", "Amount", "Currency", "Quantity",
           "Unit", "Text")


class CostCentreIn(BaseModel):
    """A cost centre's name and kind (its code is the path's)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["site", "line", "cost_centre"] = "cost_centre"


class FormulaIn(BaseModel):
    """A new version of a cost centre's virtual meter from `valid_from` (it closes the version open then)."""

    model_config = ConfigDict(extra="forbid")
    formula: str = Field(min_length=1, max_length=1000, description="meter ids joined by ' + ' or ' - '")
    valid_from: date

    @field_validator("formula")
    @classmethod
    def _parses(cls, v: str) -> str:
        try:
            return parse_formula(v).text
        except AllocationError as exc:
            raise ValueError(str(exc)) from None


class RuleIn(BaseModel):
    """How basic charge and PF adjustment are shared from `valid_from`, and the finance export's codes."""

    model_config = ConfigDict(extra="forbid")
    rule: Rule
    valid_from: date
    shares: dict[str, Decimal] = Field(default_factory=dict, description="fixed: cost-centre code -> share, sum 1")
    company_code: str = Field("", pattern=r"^[A-Za-z0-9]{0,10}$")
    cost_elements: dict[str, str] = Field(default_factory=dict,
                                          description="energy_<band>, basic_charge, pf_adjustment, "
                                                      "government_funds -> the customer's cost element")

    @field_validator("shares")
    @classmethod
    def _shares(cls, v: dict[str, Decimal]) -> dict[str, Decimal]:
        for code, share in v.items():
            if not share.is_finite() or not Decimal(0) <= share <= Decimal(1):
                raise ValueError(f"share of {code!r} must be between 0 and 1, got {share}")
        return v

    @field_validator("cost_elements")
    @classmethod
    def _elements(cls, v: dict[str, str]) -> dict[str, str]:
        import re

        for key, value in v.items():
            if not re.match(ELEMENT, key):
                raise ValueError(f"{key!r} is not an element (energy_<band>, basic_charge, pf_adjustment, "
                                 "government_funds)")
            if not re.match(r"^[A-Za-z0-9]{1,10}$", value):
                raise ValueError(f"cost element of {key!r}: {value!r} is not 1-10 letters or digits")
        return v


class FormulaPublic(BaseModel):
    formula: str
    valid_from: date
    valid_to: date | None


class CostCentrePublic(BaseModel):
    customer: str
    code: str
    name: str
    kind: str
    formulas: list[FormulaPublic]


class RulePublic(BaseModel):
    customer: str
    rule: Rule
    valid_from: date
    valid_to: date | None
    shares: dict[str, Decimal]
    company_code: str
    cost_elements: dict[str, str]


class AllocationPublic(Allocation):
    """The month's allocation for one customer, with the rule in force and its finance codes."""

    customer: str
    rule_valid_from: date | None
    company_code: str
    cost_elements: dict[str, str]
    unmapped_elements: list[str] = Field(default_factory=list, description=(
        "elements of the export's rows that the rule maps to no cost element: they are exported under their own "
        "key, which is longer than SAP's 10-character cost element, so an upload would refuse them"))


# -- registry ------------------------------------------------------------------------------------------------------
def _customer_row(s: Session, customer: str) -> Customer:
    row = s.scalar(select(Customer).where(Customer.code == customer))
    if row is None:
        raise NotFound(f"customer {customer!r} is not in the registry", "customer")
    return row


def _centre_public(c: CostCentre) -> CostCentrePublic:
    return CostCentrePublic(customer=c.customer.code, code=c.code, name=c.name, kind=c.kind,
                            formulas=[FormulaPublic(formula=f.formula, valid_from=f.valid_from, valid_to=f.valid_to)
                                      for f in c.formulas])


def cost_centres(s: Session, customer: str) -> list[CostCentrePublic]:
    row = _customer_row(s, customer)
    return [_centre_public(c) for c in s.scalars(select(CostCentre).where(CostCentre.customer_id == row.id)
                                                   .order_by(CostCentre.code))]


def put_cost_centre(s: Session, customer: str, code: str, body: CostCentreIn) -> tuple[CostCentrePublic, bool]:
    """Create or rename the cost centre `code`; True when it is new."""
    row = _customer_row(s, customer)
    if code == RESIDUAL:
        raise BadInput(f"code: {RESIDUAL!r} is the unmetered-and-losses line, not a cost centre", "code")
    c = s.scalar(select(CostCentre).where(CostCentre.customer_id == row.id, CostCentre.code == code))
    created = c is None
    if c is None:
        c = CostCentre(customer=row, code=code, name=body.name, kind=body.kind)
        s.add(c)
    else:
        c.name, c.kind = body.name, body.kind
    s.commit()
    return _centre_public(c), created


def add_formula(uc: UseCases, s: Session, customer: str, code: str, body: FormulaIn) -> CostCentrePublic:
    """A new formula version; every meter must be one of the customer's, versions follow each other."""
    row = _customer_row(s, customer)
    c = s.scalar(select(CostCentre).where(CostCentre.customer_id == row.id, CostCentre.code == code))
    if c is None:
        raise NotFound(f"cost centre {code!r} of {customer!r} not found", "code")
    for meter in parse_formula(body.formula).meters:
        if uc.gw.directory.owner_of_meter(meter) != customer:
            raise BadInput(f"body.formula: {meter!r} is not a meter of customer {customer!r}", "body.formula")
    latest = c.formulas[-1] if c.formulas else None
    if latest is not None:
        if latest.valid_from >= body.valid_from:
            raise Conflict(f"body.valid_from: a version from {body.valid_from} does not follow the one from "
                           f"{latest.valid_from}; history is not rewritten", "body.valid_from")
        if latest.valid_to is None or latest.valid_to > body.valid_from:
            latest.valid_to = body.valid_from
    c.formulas.append(VirtualMeter(formula=body.formula, valid_from=body.valid_from))
    s.commit()
    return _centre_public(c)


def _rule_public(customer: str, r: AllocationRule) -> RulePublic:
    return RulePublic(customer=customer, rule=Rule(r.rule), valid_from=r.valid_from, valid_to=r.valid_to,
                      shares={k: Decimal(str(v)) for k, v in r.shares.items()}, company_code=r.company_code,
                      cost_elements=dict(r.cost_elements))


def rules(s: Session, customer: str) -> list[RulePublic]:
    row = _customer_row(s, customer)
    return [_rule_public(customer, r) for r in s.scalars(
        select(AllocationRule).where(AllocationRule.customer_id == row.id).order_by(AllocationRule.valid_from))]


def add_rule(s: Session, customer: str, body: RuleIn) -> RulePublic:
    """A new rule version from `valid_from` (closing the one open then); fixed shares must name cost centres."""
    row = _customer_row(s, customer)
    codes = list(s.scalars(select(CostCentre.code).where(CostCentre.customer_id == row.id)))
    if body.shares and body.rule is not Rule.FIXED:
        raise BadInput(f"body.shares: only the fixed rule takes shares (the rule is {body.rule.value})",
                       "body.shares")
    if body.rule is Rule.FIXED:
        try:
            RuleDef(Rule.FIXED, body.shares).check(codes)
        except AllocationError as exc:
            where = str(exc).split(":")[0]
            raise BadInput(f"body.{exc}", f"body.{where}") from None
    latest = s.scalar(select(AllocationRule).where(AllocationRule.customer_id == row.id)
                      .order_by(AllocationRule.valid_from.desc()))
    if latest is not None:
        if latest.valid_from >= body.valid_from:
            raise Conflict(f"body.valid_from: a rule from {body.valid_from} does not follow the one from "
                           f"{latest.valid_from}; history is not rewritten", "body.valid_from")
        if latest.valid_to is None or latest.valid_to > body.valid_from:
            latest.valid_to = body.valid_from
    r = AllocationRule(customer=row, valid_from=body.valid_from, rule=body.rule.value,
                       shares={k: str(v) for k, v in body.shares.items()}, company_code=body.company_code,
                       cost_elements=body.cost_elements)
    s.add(r)
    s.commit()
    return _rule_public(customer, r)


# -- the month's allocation ----------------------------------------------------------------------------------------
def setup(s: Session, customer: str, first: date) -> Setup:
    """The customer's cost centres and the rule in force in the month of `first` (NotFound for an unknown customer)."""
    return setup_of(s, _customer_row(s, customer).id, first)


def check_owned(uc: UseCases, customer: str, meters: list[str]) -> None:
    """BadInput unless every meter a formula names is still one of the customer's (gateway.toml may have moved it)."""
    for m in meters:
        if uc.gw.directory.owner_of_meter(m) != customer:
            raise BadInput(f"a formula of {customer} names {m!r}, which is no longer one of its meters", "formula")


def allocation(uc: UseCases, customer: str, first: date) -> AllocationPublic:
    """The month bill of `customer` split over its cost centres by the rule in force on the month's first day.

    Assembled by crm_bridge.services.allocation_setup, as the budget alert's month-to-date split is.
    """
    gw = uc.gw
    tz = ZoneInfo(customer_config(gw, customer).timezone)
    with gw.db() as s:
        made = setup(s, customer, first)
    frame, _ = uc.month_frame(customer, first)
    _, bill = uc.month_bill(customer, first, frame)
    tariff = tariff_of(gw, contract_of(gw, customer, first, next_month(first)))
    if bill is None or tariff is None:
        raise NoContract(f"month {first:%Y-%m} of {customer}: no contract on a known tariff, so no bill to allocate")
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    rows = priced_rows(bill)  # the rows the bill added up; priced again only for a bill made elsewhere
    if rows is None:
        rows = priced_intervals(frame, tariff, first, tz=tz, now=now)
    check_owned(uc, customer, made.meters)
    try:
        result = allocate_month(made, bill, rows, first, tz, now, gw.query.meter_intervals)
    except (CrmError, InvalidOperation) as exc:
        raise BadInput(f"allocation of {customer} {first:%Y-%m}: {exc}", "allocation") from None
    rule_row = made.rule_row
    elements = dict(rule_row.cost_elements) if rule_row else {}
    exported = {m.element for line in result.lines for m in line.money if m.amount != 0 or m.kwh}
    return AllocationPublic(**result.model_dump(), customer=customer,
                            rule_valid_from=rule_row.valid_from if rule_row else None,
                            company_code=rule_row.company_code if rule_row else "",
                            cost_elements=elements, unmapped_elements=sorted(exported - set(elements)))


# -- finance export ------------------------------------------------------------------------------------------------
def sap_rows(a: AllocationPublic, lang: str) -> list[list[Any]]:
    """The export's rows (without the header), in COLUMNS order; see the module docstring."""
    from reports.i18n import text, texts_catalogue

    year, month = a.month.split("-")
    out: list[list[Any]] = []
    for line in a.lines:
        for m in line.money:
            quantity = None if m.kwh is None else Decimal(repr(m.kwh)).quantize(Decimal("0.001"))
            if m.amount == 0 and not quantity:
                continue
            if m.element.startswith("energy_"):
                band = m.element.removeprefix("energy_")
                key = f"band_{band}"
                label = text("alloc_energy", lang, band=text(key, lang) if texts_catalogue().has(key, lang) else band)
            else:
                label = text(m.element, lang)
            if line.code == RESIDUAL:
                label = f"{label} · {text('alloc_unmetered', lang)}"
            out.append([a.company_code, int(year), f"{int(month):03d}", line.code,
                        a.cost_elements.get(m.element, m.element), m.amount, a.currency, quantity,
                        "KWH" if quantity is not None else "", f"{label} {a.month}"])
    return out


def to_csv(a: AllocationPublic, lang: str, sep: str = ",") -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=sep, lineterminator="\r\n")
    w.writerow(COLUMNS)
    for r in sap_rows(a, lang):
        w.writerow(["" if v is None else str(v) for v in r])
    return buf.getvalue().encode("utf-8-sig")


def to_xlsx(a: AllocationPublic, lang: str) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None  # noqa: S101 - a new workbook has its sheet
    ws.title = "allocation"
    ws.append(list(COLUMNS))
    for r in sap_rows(a, lang):
        ws.append(r)
        ws.cell(ws.max_row, 6).number_format = "0.00"
        ws.cell(ws.max_row, 8).number_format = "0.000"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
