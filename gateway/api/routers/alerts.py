"""Alerts: list (scoped), detail, acknowledge, resolve, open a ticket."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select

from crm_bridge.alerts import AlertError, acknowledge, open_ticket, resolve
from crm_bridge.registry.models import Alert
from gateway.api.deps import Page, PageParams, client_of, get_auth
from gateway.api.errors import ApiError
from gateway.api.roles import Capability, needs
from gateway.api.schemas.desk import AlertPublic
from gateway.api.scope import AccessDep, AlertId, GatewayDep, customer_in_scope
from gateway.auth import AuthService

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"], dependencies=[needs(Capability.METERED_DATA)])
AuthDep = Annotated[AuthService, Depends(get_auth)]


def alert_public(a: Alert) -> AlertPublic:
    return AlertPublic(id=a.id, type=a.type, severity=a.severity, customer=a.customer_code, meter=a.meter_code,
                       window_start=a.window_start.isoformat(), window_end=a.window_end.isoformat(),
                       message=a.message, status=a.status, opened_at=a.opened_at.isoformat(),
                       acknowledged_at=a.acknowledged_at.isoformat() if a.acknowledged_at else None,
                       resolved_at=a.resolved_at.isoformat() if a.resolved_at else None, ticket_id=a.ticket_id)


@router.get("")
def list_alerts(gw: GatewayDep, access: AccessDep, page: PageParams,
                status: Annotated[Literal["open", "acknowledged", "resolved"] | None, Query()] = None,
                customer: Annotated[str | None, Query(max_length=128)] = None) -> Page[AlertPublic]:
    """Alerts of the customers the caller may see, newest first."""
    q = select(Alert)
    if customer is not None:
        q = q.where(Alert.customer_code == customer_in_scope(access, gw, customer))
    elif access.customers is not None:
        q = q.where(Alert.customer_code.in_(sorted(access.customers)))
    if status is not None:
        q = q.where(Alert.status == status)
    from sqlalchemy import func

    with gw.db() as s:
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = s.scalars(q.order_by(Alert.opened_at.desc(), Alert.id.desc()).limit(page.limit).offset(page.offset))
        return Page(items=[alert_public(a) for a in rows], total=total, limit=page.limit, offset=page.offset)


@router.get("/{alert_id}")
def get_alert(alert_id: AlertId, gw: GatewayDep) -> AlertPublic:
    with gw.db() as s:
        a = s.get(Alert, alert_id)
        assert a is not None  # noqa: S101 - the scope dependency found it
        return alert_public(a)


def _change(gw: GatewayDep, auth: AuthService, request: Request, alert_id: int, action: str,
            who: str) -> AlertPublic:
    now = datetime.now(UTC)
    with gw.db() as s:
        try:
            a: Alert | None
            if action == "acknowledge":
                a = acknowledge(s, alert_id, now)
            elif action == "resolve":
                a = resolve(s, alert_id, now)
            else:
                open_ticket(s, alert_id, now)
                a = s.get(Alert, alert_id)
        except AlertError as exc:
            raise ApiError(409, str(exc)) from None
        s.commit()
        assert a is not None  # noqa: S101 - the scope dependency found it, and alerts are never deleted
        out = alert_public(a)
    auth.audit(who, f"alert.{action}", f"alert:{alert_id}", None, client_of(request))
    return out


@router.post("/{alert_id}/acknowledge", dependencies=[needs(Capability.ALERT_ACKNOWLEDGE)])
def acknowledge_alert(alert_id: AlertId, gw: GatewayDep, auth: AuthDep, request: Request,
                      access: AccessDep) -> AlertPublic:
    """Open -> acknowledged (customers their own alerts; managers and admins any they see; engineers resolve)."""
    return _change(gw, auth, request, alert_id, "acknowledge", access.principal.username)


@router.post("/{alert_id}/resolve", dependencies=[needs(Capability.ALERT_RESOLVE)])
def resolve_alert(alert_id: AlertId, gw: GatewayDep, auth: AuthDep, request: Request,
                  access: AccessDep) -> AlertPublic:
    return _change(gw, auth, request, alert_id, "resolve", access.principal.username)


@router.post("/{alert_id}/ticket", dependencies=[needs(Capability.TICKET_DESK)])
def alert_ticket(alert_id: AlertId, gw: GatewayDep, auth: AuthDep, request: Request,
                 access: AccessDep) -> AlertPublic:
    """Open a service-desk ticket for the alert (once; the same ticket is returned after)."""
    return _change(gw, auth, request, alert_id, "ticket", access.principal.username)
