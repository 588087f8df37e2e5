"""Contract history, retirement dates and inspections' next due date.

A customer's contract becomes a series of versions over [valid_from, valid_to): the one-per-customer unique
constraint gives way to one version per (customer, valid_from), and every contract already on file becomes the open
version from 2000-01-01 (CONTRACT_EPOCH), so it keeps billing every month it billed before. Customers, sites, meters,
contacts, account managers and equipment get `retired_on` (retired rows are kept: history and audit refer to them);
inspections get `next_due`.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

EPOCH = date(2000, 1, 1)  # CONTRACT_EPOCH of the models, fixed here as this revision wrote it
_RETIRABLE = ("customer", "site", "meter", "contact", "account_manager", "equipment")
# SQLite keeps 0001's one-contract-per-customer constraint without a name; this convention names it in batch mode.
_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _unique_on(table: str, columns: list[str]) -> list[str]:
    found = sa.inspect(op.get_bind()).get_unique_constraints(table)
    return [u["name"] or f"uq_{table}_{columns[0]}" for u in found if list(u["column_names"]) == columns]


def upgrade() -> None:
    """Contract versions from EPOCH, retirement dates, next due; indexes as the models name them."""
    old = _unique_on("contract", ["customer_id"])
    with op.batch_alter_table("contract", naming_convention=_NAMES) as batch:
        for name in old:
            batch.drop_constraint(name, type_="unique")
        batch.add_column(sa.Column("valid_from", sa.Date(), nullable=True))
        batch.add_column(sa.Column("valid_to", sa.Date(), nullable=True))
    contract = sa.table("contract", sa.column("valid_from", sa.Date))
    op.execute(contract.update().values(valid_from=EPOCH))
    with op.batch_alter_table("contract") as batch:
        batch.alter_column("valid_from", existing_type=sa.Date(), nullable=False)
        batch.create_unique_constraint("uq_contract_customer_id_valid_from", ["customer_id", "valid_from"])
        batch.create_index("ix_contract_customer_id", ["customer_id"], unique=False)
    for table in _RETIRABLE:
        op.add_column(table, sa.Column("retired_on", sa.Date(), nullable=True))
    op.add_column("inspection", sa.Column("next_due", sa.Date(), nullable=True))


def downgrade() -> None:
    """Back to one contract per customer: the newest version of each stays, older versions are dropped."""
    # Plain DROP COLUMN (SQLite 3.35+), not a batch copy: dropping a parent table such as `customer` while the
    # foreign keys are on would cascade to every child row.
    op.execute('ALTER TABLE "inspection" DROP COLUMN "next_due"')
    for table in _RETIRABLE:
        op.execute(f'ALTER TABLE "{table}" DROP COLUMN "retired_on"')
    op.execute("DELETE FROM contract WHERE EXISTS (SELECT 1 FROM contract AS newer WHERE "
               "newer.customer_id = contract.customer_id AND newer.valid_from > contract.valid_from)")
    with op.batch_alter_table("contract") as batch:
        batch.drop_index("ix_contract_customer_id")
        batch.drop_constraint("uq_contract_customer_id_valid_from", type_="unique")
        batch.drop_column("valid_to")
        batch.drop_column("valid_from")
        batch.create_unique_constraint("uq_contract_customer_id", ["customer_id"])
