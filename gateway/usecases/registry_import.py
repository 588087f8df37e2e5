"""Onboarding accounts in bulk from a spreadsheet, and back: the engine of `energy-gateway registry import|export`.

One sheet per kind (an XLSX workbook's sheets, or CSV files named after the kind: customers.csv, sites.csv, ...),
in the order they depend on each other: managers, customers, sites, meters, contracts, equipment, contacts. Each
row is checked with the registry API's own models and rules (`gateway.api.schemas.registry`,
`gateway.usecases.registry.contract_problems`) and against the other rows and the registry; every error is reported
by sheet, row and column. An import is all or nothing: with any error, or with --dry-run, nothing is changed.
Rows are matched by their key (a code; a contract by customer and valid_from; equipment and contacts by customer and
name): a new key is created, a known one updated where it differs, so importing the same file twice changes nothing,
and `export` writes the same layout, so a manager can round-trip a spreadsheet.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crm_bridge.registry.models import (
    AccountManager,
    Contact,
    Contract,
    Customer,
    Equipment,
    ManagerAssignment,
    Meter,
    MeterAssignment,
    Site,
)
from gateway.api.schemas.registry import (
    ContactCreate,
    ContractCreate,
    CustomerCreate,
    EquipmentCreate,
    ManagerCreate,
    MeterCreate,
    SiteCreate,
)
from gateway.usecases.registry_core import contract_problems

# Each kind: its columns in sheet order, the key columns, and the registry API model a row must satisfy.
COLUMNS: dict[str, tuple[str, ...]] = {
    "managers": ("code", "name", "email"),
    "customers": ("code", "name", "timezone", "industry", "annual_revenue", "managers"),
    "sites": ("code", "customer", "name", "address"),
    "meters": ("code", "site", "description", "valid_from"),
    "contracts": ("customer", "valid_from", "transformer_kva", "hv_motors_kw", "contract_demand_kw",
                  "basic_charge_mode", "pf_standard", "bill_threshold", "tariff_id"),
    "equipment": ("customer", "name", "kind", "site", "rating", "rating_unit"),
    "contacts": ("customer", "name", "email", "phone", "role"),
}
KINDS = tuple(COLUMNS)
KEYS: dict[str, tuple[str, ...]] = {"managers": ("code",), "customers": ("code",), "sites": ("code",),
                                    "meters": ("code",), "contracts": ("customer", "valid_from"),
                                    "equipment": ("customer", "name"), "contacts": ("customer", "name")}
MODELS: dict[str, type[BaseModel]] = {"managers": ManagerCreate, "customers": CustomerCreate, "sites": SiteCreate,
                                      "meters": MeterCreate, "contracts": ContractCreate, "equipment": EquipmentCreate,
                                      "contacts": ContactCreate}
# Columns that name another row rather than describe this one (the models do not know them).
_REFERENCES = {"sites": ("customer",), "meters": ("site",), "contracts": ("customer",),
               "equipment": ("customer",), "contacts": ("customer",), "customers": ("managers",)}


class SheetError(Exception):
    """A file that cannot be read as the registry's layout (not a row's error: those are collected)."""


@dataclass(frozen=True)
class Problem:
    """One error of one cell: the sheet, the spreadsheet's row number (the header is row 1), the column."""

    sheet: str
    row: int
    column: str
    message: str

    def __str__(self) -> str:
        letter = _letter(COLUMNS[self.sheet].index(self.column)) if self.column in COLUMNS[self.sheet] else "?"
        return f"{self.sheet}!{letter}{self.row} ({self.column}): {self.message}"


@dataclass
class Outcome:
    """What an import did (or, on a dry run or with errors, would have done): counts per sheet, and the errors."""

    created: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    updated: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    unchanged: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    problems: list[Problem] = field(default_factory=list)
    applied: bool = False

    def summary(self) -> dict[str, Any]:
        return {"applied": self.applied, "created": self.created, "updated": self.updated,
                "unchanged": self.unchanged, "errors": len(self.problems)}


