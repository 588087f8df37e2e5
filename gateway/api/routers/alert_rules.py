"""A customer's own alert limits (kW demand, daily kWh, PF floor, bill to date), for the account or per site.

The alerts job checks them (crm_bridge.alerts.own_rules); each crossing is a threshold_* alert.
"""

from __future__ import annotations

from fastapi import APIRouter

from gateway.api.roles import Capability, needs
from gateway.api.schemas.desk import AlertRules, AlertRulesPublic
from gateway.api.scope import ActorDep, CustomerId, DeskDep

router = APIRouter(prefix="/api/v1/customers", tags=["alerts"], dependencies=[needs(Capability.CONTRACTS)])


@router.get("/{customer_id}/alert-rules")
def get_alert_rules(customer_id: CustomerId, desk: DeskDep) -> AlertRulesPublic:
    """The customer's limits: the whole account's (`site` null) and each site's."""
    return desk.alert_rules(customer_id)


@router.put("/{customer_id}/alert-rules")
def put_alert_rules(customer_id: CustomerId, body: AlertRules, desk: DeskDep, actor: ActorDep) -> AlertRulesPublic:
    """Replace the customer's limits.

    422 naming the field: a limit out of range, a site not the customer's, a site named twice.
    """
    return desk.set_alert_rules(actor, customer_id, body.rules)
