"""The customer portal: server-rendered pages (Jinja2) with plotly.js served from the installed package.

Pages take the same scope dependencies as the API, so a customer reaching another customer's page by URL gets
the same 404 as for a page that does not exist, and the same capabilities (`gateway/api/roles.py`), so a page or
form is open exactly when the API route behind it is. Forms carry a CSRF token bound to the signed session cookie.
Every template is auto-escaped; no page has inline script, and every response carries a Content-Security-Policy
that forbids it (SecurityHeaders).
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import plotly
from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_bridge.tariffs.model import next_month
from gateway.api.deps import SESSION_COOKIE, UseCasesDep, client_of, get_auth, is_https, optional_principal
from gateway.api.errors import ApiError, not_found
from gateway.api.roles import Capability, allowed, needs
from gateway.api.scope import ActorDep, AlertId, CustomerId, DeskDep, GatewayDep, TicketId
from gateway.auth import AuthError, AuthService, LoginRateLimited, PasswordRejected, Principal
from gateway.portal import i18n, units
from gateway.portal.charts import day_chart
from gateway.portal.i18n import messages
from gateway.runtime import Gateway
from gateway.usecases import BeforeTariff, NoContract, NoData, UseCaseError, parse_day, parse_month, without_money
from gateway.usecases.desk import NEXT_ON_DESK, advice_month
from gateway.usecases.figures import customer_config
from gateway.usecases.forecast_accuracy import day_forecast_note, month_forecast_note

LANG_COOKIE = "eg_lang"
LOGIN_CSRF_COOKIE = "eg_login_csrf"
_HERE = Path(__file__).parent
# Starlette's default escapes only templates named *.html/*.htm/*.xml; ours are *.html.j2, so escape all of them.
# Texts: Jinja's i18n extension, `_("key", name=value)` in the page's `lang` (gateway/portal/i18n.py), set up once.
templates = Jinja2Templates(env=Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=True,
                                            extensions=["jinja2.ext.i18n"]))
i18n.install(templates.env)


def _local(iso: str | None, zone: str) -> str:
    """Template filter: an ISO time from the use cases, on the customer's clock, to the minute."""
    return "" if not iso else datetime.fromisoformat(iso).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


templates.env.filters["local"] = _local
STATIC = {"portal.js": "text/javascript; charset=utf-8", "portal.css": "text/css; charset=utf-8"}
# plotly.js sets inline styles on the elements it draws, so inline *style* is allowed; inline script never is.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"}
AuthDep = Annotated[AuthService, Depends(get_auth)]


def plotly_js() -> Path:
    return Path(str(resources.files(plotly).joinpath("package_data", "plotly.min.js")))


def _lang(request: Request, principal: Principal | None, gw: Gateway) -> str:
    chosen = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    if chosen in ("zh", "en"):
        return chosen
    if principal is not None and principal.language in ("zh", "en"):
        return principal.language
    if principal is not None and principal.customer:
        return customer_config(gw, principal.customer).language
    return "zh"


def _render(request: Request, gw: Gateway, name: str, principal: Principal | None, status: int = 200,
            **ctx: Any) -> HTMLResponse:
    lang = _lang(request, principal, gw)
    zone = ctx.get("timezone") or gw.config.gateway.timezone

    def can(capability: str) -> bool:
        """For templates: show a link or form only when the page or route behind it would be allowed."""
        return principal is not None and allowed(principal.role, Capability(capability))

    helpers = {
        "label": lambda prefix, value: i18n.label(prefix, value, lang),
        "num": lambda x, digits=0: i18n.num(x, lang, digits),
        "money": lambda x, currency, digits=0: i18n.money(x, currency, lang, digits),
        "when": lambda iso, z=None: i18n.when(iso, z or zone, lang),
        "countdown": lambda iso: i18n.countdown(iso, datetime.now(UTC), lang),
        "alert_text": lambda a, z=None: i18n.alert_message(a.message_key, a.message_params, a.message, z or zone, lang),
        "category": lambda c: _category(c, lang),
        "advice_title": lambda item: i18n.advice_title(item, lang),
        # Quantities and money with their unit and precision (gateway/portal/units.py: the one set of rules).
        "q": lambda x, unit="": units.q(x, unit, lang), "cash": lambda x, currency: units.cash(x, currency, lang),
        "signed_cash": lambda x, currency: units.cash(x, currency, lang, signed=True),
        "pct": lambda x, signed=False: units.pct(x, lang, signed),
    }
    response = templates.TemplateResponse(request, name, {
        "can": can, "lang": lang, "user": principal, "csrf": getattr(request.state, "csrf", ""), **helpers,
        **ctx}, status_code=status)
    if request.query_params.get("lang") in ("zh", "en"):
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
    return response


