"""Meter roles: `meter.role` is "billing", "sub" or NULL (not set here: gateway.toml's, synced at start-up).

Plain ADD/DROP COLUMN on `meter` (SQLite 3.35+, PostgreSQL): a batch copy of the table would cascade to its
assignments.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add meter.role (NULL for every meter until the gateway syncs the config's roles)."""
    op.add_column("meter", sa.Column("role", sa.String(length=10), nullable=True))


def downgrade() -> None:
    """Drop meter.role (the roles stay in gateway.toml)."""
    op.execute('ALTER TABLE "meter" DROP COLUMN "role"')
