"""Tables of the auth package: users and the audit log, in the registry database.

They live in their own metadata, created with `create_all` when the gateway starts (the tables are additive and
independent of the CRM registry's Alembic history, so a registry migration never has to know about them).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_bridge.registry.models import UtcDateTime


class AuthBase(DeclarativeBase):
    """Declarative base of the auth tables."""


class User(AuthBase):
    """A login: role, and the customer (role customer) or account-manager code (role account_manager) it is bound to."""

    __tablename__ = "gw_user"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    customer: Mapped[str | None] = mapped_column(String(64))
    manager: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(5))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Bumped on disable and password change: every token and session issued before is void.
    token_version: Mapped[int] = mapped_column(Integer, default=0)


class UserSite(AuthBase):
    """A site an engineer is limited to (the plants it looks after); an engineer with no rows sees every site."""

    __tablename__ = "gw_user_site"
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(200), primary_key=True)  # the site id (registry Site.code)


class AuditEvent(AuthBase):
    """Who did what, when, from where: logins (good and failed) and every change made through the API or CLI."""

    __tablename__ = "gw_audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[str | None] = mapped_column(Text)
    client: Mapped[str | None] = mapped_column(String(100))


class LoginCounter(AuthBase):
    """Login attempts taken in the current window, per user (`user:NAME`) and per client (`client:ADDR`).

    An attempt is taken here, atomically and before any password is hashed, so concurrent guesses and API
    processes sharing the database all count against one limit; a failed check keeps its attempt as a failure.
    """

    __tablename__ = "gw_login_counter"
    key: Mapped[str] = mapped_column(String(240), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UtcDateTime)
    taken: Mapped[int] = mapped_column(Integer, default=0)  # failures plus checks still in flight
    failed: Mapped[int] = mapped_column(Integer, default=0)


class PortalSession(AuthBase):
    """A portal login: the cookie carries a random id, only its SHA-256 is kept; ended at logout or by the server."""

    __tablename__ = "gw_session"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # logout, password, disabled, reset, idle, absolute
    ended_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)
    client: Mapped[str | None] = mapped_column(String(100), nullable=True)
