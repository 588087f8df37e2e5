"""One name per idea: `company` becomes `customer`, a site's config id is its `code`, basic-charge modes canonical.

Renames keep every row: tables and columns are renamed in place (SQLite 3.26+ and PostgreSQL both rewrite the
foreign keys that point at them), and the indexes are re-made under the names the models give them. A site's `name`
held the config's site id and its `address` the site's name; they move to `code` and `name`, and `address` starts
empty. Stored basic-charge modes in the older spellings (max_demand, contract_demand, ...) are rewritten to the
three the code knows: capacity, demand, contract.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Tables whose company_id column becomes customer_id, and whether it has an index of its own.
_CUSTOMER_ID = {"site": True, "contact": True, "interaction": True, "manager_assignment": True, "ticket": True,
                "tier_change": True, "equipment": True, "contract": False, "tier": False}

_MODES = {"capacity": ("transformer_capacity",), "demand": ("max_demand", "actual_demand", "actual_max_demand"),
          "contract": ("contract_demand",)}


def _rename_column(table: str, old: str, new: str, indexed: bool) -> None:
    if indexed:
        op.drop_index(f"ix_{table}_{old}", table_name=table)
    op.execute(f'ALTER TABLE "{table}" RENAME COLUMN "{old}" TO "{new}"')
    if indexed:
        op.create_index(f"ix_{table}_{new}", table, [new], unique=False)


def upgrade() -> None:
    """Rename in place; move the site columns; rewrite the basic-charge modes."""
    op.execute('ALTER TABLE "company" RENAME TO "customer"')
    for table, indexed in _CUSTOMER_ID.items():
        _rename_column(table, "company_id", "customer_id", indexed)
    _rename_column("alert", "company_code", "customer_code", True)
    _rename_column("alert_period_mark", "company_code", "customer_code", False)

    op.execute('ALTER TABLE "site" RENAME COLUMN "name" TO "code"')
    op.execute('ALTER TABLE "site" RENAME COLUMN "address" TO "name"')
    op.add_column("site", sa.Column("address", sa.String(length=300), nullable=True))
    op.create_index("ix_site_code", "site", ["code"], unique=True)

    contract = sa.table("contract", sa.column("basic_charge_mode", sa.String))
    for mode, older in _MODES.items():
        op.execute(contract.update().where(sa.func.lower(contract.c.basic_charge_mode).in_(older))
                   .values(basic_charge_mode=mode))


def downgrade() -> None:
    """Back to the 0001 names (the modes stay canonical; 0001 read them too)."""
    op.drop_index("ix_site_code", table_name="site")
    op.execute('ALTER TABLE "site" DROP COLUMN "address"')
    op.execute('ALTER TABLE "site" RENAME COLUMN "name" TO "address"')
    op.execute('ALTER TABLE "site" RENAME COLUMN "code" TO "name"')
    _rename_column("alert_period_mark", "customer_code", "company_code", False)
    _rename_column("alert", "customer_code", "company_code", True)
    for table, indexed in _CUSTOMER_ID.items():
        _rename_column(table, "customer_id", "company_id", indexed)
    op.execute('ALTER TABLE "customer" RENAME TO "company"')
