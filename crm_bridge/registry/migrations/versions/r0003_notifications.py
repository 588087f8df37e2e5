"""Notifications: events published once under their key, one record per message, and users' preferences."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create notification_event, notification and notification_preference (times UTC, as everywhere)."""
    op.create_table(
        "notification_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("customer_code", sa.String(length=64), nullable=True),
        sa.Column("severity", sa.String(length=20), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attachment_name", sa.String(length=200), nullable=True),
        sa.Column("attachment_type", sa.String(length=100), nullable=True),
        sa.Column("attachment", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_notification_event_kind", "notification_event", ["kind"], unique=False)
    op.create_index("ix_notification_event_customer_code", "notification_event", ["customer_code"], unique=False)
    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=500), nullable=True),
        sa.Column("language", sa.String(length=5), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("digest_id", sa.Integer(), nullable=True),
        sa.Column("dead_letter_id", sa.Integer(), nullable=True),
        sa.Column("replay_of", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["notification_event.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["digest_id"], ["notification.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["dead_letter_id"], ["dead_letter.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["replay_of"], ["dead_letter.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notification_event_id", "notification", ["event_id"], unique=False)
    op.create_index("ix_notification_recipient", "notification", ["recipient"], unique=False)
    op.create_index("ix_notification_status", "notification", ["status"], unique=False)
    op.create_index("ix_notification_next_attempt_at", "notification", ["next_attempt_at"], unique=False)
    op.create_table(
        "notification_preference",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=True),
        sa.Column("events", sa.JSON(), nullable=True),
        sa.Column("channels", sa.JSON(), nullable=True),
        sa.Column("quiet_start", sa.String(length=5), nullable=True),
        sa.Column("quiet_end", sa.String(length=5), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("digest", sa.Boolean(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("username"),
    )


def downgrade() -> None:
    """Drop the three tables (the records go with them)."""
    op.drop_table("notification_preference")
    for name in ("next_attempt_at", "status", "recipient", "event_id"):
        op.drop_index(f"ix_notification_{name}", table_name="notification")
    op.drop_table("notification")
    op.drop_index("ix_notification_event_customer_code", table_name="notification_event")
    op.drop_index("ix_notification_event_kind", table_name="notification_event")
    op.drop_table("notification_event")
