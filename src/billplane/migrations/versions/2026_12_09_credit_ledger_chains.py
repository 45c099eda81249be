"""credit ledger: a usage's own deduction chained to its bucket, not in the tenant's index

Revision ID: 5d2f8a41c7e3
Revises: 3b7e1c9d2a60
Create Date: 2026-12-05 16:20:00

The tenant's ledger index took an entry per credit-priced usage, a page written at a random
place each time. A usage's `deduction` row in the common case now names the bucket's previous
such row (`previous_id`) and the bucket its newest (`last_deduction_id`, with the one before in
`previous_deduction_id`); the index leaves those rows out. Every row written before keeps
`previous_id` NULL, so stays in the index: nothing to fill in.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5d2f8a41c7e3"
down_revision: str | None = "3b7e1c9d2a60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_credit_ledger_tenant_id_pool_id_id"
COLUMNS = ["tenant_id", "pool_id", "id"]
UNCHAINED = "previous_id IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("credit_buckets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_deduction_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("previous_deduction_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("credit_ledger", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_id", sa.Integer(), nullable=True))
        batch_op.drop_index(INDEX)
        batch_op.create_index(
            INDEX,
            COLUMNS,
            unique=False,
            sqlite_where=sa.text(UNCHAINED),
            postgresql_where=sa.text(UNCHAINED),
        )


def downgrade() -> None:
    with op.batch_alter_table("credit_ledger", schema=None) as batch_op:
        batch_op.drop_index(INDEX)
        batch_op.create_index(INDEX, COLUMNS, unique=False)
        batch_op.drop_column("previous_id")
    with op.batch_alter_table("credit_buckets", schema=None) as batch_op:
        batch_op.drop_column("previous_deduction_id")
        batch_op.drop_column("last_deduction_id")