def _category(category: str, lang: str) -> str:
    """A ticket's category in the reader's language; `alert:<type>` names the alert type."""
    if category.startswith("alert:"):
        return i18n.text("category_alert", lang, type=i18n.label("alert_type", category[6:], lang))
    return i18n.label("category", category, lang)


def _secure(request: Request) -> bool:
    return is_https(request)


def require_user(p: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    if p is None:
        raise ApiError(401, "log in first")
    return p


User = Annotated[Principal, Depends(require_user)]


async def check_csrf(request: Request, p: Annotated[Principal | None, Depends(optional_principal)]) -> None:
    """Every portal form posts csrf_token, equal to the token inside the signed session cookie."""
    if p is None:
        raise ApiError(401, "log in first")
    form = await request.form()
    sent = form.get("csrf_token")
    expected = getattr(request.state, "csrf", "")
    if not expected or not isinstance(sent, str) or not secrets.compare_digest(sent, expected):
        raise ApiError(403, "the form's CSRF token is missing or wrong; reload the page and try again",
                       code="csrf")


Csrf = Depends(check_csrf)


router = APIRouter(include_in_schema=False)


def _home(p: Principal) -> str:
    if p.role == "customer" and p.customer:
        return f"/portal/c/{p.customer}/day"
    return "/portal/accounts"  # an account manager's workspace; everyone else's list of accounts


@router.get("/")
def root(p: Annotated[Principal | None, Depends(optional_principal)]) -> RedirectResponse:
    return RedirectResponse("/login" if p is None else _home(p), status_code=303)


@router.get("/static/plotly.min.js")
def plotly_file() -> FileResponse:
    return FileResponse(plotly_js(), media_type="application/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})


@router.get("/static/{name}")
def static_file(name: str) -> FileResponse:
    """The portal's own script and style sheet (a fixed list: nothing else under static/ is served)."""
    if name not in STATIC:
        raise not_found("static file", name)
    return FileResponse(_HERE / "static" / name, media_type=STATIC[name], headers={"Cache-Control": "no-cache"})


@router.get("/login")
def login_page(request: Request, gw: GatewayDep) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = _render(request, gw, "login.html.j2", None, login_csrf=token, error=None)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="lax", secure=_secure(request))
    return response


@router.post("/login")
def login(request: Request, gw: GatewayDep, auth: AuthDep, username: Annotated[str, Form(max_length=64)],
          password: Annotated[str, Form(max_length=200)], csrf_token: Annotated[str, Form(max_length=100)]) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    error, status, retry = None, 401, 0
    if not expected or not secrets.compare_digest(expected, csrf_token):
        error, status = "login_csrf", 403
    else:
        try:
            p = auth.authenticate(username, password, client_of(request))
        except LoginRateLimited as exc:
            error, status, retry = "login_limited", 429, exc.retry_after_s
        except AuthError:
            error = "login_failed"
    if error is not None:
        token = secrets.token_urlsafe(24)
        response: Response = _render(request, gw, "login.html.j2", None, status=status, login_csrf=token,
                                     error=error, retry_after_s=retry)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="lax", secure=_secure(request))
        if retry:
            response.headers["Retry-After"] = str(retry)
        return response
    cookie, _ = auth.issue_session(p, client_of(request))
    response = RedirectResponse(_home(p), status_code=303)
    response.set_cookie(SESSION_COOKIE, cookie, httponly=True, samesite="lax", secure=_secure(request),
                        max_age=int(auth.session_absolute_s))
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout", dependencies=[Csrf])
def logout(request: Request, p: User, auth: AuthDep) -> RedirectResponse:
    auth.end_session(request.cookies.get(SESSION_COOKIE, ""))
    auth.audit(p.username, "logout", p.username, None, client_of(request))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/portal/password")
