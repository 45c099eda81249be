"""stripe events say why they were ignored

Revision ID: 8d4a6c2e9f17
Revises: 5b8e2f4c1a93
Create Date: 2026-12-04 03:00:00

An ignored event was indistinguishable from one that had nothing to do: an event about another
app's customer, and one whose subscription Stripe no longer has, now carry their reason.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8d4a6c2e9f17"
down_revision: str | None = "5b8e2f4c1a93"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stripe_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stripe_events", schema=None) as batch_op:
        batch_op.drop_column("reason")
