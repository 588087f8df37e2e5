"""Report schedules and recipients (a customer's reports, a manager's portfolio), and what went to whom.

The reports job (gateway/report_jobs.py) mails each report on these schedules. A customer sees and changes its own,
an account manager its accounts' and its own portfolio's, an admin every one (another customer's id or another
manager's code is 404, as one that does not exist); the engineer role has no reports.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gateway.api.deps import Page, PageParams
from gateway.api.roles import Capability, Role, needs
from gateway.api.scope import AccessDep, ActorDep, CustomerId, GatewayDep, SessionDep
from gateway.usecases.figures import customer_config
from gateway.usecases.report_delivery import (
    PortfolioSchedulePublic,
    PortfolioScheduleUpdate,
    ReportDeliveryPublic,
    ReportSchedulePublic,
    ReportScheduleUpdate,
    deliveries_of,
    manager_owner,
    portfolio_manager,
    portfolio_schedule_of,
    schedule_of,
    set_schedule,
)

router = APIRouter(prefix="/api/v1", tags=["reports"], dependencies=[needs(Capability.REPORTS)])
ManagerCode = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$",
                                          description="Manager code; default your own")]


@router.get("/customers/{customer_id}/report-schedule")
def get_report_schedule(customer_id: CustomerId, gw: GatewayDep, session: SessionDep) -> ReportSchedulePublic:
    """When the monthly report and the daily brief go out (on the customer's clock), in what format, to whom.

    `custom` false: none set; the defaults hold and the account's people and managers get the reports.
    """
    return schedule_of(session, customer_id, customer_config(gw, customer_id).timezone)


@router.put("/customers/{customer_id}/report-schedule")
def put_report_schedule(customer_id: CustomerId, body: ReportScheduleUpdate, gw: GatewayDep, session: SessionDep,
                        actor: ActorDep) -> ReportSchedulePublic:
    """Replace the schedule and its recipients.

    422 naming the field: a day outside 1-28, an hour outside 0-23, an address that is not one, an address twice.
    """
    set_schedule(session, customer_id, body, actor.username)
    return schedule_of(session, customer_id, customer_config(gw, customer_id).timezone)


@router.get("/customers/{customer_id}/report-deliveries")
def get_report_deliveries(customer_id: CustomerId, session: SessionDep, access: AccessDep,
                          page: PageParams) -> Page[ReportDeliveryPublic]:
    """Which report went to whom over which channel, and its status (queued, delivered or failed); newest first.

    A customer sees its own people, its schedule's addresses and its managers, not the utility's other staff.
    """
    items, total = deliveries_of(session, customer_id, page.limit, page.offset,
                                 customer_side=access.principal.role == Role.CUSTOMER)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/portfolio/report-schedule", dependencies=[needs(Capability.CUSTOMER_FILE)])
def get_portfolio_schedule(gw: GatewayDep, session: SessionDep, access: AccessDep,
                           manager: ManagerCode = None) -> PortfolioSchedulePublic:
    """When a manager's portfolio report goes out (on the gateway's clock), in what format, to whom.

    `custom` false: none set; the defaults hold and it goes to the manager's own address in the registry.
    """
    code = portfolio_manager(access.principal.role, access.principal.manager, manager)
    return portfolio_schedule_of(session, code, gw.config.gateway.timezone)


@router.put("/portfolio/report-schedule", dependencies=[needs(Capability.CUSTOMER_FILE)])
def put_portfolio_schedule(body: PortfolioScheduleUpdate, gw: GatewayDep, session: SessionDep, access: AccessDep,
                           manager: ManagerCode = None) -> PortfolioSchedulePublic:
    """Replace the portfolio schedule and its recipients (422 naming the field, as for a customer's)."""
    code = portfolio_manager(access.principal.role, access.principal.manager, manager)
    portfolio_schedule_of(session, code, gw.config.gateway.timezone)  # 404 for a manager that does not exist
    set_schedule(session, manager_owner(code), body, access.principal.username)
    return portfolio_schedule_of(session, code, gw.config.gateway.timezone)


@router.get("/portfolio/report-deliveries", dependencies=[needs(Capability.CUSTOMER_FILE)])
def get_portfolio_deliveries(session: SessionDep, access: AccessDep, page: PageParams,
                             manager: ManagerCode = None) -> Page[ReportDeliveryPublic]:
    """Which portfolio report went to whom, and its status; newest first."""
    code = portfolio_manager(access.principal.role, access.principal.manager, manager)
    items, total = deliveries_of(session, manager_owner(code), page.limit, page.offset)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)