def password_page(request: Request, gw: GatewayDep, p: User) -> HTMLResponse:
    return _render(request, gw, "password.html.j2", p, page="password", error=None)


@router.post("/portal/password", dependencies=[Csrf])
def password_change(request: Request, gw: GatewayDep, p: User, auth: AuthDep,
                    current_password: Annotated[str, Form(max_length=200)],
                    new_password: Annotated[str, Form(max_length=200)],
                    repeat_password: Annotated[str, Form(max_length=200)]) -> Response:
    """Every session of the user ends (copies of this cookie too); this browser gets a fresh one."""
    error, status, retry = None, 422, 0
    if not secrets.compare_digest(new_password.encode(), repeat_password.encode()):
        error = "password_mismatch"
    else:
        try:
            p = auth.change_password(p.username, current_password, new_password, client_of(request))
        except LoginRateLimited as exc:
            error, status, retry = "login_limited", 429, exc.retry_after_s
        except PasswordRejected:
            error = "password_rules"
        except AuthError:
            error = "password_wrong"
    if error is not None:
        return _render(request, gw, "password.html.j2", p, status=status, page="password", error=error,
                       retry_after_s=retry)
    cookie, csrf = auth.issue_session(p, client_of(request))
    request.state.csrf = csrf
    response = _render(request, gw, "password.html.j2", p, page="password", error=None, changed=True)
    response.set_cookie(SESSION_COOKIE, cookie, httponly=True, samesite="lax", secure=_secure(request),
                        max_age=int(auth.session_absolute_s))
    return response


def _nav(gw: Gateway, customer: str) -> dict[str, Any]:
    c = customer_config(gw, customer)
    return {"customer": c.id, "customer_name": c.name or c.id, "timezone": c.timezone}


@router.get("/portal/c/{customer_id}/day", dependencies=[needs(Capability.METERED_DATA)])
def day_page(request: Request, customer_id: CustomerId, gw: GatewayDep, v: UseCasesDep, p: User,
             day: Annotated[str | None, Query(alias="date", max_length=10)] = None) -> HTMLResponse:
    tz = ZoneInfo(customer_config(gw, customer_id).timezone)
    d = parse_day(day, tz)
    curve = v.day_curve(customer_id, d)
    lang = _lang(request, p, gw)
    labels = {k: messages().get(k, {}).get(lang, k) for k in ("actual", "forecast", "last_week", "estimated")}
    labels |= {s: messages().get(f"status_{s}", {}).get(lang, s) for s in ("pending", "missing")}
    pending = [pt["start"] for pt in curve["points"] if pt["status"] == "pending"]
    return _render(request, gw, "day.html.j2", p, page="day", curve=curve,
                   chart=day_chart(curve["points"], labels, lang),
                   pending_from=pending[0][11:16] if pending else None,
                   forecast_note=day_forecast_note(v, customer_id, d),
                   day=d.isoformat(), prev_day=(d - timedelta(days=1)).isoformat(),
                   next_day=(d + timedelta(days=1)).isoformat(), **_nav(gw, customer_id))


def _month_reason(reason: UseCaseError | None, first: date, today: date) -> dict[str, str] | None:
    """Why a month has no view, as a message key and its values: never the exception's (English) text."""
    if reason is None:
        return None
    if isinstance(reason, BeforeTariff):
        return {"key": "before_tariff", "tariff": reason.tariff_id, "date": reason.first_date.isoformat()}
    if isinstance(reason, NoContract):
        return {"key": "no_contract"}
    if isinstance(reason, NoData) and first >= today.replace(day=1):  # not begun, or nothing reached yet
        return {"key": "no_data_yet"}
    return {"key": "no_data_month"}


