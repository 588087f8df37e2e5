"""Several processes of one fleet starting at once on one empty PostgreSQL registry: each migrates it, in turn.

Without the advisory lock in `crm_bridge.registry._alembic`, two of them creating the same tables at the same moment
failed with `duplicate key value violates unique constraint "pg_type_typname_nsp_index"` (found by bench/fleet.py).
"""

from __future__ import annotations

import threading
import uuid

from sqlalchemy import inspect

from crm_bridge.registry import make_engine, migrate
from tests.servers.postgres import PostgresServer


def test_migrations_started_at_once_on_one_empty_database_all_succeed(postgres_server: PostgresServer) -> None:
    for _ in range(3):  # the race is a matter of timing: a few empty databases, five migrations each
        url = postgres_server.create_database(f"fleet_{uuid.uuid4().hex[:12]}")
        start, errors = threading.Barrier(5), []

        def one(url: str = url, start: threading.Barrier = start, errors: list[BaseException] = errors) -> None:
            start.wait()
            try:
                migrate(url)
            except BaseException as exc:  # noqa: BLE001 - collected and shown by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=one) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        engine = make_engine(url)
        try:
            assert {"customer", "contract", "alert"} <= set(inspect(engine).get_table_names())
        finally:
            engine.dispose()
