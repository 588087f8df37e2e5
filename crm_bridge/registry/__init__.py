"""CRM registry: models, programmatic Alembic migrations and the repository layer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, text

_MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    """Engine for a registry URL (sqlite:///..., postgresql+psycopg://...), with SQLite foreign keys on.

    SQLite writers wait up to 30 s for each other (Python's default is 5 s): thirty logins at once on a loaded
    machine queue on the login counters rather than fail with "database is locked".
    """
    sqlite = url.startswith("sqlite")
    engine = create_engine(url, connect_args={"timeout": 30} if sqlite else {})
    if engine.dialect.name == "sqlite":
        from sqlalchemy import event

        @event.listens_for(engine, "connect")
        def _fk_on(dbapi_conn, _rec):  # type: ignore[no-untyped-def]
            dbapi_conn.execute("PRAGMA foreign_keys=ON")

    return engine


def _alembic(url: str, run: Callable[[Config, str], None], revision: str) -> None:
    engine = make_engine(url)
    try:
        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Processes starting at once on one database (a fleet's API and plant gateways) migrate in turn
                conn.execute(text("SELECT pg_advisory_xact_lock(7406319)"))
            cfg.attributes["connection"] = conn
            run(cfg, revision)
    finally:
        engine.dispose()


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the registry database at `url` to `revision` (default: head)."""
    _alembic(url, command.upgrade, revision)


def downgrade(url: str, revision: str) -> None:
    """Downgrade the registry database at `url` to `revision` (every migration has its way back)."""
    _alembic(url, command.downgrade, revision)


__all__ = ["downgrade", "make_engine", "migrate"]
