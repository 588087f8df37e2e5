"""Energy performance: production actuals and plans per day, the account's region and baseline, monthly budgets."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create production_day, performance_settings and energy_budget."""
    op.create_table(
        "production_day",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_code", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("line", sa.String(length=40), nullable=False),
        sa.Column("output", sa.Numeric(18, 3), nullable=False),
        sa.Column("unit", sa.String(length=40), nullable=False),
        sa.Column("hdd", sa.Numeric(10, 2), nullable=True),
        sa.Column("cdd", sa.Numeric(10, 2), nullable=True),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uploaded_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("customer_code", "kind", "day", "line"),
    )
    op.create_index("ix_production_day_customer_code", "production_day", ["customer_code"], unique=False)
    op.create_table(
        "performance_settings",
        sa.Column("customer_code", sa.String(length=64), nullable=False),
        sa.Column("grid_region", sa.String(length=40), nullable=True),
        sa.Column("baseline_first", sa.String(length=7), nullable=True),
        sa.Column("baseline_last", sa.String(length=7), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("customer_code"),
    )
    op.create_table(
        "energy_budget",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_code", sa.String(length=64), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("cost_centre", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.Numeric(14, 2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("customer_code", "month", "cost_centre"),
    )
    op.create_index("ix_energy_budget_customer_code", "energy_budget", ["customer_code"], unique=False)


def downgrade() -> None:
    """Drop the three tables (uploaded production and budgets are lost)."""
    op.drop_index("ix_energy_budget_customer_code", table_name="energy_budget")
    op.drop_table("energy_budget")
    op.drop_table("performance_settings")
    op.drop_index("ix_production_day_customer_code", table_name="production_day")
    op.drop_table("production_day")
