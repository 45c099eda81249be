"""snapshot signing keys, and each project's snapshot lifetime

Revision ID: c42cd1364195
Revises: 50bcb937dcbb
Create Date: 2026-12-05 09:00:00

Entitlements can be answered as a signed snapshot (a JWS an app verifies offline). The keys
that sign them live here, their private half sealed with BILLPLANE_SECRET_KEY; at most one is
current. A project may set how long its snapshots are valid (NULL: the server's default).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billplane.models.base

revision: str = "c42cd1364195"
down_revision: str | None = "50bcb937dcbb"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Time = billplane.models.base.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("private_key_sealed", sa.Text(), nullable=False),
        sa.Column("is_current", sa.Boolean(), nullable=True),
        sa.Column("created_at", Time(), nullable=False),
        sa.Column("retired_at", Time(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signing_keys")),
        sa.UniqueConstraint("is_current", name=op.f("uq_signing_keys_is_current")),
        sa.UniqueConstraint("kid", name=op.f("uq_signing_keys_kid")),
    )
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("snapshot_ttl_seconds", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("snapshot_ttl_seconds")
    op.drop_table("signing_keys")
