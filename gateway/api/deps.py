"""Request dependencies: the gateway, the caller (bearer token or portal session), role checks, paging."""

from __future__ import annotations

import secrets
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query, Request
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel

from gateway.api.errors import ApiError
from gateway.auth import AuthError, AuthService, Principal
from gateway.usecases import UseCases

if TYPE_CHECKING:
    from gateway.runtime import Gateway

SESSION_COOKIE = "eg_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def get_gw(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


def get_usecases(request: Request) -> UseCases:
    uc: UseCases = request.app.state.usecases
    return uc


UseCasesDep = Annotated[UseCases, Depends(get_usecases)]


def get_auth(request: Request) -> AuthService:
    auth: AuthService = request.app.state.auth
    return auth


def client_of(request: Request) -> str:
    """The client's address: the peer, or, when the peer is a trusted proxy, the nearest untrusted X-Forwarded-For hop.

    No proxy is trusted unless `[api] trusted_proxies` names it (uvicorn's own header handling is off), so a client
    cannot pick its own address for the login limits and the audit log by sending the header.
    """
    peer = request.client.host if request.client else "-"
    trusted: tuple[IPv4Network | IPv6Network, ...] = getattr(request.app.state, "trusted_proxies", ())
    if not trusted or not _is_in(peer, trusted):
        return peer
    chosen = peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",")]
    for hop in reversed(hops):
        try:
            chosen = str(ip_address(hop))
        except ValueError:
            break  # a hop that is no address: stop at the last proxy we trust
        if not _is_in(chosen, trusted):
            break
    return chosen


def is_https(request: Request) -> bool:
    """Whether the browser reached us over https: directly, or through a trusted proxy saying so."""
    if request.url.scheme == "https":
        return True
    trusted: tuple[IPv4Network | IPv6Network, ...] = getattr(request.app.state, "trusted_proxies", ())
    peer = request.client.host if request.client else "-"
    if trusted and _is_in(peer, trusted):
        return request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower() == "https"
    return False


def _is_in(addr: str, networks: tuple[IPv4Network | IPv6Network, ...]) -> bool:
    try:
        ip = ip_address(addr)
    except ValueError:
        return False
    return any(ip.version == n.version and ip in n for n in networks)


def optional_principal(request: Request, token: Annotated[str | None, Depends(oauth2)] = None) -> Principal | None:
    """The caller from `Authorization: Bearer` or, for the portal, the session cookie; None when anonymous."""
    auth = get_auth(request)
    try:
        if token:
            return auth.from_token(token)
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            principal, csrf = auth.from_session(cookie)
            request.state.csrf = csrf
            # A browser session changing something through the API must prove it came from our own page.
            if request.method not in SAFE_METHODS and request.url.path.startswith("/api/"):
                sent = request.headers.get("X-CSRF-Token", "")
                if not sent or not secrets.compare_digest(sent, csrf):
                    raise ApiError(403, "a session-authenticated API change needs the X-CSRF-Token header",
                                   code="csrf")
            return principal
    except AuthError as exc:
        if token:
            raise ApiError(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
        request.state.session_error = str(exc)
    return None


def current_principal(p: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    if p is None:
        raise ApiError(401, "not authenticated: send a bearer token from POST /api/v1/auth/token",
                       headers={"WWW-Authenticate": "Bearer"})
    return p


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


class Paging(BaseModel):
    limit: int
    offset: int


def paging(limit: Annotated[int, Query(ge=1, le=500, description="Items per page")] = 50,
           offset: Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip")] = 0) -> Paging:
    return Paging(limit=limit, offset=offset)


PageParams = Annotated[Paging, Depends(paging)]
T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a list: the items, how many there are in all, and where this page starts."""

    items: list[T]
    total: int
    limit: int
    offset: int


def page_of(items: list[T], p: Paging) -> Page[T]:
    """The page `p` of a list held in memory."""
    return Page[Any](items=items[p.offset:p.offset + p.limit], total=len(items), limit=p.limit, offset=p.offset)
