"""Alerts: list (scoped), detail, acknowledge, resolve, open a ticket (through `gateway/usecases/desk.py`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gateway.api.deps import Page, PageParams
from gateway.api.roles import Capability, needs
from gateway.api.schemas.desk import AlertPublic
from gateway.api.scope import AccessDep, ActorDep, AlertId, DeskDep, GatewayDep, customer_in_scope
from gateway.usecases.desk import AlertStatus

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"], dependencies=[needs(Capability.METERED_DATA)])


@router.get("")
def list_alerts(desk: DeskDep, actor: ActorDep, access: AccessDep, gw: GatewayDep, page: PageParams,
                status: Annotated[AlertStatus | None, Query()] = None,
                customer: Annotated[str | None, Query(max_length=128)] = None) -> Page[AlertPublic]:
    """Alerts of the customers the caller may see, newest first."""
    if customer is not None:
        customer_in_scope(access, gw, customer)
    items, total = desk.alerts(actor, customer, status, page.limit, page.offset)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{alert_id}")
def get_alert(alert_id: AlertId, desk: DeskDep) -> AlertPublic:
    return desk.alert(alert_id)


@router.post("/{alert_id}/acknowledge", dependencies=[needs(Capability.ALERT_ACKNOWLEDGE)])
def acknowledge_alert(alert_id: AlertId, desk: DeskDep, actor: ActorDep) -> AlertPublic:
    """Open -> acknowledged (customers their own alerts; managers and admins any they see; engineers resolve)."""
    return desk.change_alert(actor, alert_id, "acknowledge")


@router.post("/{alert_id}/resolve", dependencies=[needs(Capability.ALERT_RESOLVE)])
def resolve_alert(alert_id: AlertId, desk: DeskDep, actor: ActorDep) -> AlertPublic:
    return desk.change_alert(actor, alert_id, "resolve")


@router.post("/{alert_id}/ticket", dependencies=[needs(Capability.TICKET_DESK)])
def alert_ticket(alert_id: AlertId, desk: DeskDep, actor: ActorDep) -> AlertPublic:
    """Open a service-desk ticket for the alert (once; the same ticket is returned after)."""
    return desk.change_alert(actor, alert_id, "ticket")
