"""Admins: users (list, add, disable) and the audit log."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.deps import Page, PageParams, client_of, get_auth, page_of
from gateway.api.errors import ApiError
from gateway.api.roles import Capability, needs
from gateway.api.schemas.users import AuditEventPublic, PasswordReset, UserCreated, UserDisabled, UserPublic
from gateway.api.scope import AccessDep
from gateway.auth import AuthError, AuthService, PasswordRejected

router = APIRouter(prefix="/api/v1", tags=["users"], dependencies=[needs(Capability.USERS)])
AuthDep = Annotated[AuthService, Depends(get_auth)]


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=10, max_length=200)
    role: Literal["admin", "engineer", "account_manager", "customer"]
    customer: str | None = Field(None, max_length=64)
    manager: str | None = Field(None, max_length=64)


@router.get("/users")
def list_users(auth: AuthDep, page: PageParams) -> Page[UserPublic]:
    items = [UserPublic(username=u.username, role=u.role, customer=u.customer, manager=u.manager,
                        disabled=u.disabled, created_at=u.created_at.isoformat()) for u in auth.list_users()]
    return page_of(items, page)


@router.post("/users", status_code=201)
def add_user(body: NewUser, auth: AuthDep, access: AccessDep) -> UserCreated:
    try:
        u = auth.add_user(body.username, body.password, body.role, body.customer, body.manager,
                          actor=access.principal.username)
    except AuthError as exc:
        raise ApiError(422, str(exc)) from None
    return UserCreated(username=u.username, role=u.role, customer=u.customer, manager=u.manager)


@router.post("/users/{username}/disable")
def disable_user(username: Annotated[str, Path(max_length=64)], auth: AuthDep, access: AccessDep) -> UserDisabled:
    try:
        auth.disable_user(username, actor=access.principal.username)
    except AuthError as exc:
        raise ApiError(404, str(exc)) from None
    return UserDisabled(username=username, disabled=True)


class NewPassword(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(min_length=10, max_length=200, description="the new password, handed over out of band")


@router.post("/users/{username}/reset-password")
def reset_password(request: Request, username: Annotated[str, Path(max_length=64)], body: NewPassword,
                   auth: AuthDep, access: AccessDep) -> PasswordReset:
    """Set a user's password (admins); every token and session of that user ends at once."""
    try:
        auth.reset_password(username, body.password, actor=access.principal.username, client=client_of(request))
    except PasswordRejected as exc:
        raise ApiError(422, str(exc), detail={"field": "password"}) from None
    except AuthError as exc:
        raise ApiError(404, str(exc)) from None
    return PasswordReset(username=username, reset=True)


@router.get("/audit")
def audit_log(auth: AuthDep, page: PageParams) -> Page[AuditEventPublic]:
    rows, total = auth.audit_log(page.limit, page.offset)
    return Page(items=[AuditEventPublic(at=r.at.isoformat(), actor=r.actor, action=r.action, target=r.target,
                                        detail=r.detail, client=r.client) for r in rows],
                total=total, limit=page.limit, offset=page.offset)

