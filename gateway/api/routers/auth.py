"""Tokens for API clients (OAuth2 password flow) and who-am-I."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.deps import CurrentPrincipal, client_of, get_auth
from gateway.api.errors import RATE_LIMITED, ApiError
from gateway.api.schemas.users import MePublic, PasswordChanged, TokenPublic
from gateway.api.scope import AccessDep
from gateway.auth import AuthError, AuthService, LoginRateLimited, PasswordRejected

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/token", responses=RATE_LIMITED)
def token(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()],
          auth: Annotated[AuthService, Depends(get_auth)]) -> TokenPublic:
    """Exchange username and password for a bearer token (8 h). Failed logins are rate-limited and audited."""
    from gateway.auth.service import TOKEN_TTL_S

    try:
        p = auth.authenticate(form.username, form.password, client_of(request))
    except LoginRateLimited as exc:
        raise ApiError(429, str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None
    except AuthError as exc:
        raise ApiError(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    return TokenPublic(access_token=auth.issue_token(p), expires_in=TOKEN_TTL_S)


@router.get("/me")
def me(p: CurrentPrincipal, access: AccessDep) -> MePublic:
    """The caller: role, binding, and the customers it may see (null: all)."""
    return MePublic(username=p.username, role=p.role, customer=p.customer, manager=p.manager,
                    customers=None if access.customers is None else sorted(access.customers))


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(min_length=1, max_length=200)
    new_password: str = Field(min_length=10, max_length=200)


@router.post("/password", responses=RATE_LIMITED)
def change_password(request: Request, body: PasswordChange, p: CurrentPrincipal,
                    auth: Annotated[AuthService, Depends(get_auth)]) -> PasswordChanged:
    """Change the caller's own password.

    The current one is checked (rate-limited like a login); afterwards every token and portal session of the user is
    void, this one included.
    """
    try:
        auth.change_password(p.username, body.current_password, body.new_password, client_of(request))
    except LoginRateLimited as exc:
        raise ApiError(429, str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None
    except PasswordRejected as exc:
        raise ApiError(422, str(exc), detail={"field": "new_password"}) from None
    except AuthError as exc:
        raise ApiError(422, f"current_password: {exc}", detail={"field": "current_password"}) from None
    return PasswordChanged(username=p.username)
