"""Login rate limits that hold under concurrency and across API processes: attempts are taken before hashing.

Each login (and each password change, which checks the current password) first takes one attempt from the user's
window and one from the client address's window, in one short transaction committed before argon2 runs. Taking is a
conditional `UPDATE ... SET count = count + 1 WHERE count < limit`, which PostgreSQL serialises with a row lock and
SQLite with its write lock, so forty concurrent guesses for one user get at most `limit` password checks, whichever
API process they reach. A successful login gives the user's window back (the count restarts) and returns the
client's attempt, so colleagues behind one NAT address are not locked out by each other's good logins.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway.auth.models import LoginCounter


class AttemptRefused(Exception):
    """The window of `key` is full; `retry_after_s` says when it opens again."""

    def __init__(self, key: str, retry_after_s: int) -> None:
        super().__init__(f"{key}: too many attempts; retry in {retry_after_s} s")
        self.key = key
        self.retry_after_s = retry_after_s


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
        with self.db() as s:
            try:
                # Client first: an address over its limit does not eat into the user's attempts.
                for key, limit in ((client_key(client), self.per_client), (user_key(username), self.per_user)):
                    self._take(s, key, limit, now)
            except AttemptRefused:
                s.rollback()
                raise
            s.commit()

    def _take(self, s: Session, key: str, limit: int, now: datetime) -> None:
        # An expired window starts again at zero; the conditional increment is the atomic step.
        s.execute(update(LoginCounter).where(LoginCounter.key == key, LoginCounter.window_start <= now - self.window)
                  .values(count=0, window_start=now))
        taken = s.execute(update(LoginCounter).where(LoginCounter.key == key, LoginCounter.count < limit)
                          .values(count=LoginCounter.count + 1))
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            return
        row = s.get(LoginCounter, key, populate_existing=True)
        if row is None:
            try:
                with s.begin_nested():
                    s.add(LoginCounter(key=key, window_start=now, count=1))
                return
            except IntegrityError:  # another process created it meanwhile: take from that row instead
                self._take(s, key, limit, now)
                return
        left = (row.window_start + self.window - now).total_seconds()
        raise AttemptRefused(key, max(1, int(left) + 1))

    def succeeded(self, username: str, client: str) -> None:
        """A good password: the user's window restarts and the client's attempt is given back."""
        with self.db() as s:
            s.execute(delete(LoginCounter).where(LoginCounter.key == user_key(username)))
            s.execute(update(LoginCounter).where(LoginCounter.key == client_key(client), LoginCounter.count > 0)
                      .values(count=LoginCounter.count - 1))
            s.commit()
