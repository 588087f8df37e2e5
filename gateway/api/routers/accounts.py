"""The customer file for account managers: customer, contacts, major equipment with inspections, interactions."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.roles import Capability, needs
from gateway.api.schemas.accounts import CustomerFile, InteractionAdded
from gateway.api.scope import AccountsDep, ActorDep, CustomerId

router = APIRouter(prefix="/api/v1/customers", tags=["customer file"], dependencies=[needs(Capability.CUSTOMER_FILE)])


# Unset fields are left out: a customer the CRM does not know is only `customer` and `registered`.
@router.get("/{customer_id}/file", response_model_exclude_unset=True)
def customer_file(customer_id: CustomerId, accounts: AccountsDep) -> CustomerFile:
    """Everything the utility knows of the account: tier, contacts, equipment and its inspections, interactions."""
    return accounts.customer_file(customer_id)


class NewInteraction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: str = Field(min_length=1, max_length=40, description="visit, phone, e-mail, meeting ...")
    summary: str = Field(min_length=1, max_length=5000)


@router.post("/{customer_id}/interactions", status_code=201)
def add_interaction(customer_id: CustomerId, body: NewInteraction, accounts: AccountsDep,
                    actor: ActorDep) -> InteractionAdded:
    """Log a visit, call or meeting in the interaction log."""
    return accounts.add_interaction(actor, customer_id, body.channel, body.summary)
