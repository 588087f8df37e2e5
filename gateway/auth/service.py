"""Authentication: argon2 passwords, login rate limits, signed expiring tokens and sessions, audit, data scope."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from crm_bridge.registry.models import AccountManager, Company, ManagerAssignment
from gateway.auth.models import AuditEvent, AuthBase, User

log = logging.getLogger(__name__)

ROLES = ("admin", "engineer", "account_manager", "customer")
TOKEN_TTL_S = 8 * 3600
SESSION_TTL_S = 12 * 3600


class AuthError(Exception):
    """Bad credentials, a void token, or a user definition that does not hold together."""


class LoginRateLimited(AuthError):
    """Too many failed logins for this user or client; `retry_after_s` says when to try again."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Principal:
    """Who is asking: resolved from a bearer token or a portal session on every request."""

    user_id: int
    username: str
    role: str
    customer: str | None = None
    manager: str | None = None
    language: str | None = None


class AuthService:
    """Users and credentials in the registry database; tokens signed with the gateway's secret key."""

    def __init__(self, db: sessionmaker[Session], secret_key: str, max_failures: int = 5, per_client: int = 20,
                 window_s: float = 300.0) -> None:
        if len(secret_key) < 16:
            raise AuthError("the secret key must be at least 16 characters")
        self.db = db
        self.hasher = PasswordHasher()
        self.max_failures, self.per_client, self.window_s = max_failures, per_client, window_s
        self._tokens = URLSafeTimedSerializer(secret_key, salt="energy-gateway.api-token")
        self._sessions = URLSafeTimedSerializer(secret_key, salt="energy-gateway.portal-session")
        # A verification of a wrong username costs as much as a wrong password: no user enumeration by timing.
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))

    @staticmethod
    def create_tables(engine: Engine) -> None:
        AuthBase.metadata.create_all(engine)

    # -- users ---------------------------------------------------------------------------------------
    def add_user(self, username: str, password: str, role: str, customer: str | None = None,
                 manager: str | None = None, language: str | None = None, actor: str = "system") -> User:
        if role not in ROLES:
            raise AuthError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if not username or len(username) > 64 or not username.replace("-", "").replace("_", "").replace(".", "") \
                .replace("@", "").isalnum():
            raise AuthError(f"username {username!r}: use 1-64 letters, digits, '-', '_', '.', '@'")
        if len(password) < 10:
            raise AuthError("the password must be at least 10 characters")
        with self.db() as s:
            if role == "customer":
                if not customer:
                    raise AuthError("a customer user needs --customer (the customer id it may see)")
                if s.scalar(select(Company.id).where(Company.code == customer)) is None:
                    raise AuthError(f"unknown customer {customer!r}")
            elif customer:
                raise AuthError(f"only customer users are bound to a customer, not {role}")
            if role == "account_manager":
                if not manager:
                    raise AuthError("an account_manager user needs --manager (the account-manager code)")
                if s.scalar(select(AccountManager.id).where(AccountManager.code == manager)) is None:
                    raise AuthError(f"unknown account manager {manager!r}")
            elif manager:
                raise AuthError(f"only account_manager users are bound to a manager code, not {role}")
            if s.scalar(select(User.id).where(User.username == username)) is not None:
                raise AuthError(f"user {username!r} exists already")
            user = User(username=username, password_hash=self.hasher.hash(password), role=role, customer=customer,
                        manager=manager, language=language, disabled=False, created_at=datetime.now(UTC),
                        token_version=0)
            s.add(user)
            self._audit(s, actor, "user.add", username, f"role={role} customer={customer} manager={manager}")
            s.commit()
            return user

    def list_users(self) -> list[User]:
        with self.db() as s:
            return list(s.scalars(select(User).order_by(User.username)))

    def disable_user(self, username: str, actor: str = "system") -> None:
        with self.db() as s:
            user = s.scalar(select(User).where(User.username == username))
            if user is None:
                raise AuthError(f"no user {username!r}")
            user.disabled = True
            user.token_version += 1
            self._audit(s, actor, "user.disable", username, None)
            s.commit()

    # -- login ---------------------------------------------------------------------------------------
    def _check_rate(self, s: Session, username: str, client: str) -> None:
        """Too many failed logins (from the audit log, so every API process behind a balancer sees the same)."""
        now = datetime.now(UTC)
        since = now - timedelta(seconds=self.window_s)
        last_ok = s.scalar(select(func.max(AuditEvent.at)).where(AuditEvent.action == "login",
                                                                  AuditEvent.target == username[:200]))
        start = max(since, last_ok) if last_ok is not None else since
        for where, limit, after in ((AuditEvent.target == username[:200], self.max_failures, start),
                                    (AuditEvent.client == client, self.per_client, since)):
            q = select(func.count(AuditEvent.id), func.min(AuditEvent.at)).where(
                AuditEvent.action == "login.failed", where, AuditEvent.at > after)
            count, oldest = s.execute(q).one()
            if count >= limit and oldest is not None:
                raise LoginRateLimited(max(1, int(self.window_s - (now - oldest).total_seconds()) + 1))

    def authenticate(self, username: str, password: str, client: str = "-") -> Principal:
        """Check a password; failed attempts are counted and audited, and too many are refused before checking."""
        with self.db() as s:
            self._check_rate(s, username, client)
            user = s.scalar(select(User).where(User.username == username))
            ok = False
            try:
                ok = self.hasher.verify(user.password_hash if user else self._dummy_hash, password)
            except (VerificationError, InvalidHashError):
                ok = False
            if not ok or user is None or user.disabled:
                reason = "disabled" if user is not None and user.disabled and ok else "bad credentials"
                self._audit(s, username[:64], "login.failed", username[:200], reason, client)
                s.commit()
                raise AuthError("wrong username or password")
            if self.hasher.check_needs_rehash(user.password_hash):
                user.password_hash = self.hasher.hash(password)
            self._audit(s, username, "login", username, None, client)
            s.commit()
            return _principal(user)

    def issue_token(self, p: Principal) -> str:
        return self._tokens.dumps({"u": p.user_id, "v": self._version(p.user_id)})

    def issue_session(self, p: Principal) -> tuple[str, str]:
        """A session cookie value and its CSRF token (the token is inside the signed cookie)."""
        csrf = secrets.token_urlsafe(24)
        return self._sessions.dumps({"u": p.user_id, "v": self._version(p.user_id), "c": csrf}), csrf

    def from_token(self, token: str) -> Principal:
        return self._load(self._tokens, token, TOKEN_TTL_S)[0]

    def from_session(self, cookie: str) -> tuple[Principal, str]:
        return self._load(self._sessions, cookie, SESSION_TTL_S)

    def _load(self, signer: URLSafeTimedSerializer, value: str, ttl: int) -> tuple[Principal, str]:
        try:
            data: dict[str, Any] = signer.loads(value, max_age=ttl)
        except SignatureExpired:
            raise AuthError("the token or session has expired; log in again") from None
        except BadSignature:
            raise AuthError("invalid token or session") from None
        with self.db() as s:
            user = s.get(User, int(data.get("u", 0)))
            if user is None or user.disabled or user.token_version != data.get("v"):
                raise AuthError("the token or session is no longer valid; log in again")
            return _principal(user), str(data.get("c", ""))

    def _version(self, user_id: int) -> int:
        with self.db() as s:
            user = s.get(User, user_id)
            if user is None:
                raise AuthError(f"no user with id {user_id}")
            return user.token_version

    # -- audit and scope -------------------------------------------------------------------------------
    def audit(self, actor: str, action: str, target: str | None = None, detail: str | None = None,
              client: str | None = None) -> None:
        with self.db() as s:
            self._audit(s, actor, action, target, detail, client)
            s.commit()

    @staticmethod
    def _audit(s: Session, actor: str, action: str, target: str | None, detail: str | None,
               client: str | None = None) -> None:
        s.add(AuditEvent(at=datetime.now(UTC), actor=actor, action=action, target=target, detail=detail,
                         client=client))

    def audit_log(self, limit: int = 100, offset: int = 0) -> tuple[list[AuditEvent], int]:
        with self.db() as s:
            total = s.scalar(select(func.count(AuditEvent.id))) or 0
            rows = list(s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit).offset(offset)))
            return rows, total

    def visible_customers(self, p: Principal) -> frozenset[str] | None:
        """The customer ids this principal may see; None means every customer (admin, engineer)."""
        if p.role in ("admin", "engineer"):
            return None
        if p.role == "customer":
            return frozenset([p.customer]) if p.customer else frozenset()
        with self.db() as s:
            codes = s.scalars(select(Company.code).join(ManagerAssignment, ManagerAssignment.company_id == Company.id)
                              .join(AccountManager, AccountManager.id == ManagerAssignment.manager_id)
                              .where(AccountManager.code == p.manager))
            return frozenset(codes)


def _principal(user: User) -> Principal:
    return Principal(user.id, user.username, user.role, user.customer, user.manager, user.language)


def seed_demo_users(auth: AuthService, customers: list[str], managers: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Demo logins: an admin, an engineer, one per account manager and one per customer, with fresh passwords.

    Existing demo users get a new password on every demo start (the printed line is the only place it is shown).
    """
    wanted: list[tuple[str, str, str | None, str | None]] = [("admin", "admin", None, None),
                                                            ("engineer", "engineer", None, None)]
    wanted += [(f"manager-{code}", "account_manager", None, code) for code in managers]
    wanted += [(f"customer-{c}", "customer", c, None) for c in customers]
    logins = []
    for username, role, customer, manager in wanted:
        password = secrets.token_urlsafe(12)
        with auth.db() as s:
            user = s.scalar(select(User).where(User.username == username))
            if user is not None:
                user.password_hash = auth.hasher.hash(password)
                user.disabled = False
                user.token_version += 1
                s.commit()
        if user is None:
            auth.add_user(username, password, role, customer=customer, manager=manager, actor="demo")
        logins.append({"role": role, "username": username, "password": password, "customer": customer,
                       **({"manager": manager, "customers": managers[manager]} if manager else {})})
    return logins
