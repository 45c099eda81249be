"""plan versions: tenants keep the version of a plan they bought

Revision ID: e5d1c8a2b7f4
Revises: 93d9c0f7d4fe
Create Date: 2026-12-06 09:00:00

Every plan that exists becomes version 1 of itself (its price, trial and grants). Every tenant
whose subscription is for a plan's price is pinned to version 1, so that the first edit of a
plan after this migration leaves them on what they bought, as it will every later subscriber.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from billplane.models.base import UTCDateTime

revision: str = "e5d1c8a2b7f4"
down_revision: str | None = "93d9c0f7d4fe"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
    with op.batch_alter_table("plan_grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch_op.drop_constraint("uq_plan_grants_plan_id_feature_id", type_="unique")
        batch_op.create_unique_constraint(
            "uq_plan_grants_plan_id_version_feature_id", ["plan_id", "version", "feature_id"]
        )
    op.create_table(
        "plan_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("stripe_price_id", sa.String(length=255), nullable=True),
        sa.Column("trial_days", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plans.id"],
            name=op.f("fk_plan_versions_plan_id_plans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_versions")),
        sa.UniqueConstraint("plan_id", "version", name=op.f("uq_plan_versions_plan_id_version")),
    )
    op.create_index(
        "ix_plan_versions_price_plan", "plan_versions", ["stripe_price_id", "plan_id"], unique=False
    )
    op.create_table(
        "tenant_plan_versions",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plans.id"],
            name=op.f("fk_tenant_plan_versions_plan_id_plans"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_tenant_plan_versions_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "plan_id", name=op.f("pk_tenant_plan_versions")),
    )
    op.create_index(
        "ix_tenant_plan_versions_plan_version",
        "tenant_plan_versions",
        ["plan_id", "version"],
        unique=False,
    )
    op.execute(
        "INSERT INTO plan_versions (plan_id, version, stripe_price_id, trial_days, created_at) "
        "SELECT id, 1, stripe_price_id, trial_days, created_at FROM plans"
    )
    op.execute(
        "INSERT INTO tenant_plan_versions (tenant_id, plan_id, version, updated_at) "
        "SELECT s.tenant_id, p.id, 1, MAX(s.updated_at) FROM subscriptions s "
        "JOIN tenants t ON t.id = s.tenant_id "
        "JOIN plans p ON p.project_id = t.project_id AND p.stripe_price_id = s.stripe_price_id "
        "GROUP BY s.tenant_id, p.id"
    )


def downgrade() -> None:
    op.drop_index("ix_tenant_plan_versions_plan_version", table_name="tenant_plan_versions")
    op.drop_table("tenant_plan_versions")
    op.drop_index("ix_plan_versions_price_plan", table_name="plan_versions")
    op.drop_table("plan_versions")
    # Only the newest version's grants fit the older schema.
    op.execute(
        "DELETE FROM plan_grants WHERE version <> "
        "(SELECT p.version FROM plans p WHERE p.id = plan_grants.plan_id)"
    )
    with op.batch_alter_table("plan_grants", schema=None) as batch_op:
        batch_op.drop_constraint("uq_plan_grants_plan_id_version_feature_id", type_="unique")
        batch_op.create_unique_constraint(
            "uq_plan_grants_plan_id_feature_id", ["plan_id", "feature_id"]
        )
        batch_op.drop_column("version")
    # Not in batch mode: on SQLite that copies `plans` and drops the original, and the drop
    # would cascade to every plan's grants.
    op.execute("ALTER TABLE plans DROP COLUMN version")
