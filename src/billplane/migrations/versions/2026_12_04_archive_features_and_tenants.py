"""archive features and tenants: a status on each, as plans have

Revision ID: 5b8e2f4c1a93
Revises: 3c1e5a9b7d20
Create Date: 2026-12-04 02:10:00

An operator archives what was made by mistake instead of deleting it: an archived feature or
tenant keeps its usage, subscriptions and audit trail, and checks of it are refused. Every row
that exists today is active.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b8e2f4c1a93"
down_revision: str | None = "3c1e5a9b7d20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("features", "tenants")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("status", sa.String(length=16), server_default="active", nullable=False)
            )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("status")
