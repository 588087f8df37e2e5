"""CSV import (customers, contacts) from a CRM export, idempotent by code, with per-line errors; CSV export."""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_bridge.registry.models import Contact, Customer

log = logging.getLogger(__name__)
CUSTOMER_COLUMNS = ("code", "name", "timezone", "industry", "annual_revenue")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class RowError:
    """A rejected row: its line number in the file (header = line 1) and every reason."""

    line: int
    reasons: list[str]


@dataclass
class ImportReport:
    """What an import did: created / updated / unchanged counts and the rejected rows."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no row was rejected."""
        return not self.errors


def _rows(text: str, required: tuple[str, ...]) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in required if c not in header]
    if missing:
        return [], missing
    reader.fieldnames = header
    rows = []
    for rec in reader:
        # line_num counts physical lines, so quoted multi-line fields still give the line where the row ends
        rows.append((reader.line_num, {k: (v or "").strip() for k, v in rec.items() if k is not None}))
    return rows, []


def import_customers(session: Session, text: str) -> ImportReport:
    """Create or update customers by `code`; bad rows are listed, good rows are all kept (one transaction)."""
    report = ImportReport()
    rows, missing = _rows(text, ("code", "name"))
    if missing:
        report.errors.append(RowError(1, [f"header lacks column(s): {', '.join(missing)}"]))
        return report
    seen: dict[str, int] = {}
    for line, r in rows:
        reasons = []
        code, name = r.get("code", ""), r.get("name", "")
        if not code:
            reasons.append("code is empty")
        elif code in seen:
            reasons.append(f"code {code!r} repeats line {seen[code]}")
        if not name:
            reasons.append("name is empty")
        tz = r.get("timezone") or "Asia/Shanghai"
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            reasons.append(f"timezone {tz!r} is unknown")
        revenue: float | None = None
        if r.get("annual_revenue"):
            try:
                revenue = float(r["annual_revenue"].replace(",", ""))
                if revenue < 0:
                    reasons.append("annual_revenue is negative")
            except ValueError:
                reasons.append(f"annual_revenue {r['annual_revenue']!r} is not a number")
        if reasons:
            report.errors.append(RowError(line, reasons))
            continue
        seen[code] = line
        values = {"name": name, "timezone": tz, "industry": r.get("industry") or None, "annual_revenue": revenue}
        customer = session.scalar(select(Customer).where(Customer.code == code))
        if customer is None:
            session.add(Customer(code=code, **values))
            report.created += 1
        elif any(getattr(customer, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(customer, k, v)
            report.updated += 1
        else:
            report.unchanged += 1
    session.commit()
    log.info("customer import: %d created, %d updated, %d rejected", report.created, report.updated,
             len(report.errors))
    return report


def import_contacts(session: Session, text: str) -> ImportReport:
    """Create or update contacts, identified by (customer_code, e-mail, or name when there is no e-mail)."""
    report = ImportReport()
    rows, missing = _rows(text, ("customer_code", "name"))
    if missing:
        report.errors.append(RowError(1, [f"header lacks column(s): {', '.join(missing)}"]))
        return report
    for line, r in rows:
        reasons = []
        customer = session.scalar(select(Customer).where(Customer.code == r.get("customer_code", "")))
        if customer is None:
            reasons.append(f"customer_code {r.get('customer_code', '')!r} is not in the registry")
        if not r.get("name"):
            reasons.append("name is empty")
        email = r.get("email") or None
        if email is not None and not _EMAIL.match(email):
            reasons.append(f"email {email!r} is not an address")
        if reasons or customer is None:
            report.errors.append(RowError(line, reasons))
            continue
        match = Contact.email == email if email else Contact.name == r["name"]
        contact = session.scalar(select(Contact).where(Contact.customer_id == customer.id, match))
        values = {"name": r["name"], "email": email, "phone": r.get("phone") or None, "role": r.get("role") or None}
        if contact is None:
            session.add(Contact(customer_id=customer.id, **values))
            session.flush()
            report.created += 1
        elif any(getattr(contact, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(contact, k, v)
            report.updated += 1
        else:
            report.unchanged += 1
    session.commit()
    return report


def export_customers(session: Session) -> str:
    """All customers as CSV with the import's columns (re-importing it changes nothing)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CUSTOMER_COLUMNS)
    for c in session.scalars(select(Customer).order_by(Customer.code)):
        w.writerow([c.code, c.name, c.timezone, c.industry or "",
                    "" if c.annual_revenue is None else repr(c.annual_revenue)])
    return out.getvalue()
