"""Login rate limits that hold under concurrency and across API processes: attempts are taken before hashing.

Each login (and each password change, which checks the current password) first takes one attempt from the user's
window and one from the client address's window, in one short transaction committed before argon2 runs. Taking is a
conditional `UPDATE ... SET taken = taken + 1 WHERE taken < limit`, which PostgreSQL serialises with a row lock and
SQLite with its write lock, so forty concurrent guesses for one user get at most `limit` password checks, whichever
API process they reach.

A taken attempt is in flight until its password check ends: a failure keeps it (as `failed`), a success gives it
back and, for the user's window, forgives the failures before it. When a window is full only because of checks in
flight (colleagues logging in at the same moment), an attempt waits for them instead of being refused; it is refused
at once when the window holds `limit` failures.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from sqlalchemy import case, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway.auth.models import LoginCounter

# How long an attempt waits for checks in flight to end before it is refused, and how often it looks.
_WAIT_S, _POLL_S = 15.0, 0.05


class AttemptRefused(Exception):
    """The window of `key` holds too many failures; `retry_after_s` says when it opens again."""

    def __init__(self, key: str, retry_after_s: int) -> None:
        super().__init__(f"{key}: too many attempts; retry in {retry_after_s} s")
        self.key = key
        self.retry_after_s = retry_after_s


class _Busy(Exception):
    """The window is full of checks in flight, not of failures: try again shortly."""


def user_key(username: str) -> str:
    return f"user:{username[:200]}"


def client_key(client: str) -> str:
    return f"client:{client[:200]}"


class LoginLimiter:
    """Fixed windows of `window_s` seconds: at most `per_user` attempts per user and `per_client` per address."""

    def __init__(self, db: sessionmaker[Session], per_user: int, per_client: int, window_s: float) -> None:
        self.db = db
        self.per_user, self.per_client = per_user, per_client
        self.window = timedelta(seconds=window_s)

    def take(self, username: str, client: str, now: datetime) -> None:
        """Take one attempt for the user and one for the client, or neither; raise AttemptRefused when full."""
        deadline = time.monotonic() + _WAIT_S
        while True:
            try:
                return self._take_both(username, client, now)
            except _Busy:
                if time.monotonic() > deadline:
                    raise AttemptRefused(user_key(username), 1) from None
                time.sleep(_POLL_S)

    def _take_both(self, username: str, client: str, now: datetime) -> None:
        with self.db() as s:
            try:
                # Client first: an address over its limit does not eat into the user's attempts.
                for key, limit in ((client_key(client), self.per_client), (user_key(username), self.per_user)):
                    self._take(s, key, limit, now)
            except (AttemptRefused, _Busy):
                s.rollback()
                raise
            s.commit()

    def _take(self, s: Session, key: str, limit: int, now: datetime) -> None:
        c = LoginCounter
        # An expired window starts again: its failures are forgotten, checks still in flight keep their places.
        s.execute(update(c).where(c.key == key, c.window_start <= now - self.window)
                  .values(taken=c.taken - c.failed, failed=0, window_start=now))
        took = s.execute(update(c).where(c.key == key, c.taken < limit).values(taken=c.taken + 1))
        if took.rowcount == 1:  # type: ignore[attr-defined]
            return
        row = s.get(c, key, populate_existing=True)
        if row is None:
            try:
                with s.begin_nested():
                    s.add(c(key=key, window_start=now, taken=1, failed=0))
                return
            except IntegrityError:  # another process created it meanwhile: take from that row instead
                self._take(s, key, limit, now)
                return
        if row.failed < limit:
            raise _Busy(key)
        left = (row.window_start + self.window - now).total_seconds()
        raise AttemptRefused(key, max(1, int(left) + 1))

    def failed(self, username: str, client: str) -> None:
        """A wrong password: the attempts taken for it stay taken, as failures."""
        c = LoginCounter
        with self.db() as s:
            s.execute(update(c).where(c.key.in_([user_key(username), client_key(client)]))
                      .values(failed=c.failed + 1))
            s.commit()

    def release(self, username: str, client: str) -> None:
        """A check that ended without a verdict (an error): its attempts come back, nothing is forgiven."""
        c = LoginCounter
        with self.db() as s:
            s.execute(update(c).where(c.key.in_([user_key(username), client_key(client)]))
                      .values(taken=case((c.taken > 0, c.taken - 1), else_=0)))
            s.commit()

    def forgive(self, username: str) -> None:
        """The user's failures are forgotten (an admin reset its password); checks in flight keep their places."""
        c = LoginCounter
        with self.db() as s:
            s.execute(update(c).where(c.key == user_key(username)).values(taken=c.taken - c.failed, failed=0))
            s.commit()

    def succeeded(self, username: str, client: str) -> None:
        """A good password: the attempts come back, and the user's earlier failures are forgiven."""
        c = LoginCounter
        with self.db() as s:
            s.execute(update(c).where(c.key == user_key(username))
                      .values(taken=case((c.taken - c.failed > 0, c.taken - c.failed - 1), else_=0), failed=0))
            s.execute(update(c).where(c.key == client_key(client))
                      .values(taken=case((c.taken > 0, c.taken - 1), else_=0)))
            s.commit()
