"""Advice turned into a request: `advice_request` links a ticket to the advice item (key and month) it came from."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create advice_request (one per customer, advice key and month)."""
    op.create_table(
        "advice_request",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("customer_code", sa.String(length=64), nullable=False),
        sa.Column("advice_key", sa.String(length=60), nullable=False),
        sa.Column("advice_month", sa.String(length=7), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("text_key", sa.String(length=60), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("money_per_month", sa.Float(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("ticket_id"),
        sa.UniqueConstraint("customer_code", "advice_key", "advice_month"),
    )
    op.create_index("ix_advice_request_customer_code", "advice_request", ["customer_code"], unique=False)


def downgrade() -> None:
    """Drop advice_request (the tickets stay; their link to the advice is lost)."""
    op.drop_index("ix_advice_request_customer_code", table_name="advice_request")
    op.drop_table("advice_request")
