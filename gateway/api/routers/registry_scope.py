"""The registry routes' scope: ids resolved against the registry (not gateway.toml), and the equipment readers' rule.

A customer, site or meter entered through the registry need not be in this gateway's config, so these types look
the id up in the registry and answer 404 when it does not exist or the caller may not see it, before the body is
read (as `gateway/api/scope.py` does for the config's ids). Routes never check ownership themselves.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path

from crm_bridge.registry.models import Contact, Contract, Equipment, Inspection
from gateway.api.deps import CurrentPrincipal, get_auth
from gateway.api.errors import forbidden
from gateway.api.scope import ActorDep, SessionDep
from gateway.auth import AuthService, Principal
from gateway.auth.roles import GRANTS, Capability, allowed
from gateway.usecases.registry import Registry

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"


def get_registry(session: SessionDep, auth: Annotated[AuthService, Depends(get_auth)]) -> Registry:
    return Registry(session, auth.audit)


RegistryDep = Annotated[Registry, Depends(get_registry)]


def _customer(customer_id: Annotated[str, Path(pattern=_ID, description="Customer id")], actor: ActorDep,
              registry: RegistryDep) -> str:
    return registry.customer(actor, customer_id).code


def _site(site_id: Annotated[str, Path(pattern=_ID, description="Site id")], actor: ActorDep,
          registry: RegistryDep) -> str:
    return registry.site_row(actor, site_id).code


def _meter(meter_id: Annotated[str, Path(pattern=_ID, description="Meter id")], actor: ActorDep,
           registry: RegistryDep) -> str:
    return registry.meter_row(actor, meter_id).code


def _contract(contract_id: Annotated[int, Path(ge=1, le=2**62, description="Contract version id")], actor: ActorDep,
              registry: RegistryDep) -> int:
    return registry.owned(actor, Contract, contract_id, "contract_id").id


def _equipment(equipment_id: Annotated[int, Path(ge=1, le=2**62, description="Equipment id")], actor: ActorDep,
               registry: RegistryDep) -> int:
    return registry.owned(actor, Equipment, equipment_id, "equipment_id").id


def _inspection(inspection_id: Annotated[int, Path(ge=1, le=2**62, description="Inspection id")], actor: ActorDep,
                registry: RegistryDep) -> int:
    return registry.owned(actor, Inspection, inspection_id, "inspection_id").id


def _contact(contact_id: Annotated[int, Path(ge=1, le=2**62, description="Contact id")], actor: ActorDep,
             registry: RegistryDep) -> int:
    return registry.owned(actor, Contact, contact_id, "contact_id").id


RegCustomerId = Annotated[str, Depends(_customer)]
RegSiteId = Annotated[str, Depends(_site)]
RegMeterId = Annotated[str, Depends(_meter)]
ContractId = Annotated[int, Depends(_contract)]
EquipmentId = Annotated[int, Depends(_equipment)]
InspectionId = Annotated[int, Depends(_inspection)]
ContactId = Annotated[int, Depends(_contact)]


def needs_any(*capabilities: Capability) -> Any:
    """For `dependencies=[...]`: 403 unless the caller's role holds one of `capabilities`."""

    def check(p: CurrentPrincipal) -> Principal:
        if not any(allowed(p.role, c) for c in capabilities):
            roles = ", ".join(sorted(set().union(*(GRANTS[c] for c in capabilities))))
            raise forbidden(f"role {p.role} may not use this ({', '.join(c.value for c in capabilities)}); "
                            f"allowed: {roles}")
        return p

    check.__name__ = "require_" + "_or_".join(c.value for c in capabilities)
    return Depends(check)


__all__ = ["ContactId", "ContractId", "EquipmentId", "InspectionId", "RegCustomerId", "RegMeterId", "RegSiteId",
           "RegistryDep", "needs_any"]
