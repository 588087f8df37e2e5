"""Production shifts: `production_day.shifts` (0..3) and `production_day.operating` (true/false), NULL when not given.

Plain ADD/DROP COLUMN (SQLite 3.35+, PostgreSQL), like 0010: rows stored before keep NULL, which reads as "not
given" (the forecast and the advice then take the day's hours from the calendar, as before).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add production_day.shifts and production_day.operating (NULL for every row uploaded before)."""
    op.add_column("production_day", sa.Column("shifts", sa.SmallInteger(), nullable=True))
    op.add_column("production_day", sa.Column("operating", sa.Boolean(), nullable=True))


def downgrade() -> None:
    """Drop both columns (the uploaded files' shift counts and operating flags are lost)."""
    op.execute('ALTER TABLE "production_day" DROP COLUMN "operating"')
    op.execute('ALTER TABLE "production_day" DROP COLUMN "shifts"')
