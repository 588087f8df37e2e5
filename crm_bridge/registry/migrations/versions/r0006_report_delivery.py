"""Report delivery: each customer's and manager's report schedule (report_subscription) and its recipients."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create report_subscription and report_recipient."""
    op.create_table(
        "report_subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=80), nullable=False),
        sa.Column("monthly_day", sa.Integer(), nullable=False),
        sa.Column("monthly_hour", sa.Integer(), nullable=False),
        sa.Column("daily_hour", sa.Integer(), nullable=True),
        sa.Column("fmt", sa.String(length=8), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner"),
    )
    op.create_table(
        "report_recipient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=False),
        sa.Column("language", sa.String(length=5), nullable=False),
        sa.ForeignKeyConstraint(["subscription_id"], ["report_subscription.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscription_id", "email"),
    )
    op.create_index("ix_report_recipient_subscription_id", "report_recipient", ["subscription_id"], unique=False)


def downgrade() -> None:
    """Drop what upgrade made (the schedules and recipients set in the portal are lost)."""
    op.drop_index("ix_report_recipient_subscription_id", table_name="report_recipient")
    op.drop_table("report_recipient")
    op.drop_table("report_subscription")