@router.get("/portal/c/{customer_id}/month", dependencies=[needs(Capability.METERED_DATA)])
def month_page(request: Request, customer_id: CustomerId, gw: GatewayDep, v: UseCasesDep, p: User,
               month: Annotated[str | None, Query(max_length=7)] = None) -> HTMLResponse:
    tz = ZoneInfo(customer_config(gw, customer_id).timezone)
    first = parse_month(month, tz)
    reason = None
    try:
        view = v.month_view(customer_id, first)
        view = view if allowed(p.role, Capability.MONEY) else without_money(view)
    except UseCaseError as exc:
        view, reason = None, exc
    prev = (first - timedelta(days=1)).replace(day=1)
    nxt = next_month(first)
    from gateway.portal.curve_pages import month_extras  # the chart, the total and the comparison

    extras = month_extras(v, customer_id, first, view, _lang(request, p, gw), allowed(p.role, Capability.MONEY))
    return _render(request, gw, "month.html.j2", p, page="month", view=view, **extras,
                   reason=_month_reason(reason, first, datetime.now(tz).date()),
                   forecast_note=month_forecast_note(v, customer_id, first),
                   month=first.strftime("%Y-%m"), prev_month=prev.strftime("%Y-%m"),
                   next_month=nxt.strftime("%Y-%m"), **_nav(gw, customer_id))


@router.get("/portal/c/{customer_id}/advice", dependencies=[needs(Capability.MONEY)])
def advice_page(request: Request, customer_id: CustomerId, gw: GatewayDep, v: UseCasesDep, desk: DeskDep,
                p: User) -> HTMLResponse:
    from gateway.usecases.services import advice_for

    items = advice_for(v, customer_id)
    month = advice_month(datetime.now(ZoneInfo(customer_config(gw, customer_id).timezone)).date())
    links = desk.advice_links(customer_id, month) if allowed(p.role, Capability.TICKETS) else {}
    return _render(request, gw, "advice.html.j2", p, page="advice", advice=items, requests=links,
                   **_nav(gw, customer_id))


@router.post("/portal/c/{customer_id}/advice/{key}/request",
             dependencies=[Csrf, needs(Capability.MONEY), needs(Capability.TICKET_DESK)])
def advice_request(customer_id: CustomerId, key: Annotated[str, PathParam(pattern="^[a-z0-9_]{1,60}$")],
                   gw: GatewayDep, v: UseCasesDep, desk: DeskDep, actor: ActorDep) -> RedirectResponse:
    """One click: a request for this piece of advice, or the one it already has; lands on the request."""
    from gateway.usecases.services import advice_for

    c = customer_config(gw, customer_id)
    month = advice_month(datetime.now(ZoneInfo(c.timezone)).date())
    ticket_id = desk.advice_links(customer_id, month).get(key)
    if ticket_id is None:
        ticket_id = desk.open_advice_request(actor, customer_id, key, month, advice_for(v, customer_id),
                                             c.language).ticket.id
    return RedirectResponse(f"/portal/c/{customer_id}/requests/{ticket_id}", status_code=303)


@router.get("/portal/c/{customer_id}/alerts", dependencies=[needs(Capability.METERED_DATA)])
def alerts_page(request: Request, customer_id: CustomerId, gw: GatewayDep, desk: DeskDep, actor: ActorDep,
                p: User) -> HTMLResponse:
    alerts, _ = desk.alerts(actor, customer_id, limit=200)
    return _render(request, gw, "alerts.html.j2", p, page="alerts", alerts=alerts, **_nav(gw, customer_id))


@router.post("/portal/c/{customer_id}/alerts/{alert_id}/ack",
             dependencies=[Csrf, needs(Capability.ALERT_ACKNOWLEDGE)])
def alert_ack(customer_id: CustomerId, alert_id: AlertId, desk: DeskDep, actor: ActorDep) -> RedirectResponse:
    desk.change_alert(actor, alert_id, "acknowledge", customer=customer_id)
    return RedirectResponse(f"/portal/c/{customer_id}/alerts", status_code=303)


@router.get("/portal/c/{customer_id}/requests", dependencies=[needs(Capability.TICKETS)])
def requests_page(request: Request, customer_id: CustomerId, gw: GatewayDep, desk: DeskDep, actor: ActorDep,
                  p: User) -> HTMLResponse:
    tickets, _ = desk.tickets(actor, customer_id, limit=500)
    return _render(request, gw, "requests.html.j2", p, page="requests", tickets=tickets, **_nav(gw, customer_id))


