"""credit ledger: one index fewer per usage's row, and no bucket index

Revision ID: 3b7e1c9d2a60
Revises: ecf37c2bea85
Create Date: 2026-12-05 00:50:00

A credit-priced usage writes its event, its bucket and its ledger row in one transaction, and
each index a row enters is one more page written. The ledger's unique key (tenant, key, kind,
part) leaves out a usage's own rows (`deduction`, `overage`), which the usage event's unique
key keeps once already; `bucket_id` loses its foreign key and the index that key needs (a
bucket goes only with its tenant or pool, whose cascades take its rows too).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3b7e1c9d2a60"
down_revision: str | None = "ecf37c2bea85"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = ["tenant_id", "idempotency_key", "kind", "part"]
MOVEMENT = "kind NOT IN ('deduction', 'overage')"


def upgrade() -> None:
    with op.batch_alter_table("credit_ledger", schema=None) as batch_op:
        batch_op.drop_constraint(
            "uq_credit_ledger_tenant_id_idempotency_key_kind_part", type_="unique"
        )
        batch_op.drop_constraint("fk_credit_ledger_bucket_id_credit_buckets", type_="foreignkey")
        batch_op.drop_index("ix_credit_ledger_bucket_id")
        batch_op.create_index(
            "uq_credit_ledger_movement",
            KEY,
            unique=True,
            sqlite_where=sa.text(MOVEMENT),
            postgresql_where=sa.text(MOVEMENT),
        )


def downgrade() -> None:
    with op.batch_alter_table("credit_ledger", schema=None) as batch_op:
        batch_op.drop_index("uq_credit_ledger_movement")
        batch_op.create_index("ix_credit_ledger_bucket_id", ["bucket_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_credit_ledger_bucket_id_credit_buckets",
            "credit_buckets",
            ["bucket_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_unique_constraint(
            "uq_credit_ledger_tenant_id_idempotency_key_kind_part", KEY
        )
