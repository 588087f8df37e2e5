"""Cost allocation: cost centres, their virtual meters (versioned formulas over meters) and the sharing rule."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create cost_centre, virtual_meter and allocation_rule."""
    op.create_table(
        "cost_centre",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("customer_id", "code"),
    )
    op.create_index("ix_cost_centre_customer_id", "cost_centre", ["customer_id"], unique=False)
    op.create_table(
        "virtual_meter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cost_centre_id", sa.Integer(), nullable=False),
        sa.Column("formula", sa.String(length=1000), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["cost_centre_id"], ["cost_centre.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("cost_centre_id", "valid_from"),
    )
    op.create_index("ix_virtual_meter_cost_centre_id", "virtual_meter", ["cost_centre_id"], unique=False)
    op.create_table(
        "allocation_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("rule", sa.String(length=20), nullable=False),
        sa.Column("shares", sa.JSON(), nullable=False),
        sa.Column("company_code", sa.String(length=10), nullable=False),
        sa.Column("cost_elements", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("customer_id", "valid_from"),
    )
    op.create_index("ix_allocation_rule_customer_id", "allocation_rule", ["customer_id"], unique=False)


def downgrade() -> None:
    """Drop the three tables (the customers' meters and bills are untouched)."""
    op.drop_index("ix_allocation_rule_customer_id", table_name="allocation_rule")
    op.drop_table("allocation_rule")
    op.drop_index("ix_virtual_meter_cost_centre_id", table_name="virtual_meter")
    op.drop_table("virtual_meter")
    op.drop_index("ix_cost_centre_customer_id", table_name="cost_centre")
    op.drop_table("cost_centre")
