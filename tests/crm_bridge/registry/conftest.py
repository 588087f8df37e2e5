"""Registry test fixtures: a migrated database and a session on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from crm_bridge.registry import make_engine, migrate


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    """A session on a freshly migrated registry (SQLite and PostgreSQL)."""
    migrate(db_url)
    engine = make_engine(db_url)
    with Session(engine) as s:
        yield s
    engine.dispose()