@router.post("/portal/c/{customer_id}/requests", dependencies=[Csrf, needs(Capability.TICKETS)])
def open_request(customer_id: CustomerId, desk: DeskDep, actor: ActorDep,
                 kind: Annotated[str, Form(pattern="^(request|complaint)$")],
                 category: Annotated[str, Form(min_length=1, max_length=60)],
                 title: Annotated[str, Form(min_length=1, max_length=300)],
                 description: Annotated[str, Form(max_length=10_000)] = "",
                 contact: Annotated[str, Form(max_length=200)] = "") -> RedirectResponse:
    t = desk.open_ticket(actor, customer_id, kind, category, title, description.strip() or None,
                         contact.strip() or None)
    return RedirectResponse(f"/portal/c/{customer_id}/requests/{t.id}", status_code=303)


@router.get("/portal/c/{customer_id}/requests/{ticket_id}", dependencies=[needs(Capability.TICKETS)])
def request_page(request: Request, customer_id: CustomerId, ticket_id: TicketId, gw: GatewayDep, desk: DeskDep,
                 actor: ActorDep, p: User) -> HTMLResponse:
    managers = desk.managers_of(customer_id) if allowed(p.role, Capability.TICKET_DESK) else []
    return _render(request, gw, "request.html.j2", p, page="requests", managers=managers,
                   ticket=desk.ticket_of(ticket_id, customer_id, actor), advice=desk.advice_of_ticket(ticket_id),
                   **_nav(gw, customer_id))


@router.post("/portal/c/{customer_id}/requests/{ticket_id}/rate", dependencies=[Csrf, needs(Capability.TICKETS)])
def rate_request(customer_id: CustomerId, ticket_id: TicketId, desk: DeskDep, actor: ActorDep,
                 satisfaction: Annotated[int, Form(ge=1, le=5)],
                 note: Annotated[str, Form(max_length=2000)] = "") -> RedirectResponse:
    """Close with the customer's score and, if given, a word on how it went (the short survey)."""
    desk.ticket_of(ticket_id, customer_id)
    desk.move_ticket(actor, ticket_id, "closed", note.strip() or None, satisfaction=satisfaction)
    return RedirectResponse(f"/portal/c/{customer_id}/requests/{ticket_id}", status_code=303)


@router.get("/portal/queue", dependencies=[needs(Capability.TICKET_DESK)])
def queue_page(request: Request, gw: GatewayDep, desk: DeskDep, actor: ActorDep, p: User) -> HTMLResponse:
    tickets, _ = desk.tickets(actor, limit=500)
    return _render(request, gw, "queue.html.j2", p, page="queue", tickets=tickets, next_status=NEXT_ON_DESK)


@router.post("/portal/queue/{ticket_id}/move", dependencies=[Csrf, needs(Capability.TICKET_DESK)])
def queue_move(ticket_id: TicketId, desk: DeskDep, actor: ActorDep,
               to: Annotated[str, Form(pattern="^(acknowledged|in_progress|resolved)$")]) -> RedirectResponse:
    desk.move_ticket(actor, ticket_id, to)
    return RedirectResponse("/portal/queue", status_code=303)


class SecurityHeaders:
    """ASGI middleware: SECURITY_HEADERS on every response, each unless the response set its own.

    The API documentation pages (Swagger UI, ReDoc) run inline script from FastAPI and are left without the CSP.
    """

    def __init__(self, app: ASGIApp, exempt: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exempt = scope["path"] in self.exempt

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers and not (exempt and name == "Content-Security-Policy"):
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def mount_portal(app: FastAPI) -> None:
    from gateway.portal.accounts_pages import router as accounts_router
    from gateway.portal.desk_pages import router as desk_router
    from gateway.portal.reports_pages import router as reports_router

    app.include_router(router)
    app.include_router(desk_router)
    app.include_router(reports_router)
    app.include_router(accounts_router)
    app.include_router(__import__("gateway.portal.curve_pages", fromlist=["router"]).router)  # ranges, kW now
    app.include_router(__import__("gateway.portal.admin_pages", fromlist=["router"]).router)  # admin users
    app.include_router(__import__("gateway.portal.energy_pages", fromlist=["router"]).router)  # costs, SEC, purchase
    app.include_router(__import__("gateway.portal.cost_centre_pages", fromlist=["router"]).router)  # one cost centre
    app.include_router(__import__("gateway.portal.cost_setup_pages", fromlist=["router"]).router)  # cost setup
    docs = frozenset(u for u in (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url) if u)
    app.add_middleware(SecurityHeaders, exempt=docs)


__all__ = ["Csrf", "User", "mount_portal", "plotly_js"]
