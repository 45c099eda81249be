"""daily checks: how many checks each project got per UTC day, and how many were refused

Revision ID: 50bcb937dcbb
Revises: 21f37eccf576
Create Date: 2026-12-04 11:10:00

For the dashboard's pictures: checks and refusals per day per project, counted in each worker
and added in the background (one row per project and day).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "50bcb937dcbb"
down_revision: str | None = "21f37eccf576"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "daily_checks",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("checks", sa.BigInteger(), nullable=False),
        sa.Column("refused", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_daily_checks_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "day", name=op.f("pk_daily_checks")),
    )


def downgrade() -> None:
    op.drop_table("daily_checks")
