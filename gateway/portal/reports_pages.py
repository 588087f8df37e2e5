"""The portal's report pages: the downloads (past months' reports, briefs, what went to whom) and the schedule form.

The reports themselves are made on request by the API's report routes (`customer_report`, `brief_report`), which
the links name, under the same capability. The form saves through the same use case as
`PUT /api/v1/customers/{id}/report-schedule` and refuses what the API refuses, naming the field in the reader's
language.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from gateway.api.roles import Capability, Role, allowed, needs
from gateway.api.scope import ActorDep, CustomerId, GatewayDep, SessionDep
from gateway.portal import Csrf, User, _lang, _nav, _render
from gateway.portal.i18n import text
from gateway.runtime import Gateway
from gateway.usecases.figures import customer_config
from gateway.usecases.report_delivery import (
    DEFAULTS,
    PortfolioSchedulePublic,
    PortfolioScheduleUpdate,
    ReportSchedulePublic,
    ReportScheduleUpdate,
    deliveries_of,
    manager_owner,
    portfolio_manager,
    portfolio_schedule_of,
    report_months,
    schedule_of,
    set_schedule,
)

router = APIRouter(include_in_schema=False)
BRIEF_DAYS = 7  # the daily briefs offered: the last full day and the six before it
BLANK_ROWS = 3  # empty recipient rows under the saved ones, to add addresses
MAX_ROWS = 50  # as ReportScheduleUpdate.recipients allows
SHOWN_DELIVERIES = 50


@router.get("/portal/c/{customer_id}/downloads", dependencies=[needs(Capability.METERED_DATA)])
def downloads_page(request: Request, customer_id: CustomerId, gw: GatewayDep, session: SessionDep,
                   p: User) -> HTMLResponse:
    """Data exports; for roles with reports, every past month's report and recent briefs in PDF and XLSX."""
    tz = ZoneInfo(customer_config(gw, customer_id).timezone)
    today = datetime.now(tz).date()
    last = today - timedelta(days=1)
    months: list[str] = []
    days: list[str] = []
    deliveries: list[Any] = []
    if allowed(p.role, Capability.REPORTS):
        months = [f"{m:%Y-%m}" for m in report_months(gw, customer_id, today)]
        days = [(last - timedelta(days=i)).isoformat() for i in range(BRIEF_DAYS)]
        deliveries, _ = deliveries_of(session, customer_id, SHOWN_DELIVERIES, customer_side=p.role == Role.CUSTOMER)
    return _render(request, gw, "downloads.html.j2", p, page="downloads", start=(last - timedelta(days=29))
                   .isoformat(), end=last.isoformat(), month=last.strftime("%Y-%m"), months=months, days=days,
                   deliveries=deliveries, **_nav(gw, customer_id))


def _rows_of(recipients: list[dict[str, str]]) -> list[dict[str, str]]:
    return [*recipients, *({"email": "", "language": ""} for _ in range(BLANK_ROWS))]


def _form_of(current: ReportSchedulePublic | PortfolioSchedulePublic) -> dict[str, Any]:
    daily = current.daily_hour if isinstance(current, ReportSchedulePublic) else None
    return {"monthly_day": str(current.monthly_day), "monthly_hour": str(current.monthly_hour),
            "daily_on": daily is not None, "daily_hour": str(daily if daily is not None else DEFAULTS.daily_hour),
            "format": current.format, "rows": [r.model_dump() for r in current.recipients]}


def _schedule_page(request: Request, gw: Gateway, session: SessionDep, p: User, customer_id: str,
                   status: int = 200, form: dict[str, Any] | None = None, error: str | None = None,
                   saved: bool = False) -> HTMLResponse:
    current = schedule_of(session, customer_id, customer_config(gw, customer_id).timezone)
    form = form or _form_of(current)
    return _render(request, gw, "report_schedule.html.j2", p, status=status, page="downloads", form=form,
                   rows=_rows_of(form["rows"]), current=current, error=error, saved=saved, portfolio=False,
                   action=f"/portal/c/{customer_id}/reports", **_nav(gw, customer_id))


def _portfolio_page(request: Request, gw: Gateway, session: SessionDep, p: User, code: str, status: int = 200,
                    form: dict[str, Any] | None = None, error: str | None = None,
                    saved: bool = False) -> HTMLResponse:
    current = portfolio_schedule_of(session, code, gw.config.gateway.timezone)
    form = form or _form_of(current)
    return _render(request, gw, "report_schedule.html.j2", p, status=status, page="portfolio_reports", form=form,
                   rows=_rows_of(form["rows"]), current=current, error=error, saved=saved, portfolio=True,
                   action=f"/portal/portfolio/reports?manager={quote(code)}")


