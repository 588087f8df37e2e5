"""Who is calling, tokens, users and the audit log."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TokenPublic(BaseModel):
    """A bearer token for API clients: send it as `Authorization: Bearer <access_token>`."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"access_token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjdXN0LWFjbWUifQ.c2lnbmF0dXJl", "token_type": "bearer",
         "expires_in": 28800}]})

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int = Field(description="Seconds until the token expires")


class MePublic(BaseModel):
    username: str
    role: str
    customer: str | None
    manager: str | None
    customers: list[str] | None = Field(description="The customers the caller may see; null: all")


class PasswordChanged(BaseModel):
    username: str
    message: str = "password changed; every token and session of this user has ended, log in again"


class UserPublic(BaseModel):
    username: str
    role: str
    customer: str | None
    manager: str | None
    disabled: bool
    created_at: str


class UserCreated(BaseModel):
    username: str
    role: str
    customer: str | None
    manager: str | None


class UserDisabled(BaseModel):
    username: str
    disabled: bool


class PasswordReset(BaseModel):
    username: str
    reset: bool


class AuditEventPublic(BaseModel):
    at: str
    actor: str
    action: str
    target: str | None
    detail: str | None
    client: str | None
