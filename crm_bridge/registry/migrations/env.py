"""Alembic environment: runs migrations on the connection handed in by `crm_bridge.registry.migrate`."""

from __future__ import annotations

from alembic import context

from crm_bridge.registry.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
