"""Server-side portal sessions: a random id in the cookie, the session's state in the registry database.

Because the state is on the server, logout, a password change, a reset and disabling the user end a session at once,
on every API process, and a copy of the cookie taken before is worth nothing. A session also ends when it has been
idle longer than the idle timeout or lived longer than the absolute timeout, whichever comes first.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from gateway.auth.models import PortalSession

# The last-seen time is written at most this often: one write per request would serialise busy portals.
_TOUCH_EVERY = timedelta(seconds=30)
# Ended and expired sessions are kept this long (who was logged in from where), then deleted.
_KEEP_ENDED = timedelta(days=30)


class SessionEnded(Exception):
    """The cookie names no live session; the message says why, for the login page."""


@dataclass(frozen=True)
class LiveSession:
    user_id: int
    csrf: str
    created_at: datetime


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()


class SessionStore:
    """Issue, resolve and end portal sessions; timeouts in seconds."""

    def __init__(self, db: sessionmaker[Session], idle_s: float, absolute_s: float) -> None:
        self.db = db
        self.idle = timedelta(seconds=idle_s)
        self.absolute = timedelta(seconds=absolute_s)

    def issue(self, user_id: int, now: datetime, client: str | None = None) -> tuple[str, str]:
        """A new session: the cookie value (shown once, never stored) and the session's CSRF token."""
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        with self.db() as s:
            s.add(PortalSession(id_hash=_hash(session_id), user_id=user_id, csrf=csrf, created_at=now,
                                last_seen_at=now, client=(client or "")[:100] or None))
            s.query(PortalSession).filter(PortalSession.last_seen_at < now - self.absolute - _KEEP_ENDED).delete()
            s.commit()
        return session_id, csrf

    def resolve(self, session_id: str, now: datetime) -> LiveSession:
        """The live session behind a cookie; an expired one is ended here and refused."""
        if not session_id or len(session_id) > 200:
            raise SessionEnded("invalid session")
        with self.db() as s:
            row = s.get(PortalSession, _hash(session_id))
            if row is None:
                raise SessionEnded("invalid session")
            if row.ended_at is not None:
                raise SessionEnded("the session has ended; log in again")
            reason = ("absolute" if now - row.created_at > self.absolute
                      else "idle" if now - row.last_seen_at > self.idle else None)
            if reason is not None:
                row.ended_at, row.ended_reason = now, reason
                s.commit()
                raise SessionEnded("the session has expired; log in again")
            if now - row.last_seen_at > _TOUCH_EVERY:
                row.last_seen_at = now
                s.commit()
            return LiveSession(row.user_id, row.csrf, row.created_at)

    def end(self, session_id: str, now: datetime, reason: str = "logout") -> bool:
        """End one session (logout); False when it was not live."""
        with self.db() as s:
            done = s.execute(update(PortalSession).where(PortalSession.id_hash == _hash(session_id),
                                                         PortalSession.ended_at.is_(None))
                             .values(ended_at=now, ended_reason=reason))
            s.commit()
            return bool(done.rowcount)  # type: ignore[attr-defined]

    @staticmethod
    def end_all(s: Session, user_id: int, now: datetime, reason: str) -> int:
        """End every live session of a user, inside the caller's transaction (password change, disable, reset)."""
        done = s.execute(update(PortalSession).where(PortalSession.user_id == user_id,
                                                     PortalSession.ended_at.is_(None))
                         .values(ended_at=now, ended_reason=reason))
        return int(done.rowcount)  # type: ignore[attr-defined]
