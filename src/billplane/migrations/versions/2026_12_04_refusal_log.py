"""refusal log: refused checks and usage calls, kept a while

Revision ID: 21f37eccf576
Revises: 5cf42745abeb
Create Date: 2026-12-04 11:00:00

"Why was this refused?" had no answer once the HTTP answer was gone: every refused check and
every 402 is now kept (in batches, in the background) for a configurable window.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billplane.models.base

revision: str = "21f37eccf576"
down_revision: str | None = "5cf42745abeb"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Time = billplane.models.base.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "refusals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=255), nullable=False),
        sa.Column("feature", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("limit", sa.BigInteger(), nullable=True),
        sa.Column("used", sa.BigInteger(), nullable=True),
        sa.Column("at", Time(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_refusals_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refusals")),
    )
    op.create_index("ix_refusals_project_id_at", "refusals", ["project_id", "at"], unique=False)
    op.create_index(op.f("ix_refusals_at"), "refusals", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_refusals_at"), table_name="refusals")
    op.drop_index("ix_refusals_project_id_at", table_name="refusals")
    op.drop_table("refusals")