def _letter(index: int) -> str:
    out = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        out = chr(65 + rest) + out
    return out


Rows = dict[str, list[tuple[int, dict[str, Any]]]]


def read_sheets(paths: Iterable[Path]) -> Rows:
    """The rows of each kind, with their spreadsheet row numbers: an XLSX's sheets, or CSV files named by kind."""
    rows: Rows = {k: [] for k in KINDS}
    for path in paths:
        suffix = path.suffix.lower()
        if suffix == ".xlsx":
            from openpyxl import load_workbook

            try:
                book = load_workbook(path, read_only=True, data_only=True)
            except (OSError, ValueError, KeyError) as exc:
                raise SheetError(f"{path}: not a readable XLSX workbook ({exc})") from None
            unknown = [n for n in book.sheetnames if n not in COLUMNS]
            if unknown:
                raise SheetError(f"{path}: unknown sheet(s) {', '.join(unknown)}; the sheets are {', '.join(KINDS)}")
            for name in book.sheetnames:
                rows[name] += _table(name, book[name].iter_rows(values_only=True), str(path))
        elif suffix == ".csv":
            kind = path.stem.lower()
            if kind not in COLUMNS:
                raise SheetError(f"{path}: a CSV file is named after its kind: {', '.join(f'{k}.csv' for k in KINDS)}")
            try:
                text = path.read_text("utf-8-sig")
            except (OSError, UnicodeDecodeError) as exc:
                raise SheetError(f"{path}: cannot be read as UTF-8 CSV ({exc})") from None
            rows[kind] += _table(kind, csv.reader(io.StringIO(text)), str(path))
        else:
            raise SheetError(f"{path}: give an .xlsx workbook or .csv files")
    return rows


def _table(kind: str, lines: Iterable[Iterable[Any]], where: str) -> list[tuple[int, dict[str, Any]]]:
    it = iter(lines)
    header = [str(h).strip().lower() if h is not None else "" for h in next(it, [])]
    unknown = [h for h in header if h and h not in COLUMNS[kind]]
    if unknown:
        raise SheetError(f"{where} sheet {kind}: unknown column(s) {', '.join(unknown)}; "
                         f"the columns are {', '.join(COLUMNS[kind])}")
    out = []
    for number, values in enumerate(it, start=2):
        row = {h: _cell(v) for h, v in zip(header, values, strict=False) if h}
        if any(v is not None for v in row.values()):
            out.append((number, row))
    return out


def _cell(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, datetime):
        return value.date() if value.time() == datetime.min.time() else value
    return value


