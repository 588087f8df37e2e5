"""Registry tables of cost allocation: cost centres, their virtual meters (versioned formulas) and the sharing rule.

A cost centre (a site, a production line or an accounting cost centre) is a formula over the customer's meters, e.g.
`main - sub1 - sub2` or `a + b` (crm_bridge.services.allocation.parse_formula). Formulas and the customer's rule are
versioned like contracts: a version holds over [valid_from, valid_to), valid_to None while it is the current one, and
a new version closes the previous one on its own start date.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_bridge.registry.models import Base, Customer


class CostCentre(Base):
    """A site, line or cost centre of a customer; `code` is the customer's own cost-centre code (SAP CO KOSTL)."""

    __tablename__ = "cost_centre"
    __table_args__ = (UniqueConstraint("customer_id", "code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # site, line or cost_centre
    customer: Mapped[Customer] = relationship()
    formulas: Mapped[list[VirtualMeter]] = relationship(back_populates="cost_centre", cascade="all, delete-orphan",
                                                        order_by="VirtualMeter.valid_from")


class VirtualMeter(Base):
    """One version of a cost centre's formula over meter ids, in force over [valid_from, valid_to)."""

    __tablename__ = "virtual_meter"
    __table_args__ = (UniqueConstraint("cost_centre_id", "valid_from"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    cost_centre_id: Mapped[int] = mapped_column(ForeignKey("cost_centre.id", ondelete="CASCADE"), index=True)
    formula: Mapped[str] = mapped_column(String(1000))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    cost_centre: Mapped[CostCentre] = relationship(back_populates="formulas")


class AllocationRule(Base):
    """One version of how a customer shares its basic charge and PF adjustment, and its finance export settings.

    `rule`: kwh, coincident_peak or fixed; `shares`: cost-centre code -> share as a decimal string (fixed only);
    `company_code` and `cost_elements` (element key -> the customer's cost element) go into the SAP CO export.
    """

    __tablename__ = "allocation_rule"
    __table_args__ = (UniqueConstraint("customer_id", "valid_from"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    rule: Mapped[str] = mapped_column(String(20))
    shares: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    company_code: Mapped[str] = mapped_column(String(10), default="")
    cost_elements: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    customer: Mapped[Customer] = relationship()
