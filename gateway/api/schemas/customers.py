"""Customers, their contract, value-added services and saving advice."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CustomerPublic(BaseModel):
    id: str
    name: str
    timezone: str
    language: str
    sites: list[str]


class ContractPublic(BaseModel):
    customer: str
    transformer_kva: float
    hv_motors_kw: float
    contract_demand_kw: float | None
    basic_charge_mode: str
    pf_standard: float
    bill_threshold: float | None
    tariff_id: str


class AdvicePublic(BaseModel):
    """One thing the customer can do, what it is worth, and what that figure stands on."""

    kind: str
    title: str
    money_per_month: float
    money_per_year: float
    currency: str
    evidence: dict[str, Any]
    assumptions: list[str]


class ServicesPublic(BaseModel):
    """Every value-added service of a month; each service's result carries its own evidence (loosely typed here)."""

    model_config = ConfigDict(extra="allow")

    customer: str
    month: str = Field(description="YYYY-MM")
    card: dict[str, Any] | None = Field(description="Load-curve card of the last full day")
    tou: dict[str, Any] | None = Field(description="TOU advice: energy by band and what moving load would save")
    demand: dict[str, Any] | None = Field(description="Maximum demand against the contract, basic-charge modes")
    pf: dict[str, Any] | None = Field(description="Power factor, its adjustment and the capacitor bank to fix it")
    base_load: dict[str, Any] | None
    bill: dict[str, Any] | None = Field(description="Bill forecast against the customer's threshold")
    energy_performance: dict[str, Any] | None = None
    advice: list[AdvicePublic] = Field(description="Saving advice ranked by money")