class _Importer:
    """One import on one session: checks every row, applies those that hold, counts and collects problems."""

    def __init__(self, s: Session, today: date) -> None:
        self.s, self.today, self.out = s, today, Outcome()
        self.tariffs: list[str] | None = None  # the ids that can bill, read once
        self.managers = {m.code: m for m in s.scalars(select(AccountManager))}
        self.customers = {c.code: c for c in s.scalars(select(Customer))}
        self.sites = {x.code: x for x in s.scalars(select(Site))}
        self.meters = {m.code: m for m in s.scalars(select(Meter))}
        self.open_assignment = {a.meter.code: a for a in s.scalars(select(MeterAssignment)
                                                                   .where(MeterAssignment.valid_to.is_(None)))}
        self.links = {(a.manager.code, a.customer.code) for a in s.scalars(select(ManagerAssignment))}
        self.contracts: dict[tuple[int, date], Contract] = {(k.customer_id, k.valid_from): k
                                                            for k in s.scalars(select(Contract))}
        self.newest: dict[int, Contract] = {}
        for k in sorted(self.contracts.values(), key=lambda k: k.valid_from):
            self.newest[k.customer_id] = k
        self.equipment = {(e.customer_id, e.name): e for e in s.scalars(select(Equipment))}
        self.contacts = {(c.customer_id, c.name): c for c in s.scalars(select(Contact))}

    def problem(self, kind: str, row: int, column: str, message: str) -> None:
        self.out.problems.append(Problem(kind, row, column, message))

    def count(self, kind: str, created: bool, changed: bool) -> None:
        bucket = self.out.created if created else self.out.updated if changed else self.out.unchanged
        bucket[kind] += 1

    def run(self, rows: Rows) -> Outcome:
        for kind in KINDS:
            seen: dict[tuple[Any, ...], int] = {}
            for number, row in rows[kind]:
                # Keys as written (a date cell and its ISO text are one key), checked before the row's own errors.
                key = tuple(str(v) if (v := row.get(k)) is not None else None for k in KEYS[kind])
                if key in seen:
                    self.problem(kind, number, KEYS[kind][-1], f"duplicate {'/'.join(map(str, key))}: "
                                                               f"row {seen[key]} has it already")
                    continue
                seen[key] = number
                model = self._model(kind, number, row)
                if model is not None:
                    getattr(self, f"_{kind}")(number, row, model)
            self.s.flush()
        return self.out

    def _model(self, kind: str, number: int, row: dict[str, Any]) -> BaseModel | None:
        data = {k: v for k, v in row.items() if v is not None and k not in _REFERENCES.get(kind, ())}
        try:
            return MODELS[kind].model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                column = str(err["loc"][0]) if err["loc"] else "?"
                got = f" (got {err['input']!r})" if column in data else ""
                self.problem(kind, number, column, f"{err['msg']}{got}")
            return None

    def _customer_ref(self, kind: str, number: int, row: dict[str, Any]) -> Customer | None:
        code = row.get("customer")
        customer = self.customers.get(str(code)) if code is not None else None
        if customer is None:
            self.problem(kind, number, "customer", f"unknown customer {code!r}: not in the registry nor the "
                                                   "customers sheet" if code else "a customer is required")
        return customer

    def _site_ref(self, kind: str, number: int, code: Any, customer: Customer | None, column: str) -> Site | None:
        site = self.sites.get(str(code))
        if site is None:
            self.problem(kind, number, column, f"unknown site {code!r}: not in the registry nor the sites sheet")
        elif customer is not None and site.customer_id != customer.id:
            self.problem(kind, number, column, f"site {code!r} is a site of another customer")
            return None
        return site

    @staticmethod
    def _update(row: Any, values: dict[str, Any]) -> bool:
        changed = False
        for key, value in values.items():
            if getattr(row, key) != value:
                setattr(row, key, value)
                changed = True
        return changed

    def _managers(self, number: int, row: dict[str, Any], m: Any) -> None:
        found = self.managers.get(m.code)
        if found is None:
            self.managers[m.code] = found = AccountManager(code=m.code, name=m.name, email=m.email)
            self.s.add(found)
            self.count("managers", True, False)
        else:
            self.count("managers", False, self._update(found, {"name": m.name, "email": m.email}))

    def _customers(self, number: int, row: dict[str, Any], c: Any) -> None:
        codes = [x for x in str(row.get("managers") or "").replace(";", ",").replace(" ", ",").split(",") if x]
        managers = []
        for code in codes:
            if code not in self.managers:
                self.problem("customers", number, "managers", f"unknown account manager {code!r}")
            else:
                managers.append(self.managers[code])
        found = self.customers.get(c.code)
        values = {"name": c.name, "timezone": c.timezone, "industry": c.industry, "annual_revenue": c.annual_revenue}
        created = found is None
        if found is None:
            self.customers[c.code] = found = Customer(code=c.code, **values)
            self.s.add(found)
            changed = False
        else:
            changed = self._update(found, values)
        for m in managers:
            if (m.code, found.code) not in self.links:
                self.s.add(ManagerAssignment(manager=m, customer=found))
                self.links.add((m.code, found.code))
                changed = True
        self.count("customers", created, changed)

    def _sites(self, number: int, row: dict[str, Any], x: Any) -> None:
        customer = self._customer_ref("sites", number, row)
        if customer is None:
            return
        found = self.sites.get(x.code)
        if found is None:
            self.sites[x.code] = found = Site(customer=customer, code=x.code, name=x.name, address=x.address)
            self.s.add(found)
            self.count("sites", True, False)
        elif found.customer_id != customer.id:
            self.problem("sites", number, "customer", f"site {x.code!r} is a site of another customer")
        else:
            self.count("sites", False, self._update(found, {"name": x.name, "address": x.address}))

    def _meters(self, number: int, row: dict[str, Any], m: Any) -> None:
        site = self._site_ref("meters", number, row.get("site"), None, "site")
        if site is None:
            return
        found = self.meters.get(m.code)
        created = found is None
        if found is None:
            self.meters[m.code] = found = Meter(code=m.code, description=m.description)
            self.s.add(found)
            changed = False
        else:
            changed = self._update(found, {"description": m.description})
        current = self.open_assignment.get(found.code)
        valid_from = m.valid_from or (current.valid_from if current is not None else self.today)
        if current is not None and current.site_id == site.id:
            pass
        elif current is not None and current.valid_from >= valid_from:
            self.problem("meters", number, "valid_from", f"meter {m.code!r} is at another site from "
                                                         f"{current.valid_from}; a move must start after that")
            return
        else:
            if current is not None:
                current.valid_to = valid_from
            a = MeterAssignment(meter=found, site=site, valid_from=valid_from)
            self.s.add(a)
            self.open_assignment[found.code] = a
            changed = True
        self.count("meters", created, changed and not created)

    def _contracts(self, number: int, row: dict[str, Any], k: Any) -> None:
        customer = self._customer_ref("contracts", number, row)
        if self.tariffs is None:
            from gateway.usecases.tariffs import Tariffs

            self.tariffs = Tariffs(self.s, lambda *_: None).ids()
        for column, message in contract_problems(k, where="", tariffs=self.tariffs):
            self.problem("contracts", number, column.lstrip("."), message)
        if customer is None or any(p.sheet == "contracts" and p.row == number for p in self.out.problems):
            return
        terms = k.model_dump(exclude={"valid_from"})
        found = self.contracts.get((customer.id, k.valid_from))
        if found is not None:
            self.count("contracts", False, self._update(found, terms))
            return
        newest = self.newest.get(customer.id)
        if newest is not None and newest.valid_from >= k.valid_from:
            self.problem("contracts", number, "valid_from", f"a contract from {k.valid_from} does not follow "
                                                            f"{customer.code}'s version from {newest.valid_from}")
            return
        if newest is not None and (newest.valid_to is None or newest.valid_to > k.valid_from):
            newest.valid_to = k.valid_from
        new = Contract(customer_id=customer.id, valid_from=k.valid_from, **terms)
        self.s.add(new)
        self.contracts[(customer.id, k.valid_from)] = self.newest[customer.id] = new
        self.count("contracts", True, False)

    def _equipment(self, number: int, row: dict[str, Any], e: Any) -> None:
        customer = self._customer_ref("equipment", number, row)
        site = None
        if customer is not None and e.site is not None:
            site = self._site_ref("equipment", number, e.site, customer, "site")
            if site is None:
                return
        if customer is None:
            return
        values = {"kind": e.kind, "site_id": site.id if site else None, "rating": e.rating,
                  "rating_unit": e.rating_unit}
        found = self.equipment.get((customer.id, e.name))
        if found is None:
            self.equipment[(customer.id, e.name)] = found = Equipment(customer_id=customer.id, name=e.name, **values)
            self.s.add(found)
            self.count("equipment", True, False)
        else:
            self.count("equipment", False, self._update(found, values))

    def _contacts(self, number: int, row: dict[str, Any], x: Any) -> None:
        customer = self._customer_ref("contacts", number, row)
        if customer is None:
            return
        values = {"email": x.email, "phone": x.phone, "role": x.role}
        found = self.contacts.get((customer.id, x.name))
        if found is None:
            self.contacts[(customer.id, x.name)] = found = Contact(customer_id=customer.id, name=x.name, **values)
            self.s.add(found)
            self.count("contacts", True, False)
        else:
            self.count("contacts", False, self._update(found, values))


