"""The customer file for account managers: customer, contacts, major equipment with inspections, interactions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from crm_bridge.registry.models import Contact, Equipment, Interaction, TierRecord
from crm_bridge.registry.repo import RegistryLookupError, customer_by_code
from gateway.api.deps import client_of, get_auth
from gateway.api.errors import not_found
from gateway.api.roles import Capability, needs
from gateway.api.schemas.accounts import (
    ContactPublic,
    CustomerFile,
    EquipmentPublic,
    InspectionPublic,
    InteractionAdded,
    InteractionPublic,
    TierPublic,
)
from gateway.api.scope import AccessDep, CustomerId, GatewayDep
from gateway.auth import AuthService

router = APIRouter(prefix="/api/v1/customers", tags=["customer file"], dependencies=[needs(Capability.CUSTOMER_FILE)])


# Unset fields are left out: a customer the CRM does not know is only `customer` and `registered`.
@router.get("/{customer_id}/file", response_model_exclude_unset=True)
def customer_file(customer_id: CustomerId, gw: GatewayDep) -> CustomerFile:
    """Everything the utility knows of the account: tier, contacts, equipment and its inspections, interactions."""
    with gw.db() as s:
        try:
            c = customer_by_code(s, customer_id)
        except RegistryLookupError:
            return CustomerFile(customer=customer_id, registered=False)
        tier = s.get(TierRecord, c.id)
        equipment = s.scalars(select(Equipment).where(Equipment.customer_id == c.id).order_by(Equipment.id)).all()
        contacts = s.scalars(select(Contact).where(Contact.customer_id == c.id).order_by(Contact.id)).all()
        interactions = s.scalars(select(Interaction).where(Interaction.customer_id == c.id)
                                 .order_by(Interaction.at.desc()).limit(100)).all()
        return CustomerFile(
            customer=customer_id, registered=True, name=c.name, industry=c.industry, annual_revenue=c.annual_revenue,
            tier=None if tier is None else TierPublic(computed=tier.computed, override=tier.override,
                                                      override_reason=tier.override_reason, score=tier.score),
            contacts=[ContactPublic(name=x.name, email=x.email, phone=x.phone, role=x.role) for x in contacts],
            equipment=[EquipmentPublic(id=e.id, kind=e.kind, name=e.name, rating=e.rating, rating_unit=e.rating_unit,
                                       inspections=[InspectionPublic(kind=i.kind, at=i.at.isoformat(), result=i.result,
                                                                     notes=i.notes) for i in e.inspections])
                       for e in equipment],
            interactions=[InteractionPublic(at=i.at.isoformat(), channel=i.channel, summary=i.summary)
                          for i in interactions],
        )


class NewInteraction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: str = Field(min_length=1, max_length=40, description="visit, phone, e-mail, meeting ...")
    summary: str = Field(min_length=1, max_length=5000)


@router.post("/{customer_id}/interactions", status_code=201)
def add_interaction(customer_id: CustomerId, body: NewInteraction, gw: GatewayDep, access: AccessDep,
                    auth: Annotated[AuthService, Depends(get_auth)], request: Request) -> InteractionAdded:
    """Log a visit, call or meeting in the interaction log."""
    now = datetime.now(UTC)
    with gw.db() as s:
        try:
            c = customer_by_code(s, customer_id)
        except RegistryLookupError:
            raise not_found("customer", customer_id) from None
        s.add(Interaction(customer_id=c.id, at=now, channel=body.channel, summary=body.summary))
        s.commit()
    auth.audit(access.principal.username, "interaction.add", f"customer:{customer_id}", body.channel,
               client_of(request))
    return InteractionAdded(customer=customer_id, at=now.isoformat(), channel=body.channel, summary=body.summary)
