"""Pytest fixtures: a session PostgreSQL cluster and `db_url` parametrized over SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.postgres import PostgresServer, postgres_server


@pytest.fixture(scope="session")
def postgres_server_fixture() -> Iterator[PostgresServer]:
    """Alias kept private; use `postgres_server`."""
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session", name="postgres_server")
def _postgres_server(postgres_server_fixture: PostgresServer) -> PostgresServer:
    return postgres_server_fixture


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL: a SQLite file, or a new database on the session PostgreSQL cluster."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database(f"t_{uuid.uuid4().hex[:12]}")