def import_rows(db: sessionmaker[Session], rows: Rows, dry_run: bool = False, today: date | None = None) -> Outcome:
    """Check and apply `rows` in one transaction: committed only without problems and without `dry_run`."""
    with db() as s:
        out = _Importer(s, today or datetime.now(UTC).date()).run(rows)
        if out.problems or dry_run:
            s.rollback()
        else:
            s.commit()
            out.applied = True
    return out


def export_rows(db: sessionmaker[Session]) -> dict[str, list[list[Any]]]:
    """Every kind's rows in the import's layout (header first): what `import_rows` reads back unchanged."""
    with db() as s:
        managers = {m.id: m.code for m in s.scalars(select(AccountManager).order_by(AccountManager.code))}
        links: dict[int, list[str]] = {}
        for link in s.scalars(select(ManagerAssignment)):
            links.setdefault(link.customer_id, []).append(managers[link.manager_id])
        customers = {c.id: c for c in s.scalars(select(Customer).order_by(Customer.code))}
        sites = {x.id: x for x in s.scalars(select(Site).order_by(Site.code))}
        out: dict[str, list[list[Any]]] = {k: [list(v)] for k, v in COLUMNS.items()}
        out["managers"] += [[m.code, m.name, m.email] for m in s.scalars(select(AccountManager)
                                                                         .order_by(AccountManager.code))]
        out["customers"] += [[c.code, c.name, c.timezone, c.industry, c.annual_revenue,
                              ", ".join(sorted(links.get(c.id, [])))] for c in customers.values()]
        out["sites"] += [[x.code, customers[x.customer_id].code, x.name, x.address] for x in sites.values()]
        for m, a in s.execute(select(Meter, MeterAssignment).join(MeterAssignment, MeterAssignment.meter_id == Meter.id)
                              .where(MeterAssignment.valid_to.is_(None)).order_by(Meter.code)):
            out["meters"].append([m.code, sites[a.site_id].code, m.description, a.valid_from])
        for k in s.scalars(select(Contract).order_by(Contract.customer_id, Contract.valid_from)):
            out["contracts"].append([customers[k.customer_id].code, k.valid_from, k.transformer_kva, k.hv_motors_kw,
                                     k.contract_demand_kw, k.basic_charge_mode, k.pf_standard, k.bill_threshold,
                                     k.tariff_id])
        for e in s.scalars(select(Equipment).order_by(Equipment.customer_id, Equipment.id)):
            out["equipment"].append([customers[e.customer_id].code, e.name, e.kind,
                                     sites[e.site_id].code if e.site_id else None, e.rating, e.rating_unit])
        for x in s.scalars(select(Contact).order_by(Contact.customer_id, Contact.id)):
            out["contacts"].append([customers[x.customer_id].code, x.name, x.email, x.phone, x.role])
    return out


def write_sheets(tables: dict[str, list[list[Any]]], out: Path) -> list[Path]:
    """An XLSX workbook (`out` ends in .xlsx) or one CSV per kind in the folder `out`; the files written."""
    if out.suffix.lower() == ".xlsx":
        from openpyxl import Workbook

        book = Workbook()
        book.remove(book.active)  # type: ignore[arg-type]
        for kind, rows in tables.items():
            sheet = book.create_sheet(kind)
            for row in rows:
                sheet.append(row)
        book.save(out)
        return [out]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, rows in tables.items():
        path = out / f"{kind}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([["" if v is None else v for v in row] for row in rows])
        written.append(path)
    return written
