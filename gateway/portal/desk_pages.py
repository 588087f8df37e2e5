"""The portal's service-desk pages beyond the list and the queue, and the customer's own alert limits.

The thread, assignment, reopening, an alert turned into a request, the limits form and the desk's statistics. Each
form calls the same use case as its API route (`gateway/usecases/desk.py`) under the same capability.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from crm_bridge.desk.attachments import MAX_BYTES
from gateway.api.roles import Capability, needs
from gateway.api.schemas.desk import AlertRule
from gateway.api.scope import ActorDep, AlertId, CustomerId, DeskDep, GatewayDep, TicketId
from gateway.portal import Csrf, User, _lang, _nav, _render
from gateway.portal.i18n import text
from gateway.usecases.desk import Desk

router = APIRouter(include_in_schema=False)
LIMITS = ("kw_demand", "daily_kwh", "pf_floor", "bill_to_date")
# The range each limit takes, as the form's error names it (the API's AlertRule enforces the same).
RANGES = {"kw_demand": ("0", "10,000,000"), "daily_kwh": ("0", "1,000,000,000"), "pf_floor": ("0.5", "1"),
          "bill_to_date": ("0", "10,000,000,000")}


@router.post("/portal/c/{customer_id}/requests/{ticket_id}/comment", dependencies=[Csrf, needs(Capability.TICKETS)])
def comment(customer_id: CustomerId, ticket_id: TicketId, desk: DeskDep, actor: ActorDep,
            body: Annotated[str, Form(min_length=1, max_length=10_000)],
            internal: Annotated[str, Form(max_length=5)] = "") -> RedirectResponse:
    """Add to the thread (an internal note when the desk ticks the box)."""
    desk.ticket_of(ticket_id, customer_id)
    desk.comment(actor, ticket_id, body, internal == "on")
    return RedirectResponse(f"/portal/c/{customer_id}/requests/{ticket_id}#comments", status_code=303)


@router.post("/portal/c/{customer_id}/requests/{ticket_id}/attach", dependencies=[Csrf, needs(Capability.TICKETS)])
async def attach(customer_id: CustomerId, ticket_id: TicketId, desk: DeskDep, actor: ActorDep,
                 file: Annotated[UploadFile, File()]) -> RedirectResponse:
    """A picture, a PDF or a text file for the request (the API route's rules: 5 MB, type read from the content)."""
    desk.ticket_of(ticket_id, customer_id)
    desk.attach(actor, ticket_id, file.filename or "attachment", await file.read(MAX_BYTES + 1))
    return RedirectResponse(f"/portal/c/{customer_id}/requests/{ticket_id}#attachments", status_code=303)


@router.post("/portal/c/{customer_id}/requests/{ticket_id}/assign",
             dependencies=[Csrf, needs(Capability.TICKET_DESK)])
def assign(customer_id: CustomerId, ticket_id: TicketId, desk: DeskDep, actor: ActorDep,
           manager: Annotated[str, Form(min_length=1, max_length=64)]) -> RedirectResponse:
    desk.ticket_of(ticket_id, customer_id)
    desk.assign(actor, ticket_id, manager)
    return RedirectResponse(f"/portal/c/{customer_id}/requests/{ticket_id}", status_code=303)


@router.post("/portal/c/{customer_id}/requests/{ticket_id}/reopen", dependencies=[Csrf, needs(Capability.TICKETS)])
def reopen(customer_id: CustomerId, ticket_id: TicketId, desk: DeskDep, actor: ActorDep,
           note: Annotated[str, Form(max_length=2000)] = "") -> RedirectResponse:
    """Resolved but not solved: back to in progress, with the customer's reason."""
    desk.ticket_of(ticket_id, customer_id)
    desk.move_ticket(actor, ticket_id, "in_progress", note.strip() or None)
    return RedirectResponse(f"/portal/c/{customer_id}/requests/{ticket_id}", status_code=303)


@router.post("/portal/c/{customer_id}/alerts/{alert_id}/ticket", dependencies=[Csrf, needs(Capability.TICKET_DESK)])
def alert_to_request(customer_id: CustomerId, alert_id: AlertId, desk: DeskDep, actor: ActorDep) -> RedirectResponse:
    """One click: a request for the alert (the same one on a second click), linked both ways."""
    a = desk.change_alert(actor, alert_id, "ticket", customer=customer_id)
    return RedirectResponse(f"/portal/c/{customer_id}/requests/{a.ticket_id}", status_code=303)


def _limits_page(request: Request, gw: GatewayDep, desk: Desk, p: User, customer_id: str, status: int = 200,
                 rows: list[dict[str, str]] | None = None, error: str | None = None,
                 saved: bool = False) -> HTMLResponse:
    current = desk.alert_rules(customer_id)
    sites = [s.id for s in gw.config.sites if s.customer == customer_id]
    if rows is None:
        by_site = {r.site: r for r in current.rules}
        rows = []
        for site in [None, *sites]:
            rule = by_site.get(site)
            rows.append({"site": site or "", **{k: _shown(getattr(rule, k) if rule else None) for k in LIMITS}})
    return _render(request, gw, "limits.html.j2", p, status=status, page="limits", rows=rows, limits=LIMITS,
                   error=error, saved=saved, current=current, **_nav(gw, customer_id))


def _shown(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


@router.get("/portal/c/{customer_id}/limits", dependencies=[needs(Capability.CONTRACTS)])
def limits_page(request: Request, customer_id: CustomerId, gw: GatewayDep, desk: DeskDep, p: User) -> HTMLResponse:
    return _limits_page(request, gw, desk, p, customer_id)


@router.post("/portal/c/{customer_id}/limits", dependencies=[Csrf, needs(Capability.CONTRACTS)])
async def limits_save(request: Request, customer_id: CustomerId, gw: GatewayDep, desk: DeskDep, actor: ActorDep,
                      p: User) -> Response:
    """The form has one row per scope (the account, then each site): `site.N` and `<limit>.N`, empty = not watched.

    A bad value re-shows the form with what was entered and the field named (422).
    """
    form = await request.form()
    lang = _lang(request, p, gw)
    rows: list[dict[str, str]] = []
    for i in range(100):
        if f"site.{i}" not in form:
            break
        rows.append({"site": str(form.get(f"site.{i}", ""))[:200],
                     **{k: str(form.get(f"{k}.{i}", "")).strip()[:30] for k in LIMITS}})
    rules: list[AlertRule] = []
    for row in rows:
        for k in LIMITS:
            try:
                value = float(row[k]) if row[k] else None
                if value is not None:
                    AlertRule.model_validate({k: value})
            except (ValueError, ValidationError):
                where = row["site"] or text("whole_account", lang)
                error = text("limit_bad", lang, field=f"{where} · {text('limit_' + k, lang)}",
                             lo=RANGES[k][0], hi=RANGES[k][1])
                return _limits_page(request, gw, desk, p, customer_id, status=422, rows=rows, error=error)
        rules.append(AlertRule.model_validate({"site": row["site"] or None,
                                               **{k: float(row[k]) if row[k] else None for k in LIMITS}}))
    desk.set_alert_rules(actor, customer_id, rules)
    return _limits_page(request, gw, desk, p, customer_id, saved=True)


@router.get("/portal/stats", dependencies=[needs(Capability.TICKET_DESK)])
def stats_page(request: Request, gw: GatewayDep, desk: DeskDep, actor: ActorDep, p: User) -> HTMLResponse:
    """Response and resolution against target and satisfaction, per manager, category and tier."""
    return _render(request, gw, "stats.html.j2", p, page="stats", stats=desk.stats(actor))
