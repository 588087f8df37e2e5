"""Authentication: argon2 passwords, login rate limits, signed expiring tokens and sessions, audit, data scope."""

from __future__ import annotations

import logging
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from crm_bridge.registry.models import AccountManager, Customer, ManagerAssignment, Site
from gateway.auth.limits import AttemptRefused, LoginLimiter
from gateway.auth.models import AuditEvent, AuthBase, User, UserSite
from gateway.auth.roles import Role
from gateway.auth.sessions import SessionEnded, SessionStore

# Password hashes checked at once: argon2 takes a core for tens of milliseconds; more at once only queue.
_HASHING = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))

log = logging.getLogger(__name__)

ROLES = tuple(r.value for r in Role)  # one list of roles: gateway/auth/roles.py
TOKEN_TTL_S = 8 * 3600
SESSION_TTL_S = 12 * 3600


class AuthError(Exception):
    """Bad credentials, a void token, or a user definition that does not hold together."""


class PasswordRejected(AuthError):
    """A new password that the password rules refuse (length, or the same as the current one)."""


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
    # The sites an engineer is limited to; None: no limit (every other role is scoped by customers instead).
    sites: frozenset[str] | None = None


class AuthService:
    """Users and credentials in the registry database; bearer tokens signed with the gateway's secret key.

    Portal sessions live in the database (`gateway.auth.sessions`), so ending one takes effect at once everywhere.
    """

    def __init__(self, db: sessionmaker[Session], secret_key: str, max_failures: int = 5, per_client: int = 20,
                 window_s: float = 300.0, session_idle_s: float = 1800.0,
                 session_absolute_s: float = float(SESSION_TTL_S)) -> None:
        if len(secret_key) < 16:
            raise AuthError("the secret key must be at least 16 characters")
        self.db = db
        self.hasher = PasswordHasher()
        self.max_failures, self.per_client, self.window_s = max_failures, per_client, window_s
        self.limiter = LoginLimiter(db, max_failures, per_client, window_s)
        self.sessions = SessionStore(db, session_idle_s, session_absolute_s)
        self.session_absolute_s = session_absolute_s
        self._tokens = URLSafeTimedSerializer(secret_key, salt="energy-gateway.api-token")
        # A verification of a wrong username costs as much as a wrong password: no user enumeration by timing.
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))

    @staticmethod
    def create_tables(engine: Engine) -> None:
        AuthBase.metadata.create_all(engine)

    # -- users ---------------------------------------------------------------------------------------
    def add_user(self, username: str, password: str, role: str, customer: str | None = None,
                 manager: str | None = None, language: str | None = None, actor: str = "system",
                 create_manager: bool = False, manager_name: str | None = None,
                 manager_email: str | None = None, sites: list[str] | None = None) -> User:
        """Add a login; an account_manager user is bound to the account manager `manager`.

        An engineer may be limited to `sites` (site ids the registry knows); no sites: it sees every site.

        With `create_manager`, an unknown `manager` code is created in the registry (named `manager_name`, else its
        code; `manager_email`), in the same transaction as the user and audited with it; otherwise it is an error.
        """
        if role not in ROLES:
            raise AuthError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if not username or len(username) > 64 or not username.replace("-", "").replace("_", "").replace(".", "") \
                .replace("@", "").isalnum():
            raise AuthError(f"username {username!r}: use 1-64 letters, digits, '-', '_', '.', '@'")
        _check_password(password)
        with self.db() as s:
            if role == "customer":
                if not customer:
                    raise AuthError("a customer user needs --customer (the customer id it may see)")
                if s.scalar(select(Customer.id).where(Customer.code == customer)) is None:
                    raise AuthError(f"unknown customer {customer!r}")
            elif customer:
                raise AuthError(f"only customer users are bound to a customer, not {role}")
            if role == "account_manager":
                if not manager:
                    raise AuthError("an account_manager user needs --manager (the account-manager code)")
                known = s.scalar(select(AccountManager).where(AccountManager.code == manager))
                if known is None and not create_manager:
                    raise AuthError(f"unknown account manager {manager!r}")
                if known is None:
                    if len(manager) > 64 or not manager.replace("-", "").replace("_", "").replace(".", "").isalnum():
                        raise AuthError(f"account-manager code {manager!r}: use 1-64 letters, digits, '-', '_', '.'")
                    s.add(AccountManager(code=manager, name=manager_name or manager, email=manager_email))
                    self._audit(s, actor, "registry.manager.create", f"manager:{manager}",
                                f"name={manager_name or manager} email={manager_email}")
                elif known.retired_on is not None:
                    raise AuthError(f"account manager {manager!r} was retired on {known.retired_on}")
            elif manager_name or manager_email:
                raise AuthError("--name and --email describe a new account manager (role account_manager only)")
            elif manager:
                raise AuthError(f"only account_manager users are bound to a manager code, not {role}")
            if sites and role != "engineer":
                raise AuthError(f"only engineers are limited to sites, not {role}")
            wanted = self._known_sites(s, sites or [])
            if s.scalar(select(User.id).where(User.username == username)) is not None:
                raise AuthError(f"user {username!r} exists already")
            user = User(username=username, password_hash=self.hasher.hash(password), role=role, customer=customer,
                        manager=manager, language=language, disabled=False, created_at=datetime.now(UTC),
                        token_version=0)
            s.add(user)
            s.flush()
            s.add_all(UserSite(user_id=user.id, site=code) for code in wanted)
            self._audit(s, actor, "user.add", username, f"role={role} customer={customer} manager={manager}"
                        + (f" sites={','.join(wanted)}" if wanted else ""))
            s.commit()
            return user

    @staticmethod
    def _known_sites(s: Session, sites: list[str]) -> list[str]:
        """`sites` sorted without repeats; AuthError naming those the registry does not know."""
        wanted = sorted(set(sites))
        known = set(s.scalars(select(Site.code).where(Site.code.in_(wanted)))) if wanted else set()
        unknown = [c for c in wanted if c not in known]
        if unknown:
            raise AuthError(f"unknown site {', '.join(map(repr, unknown))} (the registry has no site with that id)")
        return wanted

    def set_sites(self, username: str, sites: list[str], actor: str = "system", client: str | None = None) -> None:
        """Limit the engineer `username` to `sites` (empty: no limit), replacing its list; audited."""
        with self.db() as s:
            user = s.scalar(select(User).where(User.username == username))
            if user is None:
                raise AuthError(f"no user {username!r}")
            if user.role != "engineer" and sites:
                raise AuthError(f"only engineers are limited to sites, not {user.role}")
            wanted = self._known_sites(s, sites)
            for row in s.scalars(select(UserSite).where(UserSite.user_id == user.id)):
                s.delete(row)
            s.flush()
            s.add_all(UserSite(user_id=user.id, site=code) for code in wanted)
            self._audit(s, actor, "user.sites", username, ",".join(wanted) or "(every site)", client)
            s.commit()

    def sites_of(self, username: str) -> list[str]:
        """The sites the user is limited to (empty: none, i.e. every site)."""
        with self.db() as s:
            return list(s.scalars(select(UserSite.site).join(User, User.id == UserSite.user_id)
                                  .where(User.username == username).order_by(UserSite.site)))

    def list_users(self) -> list[User]:
        with self.db() as s:
            return list(s.scalars(select(User).order_by(User.username)))

    def disable_user(self, username: str, actor: str = "system") -> None:
        with self.db() as s:
            user = s.scalar(select(User).where(User.username == username))
            if user is None:
                raise AuthError(f"no user {username!r}")
            user.disabled = True
            self._void_credentials(s, user, "disabled")
            self._audit(s, actor, "user.disable", username, None)
            s.commit()

    def change_password(self, username: str, current: str, new: str, client: str = "-") -> Principal:
        """The user's own change: the current password is checked (and rate-limited like a login).

        Every token and session of the user ends, this one included; the caller logs in again (the portal
        issues a fresh session to the browser that made the change).
        """
        p = self.authenticate(username, current, client, action="password.check")
        _check_password(new)
        if secrets.compare_digest(new.encode(), current.encode()):
            raise PasswordRejected("the new password must differ from the current one")
        with self.db() as s:
            user = s.get(User, p.user_id)
            if user is None or user.disabled:
                raise AuthError("wrong username or password")
            user.password_hash = self.hasher.hash(new)
            self._void_credentials(s, user, "password")
            self._audit(s, username, "user.password", username, None, client)
            s.commit()
            return _principal(user, s)

    def reset_password(self, username: str, new: str, actor: str, client: str | None = None) -> None:
        """An admin sets a new password (to hand over out of band); the user's tokens and sessions end."""
        _check_password(new)
        with self.db() as s:
            user = s.scalar(select(User).where(User.username == username))
            if user is None:
                raise AuthError(f"no user {username!r}")
            user.password_hash = self.hasher.hash(new)
            self._void_credentials(s, user, "reset")
            self._audit(s, actor, "user.reset_password", username, None, client)
            s.commit()
        self.limiter.forgive(username)  # the user's locked window ends with the reset

    @staticmethod
    def _void_credentials(s: Session, user: User, reason: str) -> None:
        user.token_version += 1  # every bearer token issued before is void
        SessionStore.end_all(s, user.id, datetime.now(UTC), reason)

    # -- login ---------------------------------------------------------------------------------------
    def authenticate(self, username: str, password: str, client: str = "-", action: str = "login") -> Principal:
        """Check a password: an attempt is taken before hashing, and failures are audited."""
        try:
            self.limiter.take(username, client, datetime.now(UTC))
        except AttemptRefused as exc:
            self.audit(username[:64], f"{action}.refused", username[:200], exc.key.split(":", 1)[0], client)
            raise LoginRateLimited(exc.retry_after_s) from None
        outcome = "error"  # an unexpected error gives the attempt back: it was no guess
        try:
            # The hash is checked outside any session, at most `_HASHING` at a time: a login storm must neither hold
            # the pool's connections nor take every worker thread from the pages.
            with self.db() as s:
                found = s.scalar(select(User.password_hash).where(User.username == username))
            ok: bool = False
            with _HASHING:
                try:
                    ok = self.hasher.verify(found or self._dummy_hash, password)
                except (VerificationError, InvalidHashError):
                    ok = False
                rehash = self.hasher.hash(password) if ok and found and self.hasher.check_needs_rehash(found) else None
            with self.db() as s:
                user = s.scalar(select(User).where(User.username == username))
                if user is not None and user.password_hash != found:
                    ok = False  # the password changed while it was checked
                if not ok or user is None or user.disabled:
                    reason = "disabled" if user is not None and user.disabled and ok else "bad credentials"
                    self._audit(s, username[:64], f"{action}.failed", username[:200], reason, client)
                    s.commit()
                    outcome = "failed"
                    raise AuthError("wrong username or password")
                if rehash is not None:
                    user.password_hash = rehash
                if action == "login":
                    self._audit(s, username, "login", username, None, client)
                s.commit()
                outcome = "ok"
                return _principal(user, s)
        finally:
            if outcome == "failed":
                self.limiter.failed(username, client)
            elif outcome == "ok":
                self.limiter.succeeded(username, client)
            else:
                self.limiter.release(username, client)

    def issue_token(self, p: Principal) -> str:
        return self._tokens.dumps({"u": p.user_id, "v": self._version(p.user_id)})

    def issue_session(self, p: Principal, client: str | None = None) -> tuple[str, str]:
        """A session cookie value and its CSRF token; the session itself is kept in the database."""
        return self.sessions.issue(p.user_id, datetime.now(UTC), client)

    def end_session(self, cookie: str, reason: str = "logout") -> bool:
        return self.sessions.end(cookie, datetime.now(UTC), reason)

    def from_token(self, token: str) -> Principal:
        try:
            data: dict[str, Any] = self._tokens.loads(token, max_age=TOKEN_TTL_S)
        except SignatureExpired:
            raise AuthError("the token has expired; log in again") from None
        except BadSignature:
            raise AuthError("invalid token") from None
        with self.db() as s:
            user = s.get(User, int(data.get("u", 0)))
            if user is None or user.disabled or user.token_version != data.get("v"):
                raise AuthError("the token is no longer valid; log in again")
            return _principal(user, s)

    def from_session(self, cookie: str) -> tuple[Principal, str]:
        """The principal and CSRF token of a live portal session."""
        try:
            live = self.sessions.resolve(cookie, datetime.now(UTC))
        except SessionEnded as exc:
            raise AuthError(str(exc)) from None
        with self.db() as s:
            user = s.get(User, live.user_id)
            if user is None or user.disabled:
                raise AuthError("the session is no longer valid; log in again")
            return _principal(user, s), live.csrf

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
        """The customer ids this principal may see; None means every customer (admin, an engineer without sites)."""
        if p.role == "engineer" and p.sites is not None:
            # A site-limited engineer sees the customers owning its sites (and, through scope, only those sites).
            with self.db() as s:
                return frozenset(s.scalars(select(Customer.code).join(Site, Site.customer_id == Customer.id)
                                           .where(Site.code.in_(sorted(p.sites)))))
        if p.role in ("admin", "engineer"):
            return None
        if p.role == "customer":
            return frozenset([p.customer]) if p.customer else frozenset()
        with self.db() as s:
            codes = s.scalars(select(Customer.code)
                              .join(ManagerAssignment, ManagerAssignment.customer_id == Customer.id)
                              .join(AccountManager, AccountManager.id == ManagerAssignment.manager_id)
                              .where(AccountManager.code == p.manager))
            return frozenset(codes)


def _check_password(password: str) -> None:
    if len(password) < 10:
        raise PasswordRejected("the password must be at least 10 characters")
    if len(password) > 200:
        raise PasswordRejected("the password must be at most 200 characters")


def _principal(user: User, s: Session) -> Principal:
    sites = None
    if user.role == "engineer":
        sites = frozenset(s.scalars(select(UserSite.site).where(UserSite.user_id == user.id))) or None
    return Principal(user.id, user.username, user.role, user.customer, user.manager, user.language, sites)


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
                auth._void_credentials(s, user, "reset")
                s.commit()
        if user is None:
            auth.add_user(username, password, role, customer=customer, manager=manager, actor="demo")
        logins.append({"role": role, "username": username, "password": password, "customer": customer,
                       **({"manager": manager, "customers": managers[manager]} if manager else {})})
    return logins
