"""The account manager's view: the customer file and the portfolio."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TierPublic(BaseModel):
    computed: str
    override: str | None
    override_reason: str | None
    score: float


class ContactPublic(BaseModel):
    name: str
    email: str | None
    phone: str | None
    role: str | None


class InspectionPublic(BaseModel):
    kind: str
    at: str
    result: str | None
    notes: str | None


class EquipmentPublic(BaseModel):
    id: int
    kind: str
    name: str
    rating: float | None
    rating_unit: str | None
    inspections: list[InspectionPublic]


class InteractionPublic(BaseModel):
    at: str
    channel: str
    summary: str


class InteractionAdded(InteractionPublic):
    customer: str


class CustomerFile(BaseModel):
    """Everything the utility knows of the account; only `customer` and `registered` when the CRM has no record."""

    customer: str
    registered: bool
    name: str | None = None
    industry: str | None = None
    annual_revenue: float | None = None
    tier: TierPublic | None = None
    contacts: list[ContactPublic] = Field(default_factory=list)
    equipment: list[EquipmentPublic] = Field(default_factory=list)
    interactions: list[InteractionPublic] = Field(default_factory=list, description="Newest first, at most 100")


class PortfolioEntry(BaseModel):
    customer: str
    name: str
    tier: str | None
    open_alerts: int
    open_tickets: int
