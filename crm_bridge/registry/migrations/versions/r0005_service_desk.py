"""Service desk and customers' own rules: tickets' description, contact, comments, attachments; limits; alert texts.

Plain ADD/DROP COLUMN on `ticket` (SQLite 3.35+, PostgreSQL): a batch copy of the table would cascade to its
transitions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ticket.description, .contact; create ticket_comment, ticket_attachment, customer_alert_rule, alert_text."""
    op.add_column("ticket", sa.Column("description", sa.Text(), nullable=True))
    op.add_column("ticket", sa.Column("contact", sa.String(length=200), nullable=True))
    op.create_table(
        "ticket_comment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("author_role", sa.String(length=20), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("internal", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ticket_comment_ticket_id", "ticket_comment", ["ticket_id"], unique=False)
    op.create_table(
        "ticket_attachment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ticket_attachment_ticket_id", "ticket_attachment", ["ticket_id"], unique=False)
    op.create_table(
        "customer_alert_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_code", sa.String(length=64), nullable=False),
        sa.Column("site_code", sa.String(length=200), nullable=True),
        sa.Column("kw_demand", sa.Float(), nullable=True),
        sa.Column("daily_kwh", sa.Float(), nullable=True),
        sa.Column("pf_floor", sa.Float(), nullable=True),
        sa.Column("bill_to_date", sa.Float(), nullable=True),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("customer_code", "site_code"),
    )
    op.create_index("ix_customer_alert_rule_customer_code", "customer_alert_rule", ["customer_code"], unique=False)
    op.create_table(
        "alert_text",
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=60), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alert.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("alert_id"),
    )


def downgrade() -> None:
    """Drop what upgrade made (comments, attachments, rules and alert texts are lost)."""
    op.drop_table("alert_text")
    op.drop_index("ix_customer_alert_rule_customer_code", table_name="customer_alert_rule")
    op.drop_table("customer_alert_rule")
    op.drop_index("ix_ticket_attachment_ticket_id", table_name="ticket_attachment")
    op.drop_table("ticket_attachment")
    op.drop_index("ix_ticket_comment_ticket_id", table_name="ticket_comment")
    op.drop_table("ticket_comment")
    op.drop_column("ticket", "contact")
    op.drop_column("ticket", "description")
