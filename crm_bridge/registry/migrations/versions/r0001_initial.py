"""Initial registry schema: every table of models.py as of revision 0001."""

from __future__ import annotations

from alembic import op

from crm_bridge.registry.models import Base

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The first revision creates the schema from the models; later revisions must use explicit op.* calls.
_TABLES = [
    "company", "site", "meter", "meter_assignment", "contact", "account_manager", "manager_assignment", "tier",
    "tier_change", "contract", "tariff_version", "equipment", "inspection", "interaction", "ticket",
    "ticket_transition", "alert", "alert_period_mark", "dead_letter",
]


def upgrade() -> None:
    """Create the tables."""
    Base.metadata.create_all(op.get_bind(), tables=[Base.metadata.tables[t] for t in _TABLES])


def downgrade() -> None:
    """Drop the tables."""
    Base.metadata.drop_all(op.get_bind(), tables=[Base.metadata.tables[t] for t in _TABLES])
