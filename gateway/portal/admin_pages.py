"""The admin's user management in the portal: list logins, add one, disable, reset a password, set an engineer's sites.

Each form calls the auth service the `users` CLI and API call (`gateway/auth/service.py`), under the USERS
capability (admins), with the CSRF check of every portal form; every change is in the audit log with the admin's
name and address. A new or reset password is generated here and shown once, on the answer to the form that made it.
"""

from __future__ import annotations

import re
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from crm_bridge.registry.models import AccountManager, Customer, Site
from gateway.api.deps import client_of
from gateway.api.roles import Capability, needs
from gateway.api.scope import GatewayDep
from gateway.auth import ROLES, AuthError
from gateway.portal import AuthDep, Csrf, User, _render

router = APIRouter(include_in_schema=False, dependencies=[needs(Capability.USERS)])
UserName = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")]
# AuthError texts are the CLI's (English); the portal shows the reader's language by what went wrong.
_ERRORS = (("exists already", "admin_err_exists"), ("unknown customer", "admin_err_customer"),
           ("unknown account manager", "admin_err_manager"), ("unknown site", "admin_err_site"),
           ("only engineers", "admin_err_sites_role"), ("needs --customer", "admin_err_need_customer"),
           ("needs --manager", "admin_err_need_manager"), ("only customer users", "admin_err_customer_role"),
           ("only account_manager", "admin_err_manager_role"), ("username", "admin_err_username"),
           ("no user", "admin_err_no_user"))


def _error_key(exc: AuthError) -> str:
    msg = str(exc)
    return next((key for part, key in _ERRORS if part in msg), "admin_err_invalid")


def _sites(text: str) -> list[str]:
    """Site ids from a free-text field: separated by commas, semicolons or spaces."""
    return [s for s in re.split(r"[\s,;，；]+", text.strip()) if s]


def _page(request: Request, gw: GatewayDep, auth: AuthDep, p: User, status: int = 200, error: str | None = None,
          error_detail: str | None = None, form: dict[str, str] | None = None, done: str | None = None) -> HTMLResponse:
    users = auth.list_users()
    with gw.db() as s:
        customers = list(s.scalars(select(Customer.code).order_by(Customer.code)))
        managers = list(s.scalars(select(AccountManager.code).where(AccountManager.retired_on.is_(None))
                                  .order_by(AccountManager.code)))
        sites = list(s.scalars(select(Site.code).order_by(Site.code)))
    rows = [{"u": u, "sites": auth.sites_of(u.username)} for u in users]
    return _render(request, gw, "admin_users.html.j2", p, status=status, page="admin_users", rows=rows,
                   roles=ROLES, customers=customers, managers=managers, all_sites=sites, error=error,
                   error_detail=error_detail, form=form or {}, done=done)


def _password(request: Request, gw: GatewayDep, p: User, username: str, password: str, added: bool) -> HTMLResponse:
    response = _render(request, gw, "admin_users_password.html.j2", p, page="admin_users", username=username,
                       password=password, added=added)
    response.headers["Cache-Control"] = "no-store"  # the one-time password is never kept by the browser or a proxy
    return response


@router.get("/portal/admin/users")
def users_page(request: Request, gw: GatewayDep, auth: AuthDep, p: User) -> HTMLResponse:
    """Every login with its role, binding, sites and state; the form to add one."""
    done = request.query_params.get("done")
    return _page(request, gw, auth, p, done=done if done in ("disabled", "sites") else None)


@router.post("/portal/admin/users", dependencies=[Csrf])
def add_user(request: Request, gw: GatewayDep, auth: AuthDep, p: User,
             username: Annotated[str, Form(max_length=64)], role: Annotated[str, Form(max_length=20)],
             customer: Annotated[str, Form(max_length=64)] = "", manager: Annotated[str, Form(max_length=64)] = "",
             sites: Annotated[str, Form(max_length=2000)] = "") -> HTMLResponse:
    """Add a login with a generated password, shown once on the answer."""
    form = {"username": username, "role": role, "customer": customer, "manager": manager, "sites": sites}
    password = secrets.token_urlsafe(12)
    try:
        auth.add_user(username.strip(), password, role, customer=customer or None, manager=manager or None,
                      actor=p.username, sites=_sites(sites) if role == "engineer" else [])
    except AuthError as exc:
        return _page(request, gw, auth, p, status=422, error=_error_key(exc), error_detail=str(exc), form=form)
    return _password(request, gw, p, username.strip(), password, added=True)


@router.post("/portal/admin/users/{username}/disable", dependencies=[Csrf])
def disable_user(request: Request, username: UserName, gw: GatewayDep, auth: AuthDep, p: User) -> Response:
    """Disable a login: it cannot log in, and its sessions and tokens end at once."""
    if username == p.username:
        return _page(request, gw, auth, p, status=422, error="admin_err_self")
    try:
        auth.disable_user(username, actor=p.username)
    except AuthError as exc:
        return _page(request, gw, auth, p, status=404, error=_error_key(exc), error_detail=str(exc))
    return RedirectResponse(f"/portal/admin/users?done=disabled#user-{username}", status_code=303)


@router.post("/portal/admin/users/{username}/reset", dependencies=[Csrf])
def reset_password(request: Request, username: UserName, gw: GatewayDep, auth: AuthDep, p: User) -> HTMLResponse:
    """A new generated password, shown once; the user's sessions and tokens end."""
    password = secrets.token_urlsafe(12)
    try:
        auth.reset_password(username, password, actor=p.username, client=client_of(request))
    except AuthError as exc:
        return _page(request, gw, auth, p, status=404, error=_error_key(exc), error_detail=str(exc))
    return _password(request, gw, p, username, password, added=False)


@router.post("/portal/admin/users/{username}/sites", dependencies=[Csrf])
def set_sites(request: Request, username: UserName, gw: GatewayDep, auth: AuthDep, p: User,
              sites: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """The sites an engineer is limited to (empty: every site)."""
    try:
        auth.set_sites(username, _sites(sites), actor=p.username, client=client_of(request))
    except AuthError as exc:
        return _page(request, gw, auth, p, status=422, error=_error_key(exc), error_detail=str(exc))
    return RedirectResponse(f"/portal/admin/users?done=sites#user-{username}", status_code=303)
