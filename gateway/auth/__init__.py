"""Users, roles, password hashing, bearer tokens, portal sessions, login rate limits and the audit log."""

from gateway.auth.models import AuditEvent, AuthBase, User, UserSite
from gateway.auth.service import (
    ROLES,
    AuthError,
    AuthService,
    LoginRateLimited,
    PasswordRejected,
    Principal,
    seed_demo_users,
)

__all__ = [
    "ROLES", "AuditEvent", "AuthBase", "AuthError", "AuthService", "LoginRateLimited", "PasswordRejected",
    "Principal", "User", "UserSite", "seed_demo_users",
]