@router.get("/portal/c/{customer_id}/reports", dependencies=[needs(Capability.REPORTS)])
def schedule_page(request: Request, customer_id: CustomerId, gw: GatewayDep, session: SessionDep,
                  p: User) -> HTMLResponse:
    """When the reports go out and to whom: a customer its own, a manager its accounts', an admin any."""
    return _schedule_page(request, gw, session, p, customer_id)


def _problem(exc: ValidationError, rows: list[dict[str, str]], lang: str) -> str:
    """The first thing wrong, in the reader's language, naming the field (and the address, for an address)."""
    err = exc.errors()[0]
    loc = err["loc"]
    if loc and loc[0] == "monthly_day":
        return text("reports_bad_day", lang)
    if loc and loc[0] in ("monthly_hour", "daily_hour"):
        return text("reports_bad_hour", lang, field=text(f"reports_{loc[0]}", lang))
    if len(loc) >= 3 and loc[0] == "recipients" and isinstance(loc[1], int):
        address = rows[loc[1]]["email"] if loc[1] < len(rows) else ""
        key = "reports_bad_email" if loc[2] == "email" else "reports_bad_language"
        return text(key, lang, email=address)
    if loc and loc[0] == "recipients" and err["type"] == "too_long":
        return text("reports_too_many", lang, n=MAX_ROWS)
    if loc and loc[0] == "recipients":
        return text("reports_twice", lang)
    return text("error_422", lang)


async def _posted(request: Request) -> dict[str, Any]:
    """The form as entered (kept to show it again): rows `email.N`, `language.N`; an empty address is no row."""
    data = await request.form()

    def field(name: str, size: int = 10) -> str:
        return str(data.get(name, "")).strip()[:size]

    rows = []
    for i in range(MAX_ROWS + BLANK_ROWS + 1):
        if f"email.{i}" not in data:
            break
        if field(f"email.{i}", 250):
            rows.append({"email": field(f"email.{i}", 250), "language": field(f"language.{i}") or "zh"})
    return {"monthly_day": field("monthly_day"), "monthly_hour": field("monthly_hour"),
            "daily_on": field("daily_on") == "on", "daily_hour": field("daily_hour"), "format": field("format"),
            "rows": rows}


@router.post("/portal/c/{customer_id}/reports", dependencies=[Csrf, needs(Capability.REPORTS)])
async def schedule_save(request: Request, customer_id: CustomerId, gw: GatewayDep, session: SessionDep,
                        actor: ActorDep, p: User) -> Response:
    """Save through the API's use case; a bad value re-shows the form with what was entered and why (422)."""
    form = await _posted(request)
    try:
        body = ReportScheduleUpdate.model_validate({
            "monthly_day": form["monthly_day"], "monthly_hour": form["monthly_hour"],
            "daily_hour": form["daily_hour"] if form["daily_on"] else None, "format": form["format"] or "pdf",
            "recipients": form["rows"]})
    except ValidationError as exc:
        return _schedule_page(request, gw, session, p, customer_id, status=422, form=form,
                              error=_problem(exc, form["rows"], _lang(request, p, gw)))
    set_schedule(session, customer_id, body, actor.username)
    return _schedule_page(request, gw, session, p, customer_id, saved=True)


@router.get("/portal/portfolio/reports", dependencies=[needs(Capability.CUSTOMER_FILE)])
def portfolio_page(request: Request, gw: GatewayDep, session: SessionDep, p: User,
                   manager: Annotated[str | None, Query(max_length=64)] = None) -> HTMLResponse:
    """A manager's own portfolio report schedule (an admin names the manager)."""
    return _portfolio_page(request, gw, session, p, portfolio_manager(p.role, p.manager, manager))


@router.post("/portal/portfolio/reports", dependencies=[Csrf, needs(Capability.CUSTOMER_FILE)])
async def portfolio_save(request: Request, gw: GatewayDep, session: SessionDep, p: User,
                         manager: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    code = portfolio_manager(p.role, p.manager, manager)
    portfolio_schedule_of(session, code, gw.config.gateway.timezone)  # not found before anything is read
    form = await _posted(request)
    try:
        body = PortfolioScheduleUpdate.model_validate({
            "monthly_day": form["monthly_day"], "monthly_hour": form["monthly_hour"],
            "format": form["format"] or "pdf", "recipients": form["rows"]})
    except ValidationError as exc:
        return _portfolio_page(request, gw, session, p, code, status=422, form=form,
                               error=_problem(exc, form["rows"], _lang(request, p, gw)))
    set_schedule(session, manager_owner(code), body, p.username)
    return _portfolio_page(request, gw, session, p, code, saved=True)
