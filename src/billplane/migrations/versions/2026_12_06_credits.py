"""credits: pools and feature costs, plan allowances, tenants' buckets and the ledger

Revision ID: e5c0d17a9b31
Revises: e5d1c8a2b7f4
Create Date: 2026-12-06 13:24:20

Prepaid credits (issue 13): a feature may cost credits of a project's pool; buckets hold what a
tenant has, and every movement is an append-only ledger row.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billplane.models.base

revision: str = "e5c0d17a9b31"
down_revision: str | None = "e5d1c8a2b7f4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Time = billplane.models.base.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "credit_pools",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", billplane.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_credit_pools_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_pools")),
        sa.UniqueConstraint("project_id", "key", name=op.f("uq_credit_pools_project_id_key")),
    )
    op.create_table(
        "credit_buckets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_key", sa.String(length=255), nullable=False),
        sa.Column("granted", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", billplane.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", billplane.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("remaining >= 0", name=op.f("ck_credit_buckets_remaining_not_negative")),
        sa.ForeignKeyConstraint(
            ["pool_id"],
            ["credit_pools.id"],
            name=op.f("fk_credit_buckets_pool_id_credit_pools"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_credit_buckets_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_buckets")),
        sa.UniqueConstraint(
            "tenant_id",
            "pool_id",
            "source",
            "source_key",
            name=op.f("uq_credit_buckets_tenant_id_pool_id_source_source_key"),
        ),
    )
    with op.batch_alter_table("credit_buckets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_credit_buckets_tenant_id_pool_id", ["tenant_id", "pool_id"], unique=False
        )

    op.create_table(
        "credit_ledger",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("bucket_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("feature_id", sa.Integer(), nullable=True),
        sa.Column("quantity", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("actor", sa.String(length=255), nullable=True),
        sa.Column("created_at", billplane.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["bucket_id"],
            ["credit_buckets.id"],
            name=op.f("fk_credit_ledger_bucket_id_credit_buckets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["feature_id"],
            ["features.id"],
            name=op.f("fk_credit_ledger_feature_id_features"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"],
            ["credit_pools.id"],
            name=op.f("fk_credit_ledger_pool_id_credit_pools"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_credit_ledger_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_ledger")),
        sa.UniqueConstraint(
            "tenant_id",
            "idempotency_key",
            "kind",
            "part",
            name=op.f("uq_credit_ledger_tenant_id_idempotency_key_kind_part"),
        ),
    )
    with op.batch_alter_table("credit_ledger", schema=None) as batch_op:
        batch_op.create_index("ix_credit_ledger_bucket_id", ["bucket_id"], unique=False)
        batch_op.create_index(
            "ix_credit_ledger_tenant_id_pool_id_id", ["tenant_id", "pool_id", "id"], unique=False
        )

    op.create_table(
        "plan_allowances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reset", sa.String(length=16), nullable=False),
        sa.Column("rollover_cap", sa.BigInteger(), nullable=False),
        sa.Column("overage_feature_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["overage_feature_id"],
            ["features.id"],
            name=op.f("fk_plan_allowances_overage_feature_id_features"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plans.id"],
            name=op.f("fk_plan_allowances_plan_id_plans"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"],
            ["credit_pools.id"],
            name=op.f("fk_plan_allowances_pool_id_credit_pools"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_allowances")),
        sa.UniqueConstraint("plan_id", "pool_id", name=op.f("uq_plan_allowances_plan_id_pool_id")),
    )
    op.create_table(
        "credit_costs",
        sa.Column("feature_id", sa.Integer(), nullable=False),
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("cost", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["feature_id"],
            ["features.id"],
            name=op.f("fk_credit_costs_feature_id_features"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"],
            ["credit_pools.id"],
            name=op.f("fk_credit_costs_pool_id_credit_pools"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("feature_id", name=op.f("pk_credit_costs")),
    )

    op.create_table(
        "credit_packs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("stripe_price_id", sa.String(length=255), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pool_id"],
            ["credit_pools.id"],
            name=op.f("fk_credit_packs_pool_id_credit_pools"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_packs")),
        sa.UniqueConstraint(
            "pool_id", "stripe_price_id", name=op.f("uq_credit_packs_pool_id_stripe_price_id")
        ),
    )
    op.create_table(
        "credit_reservations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("feature_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("final_quantity", sa.BigInteger(), nullable=True),
        sa.Column("final_amount", sa.BigInteger(), nullable=True),
        sa.Column("expires_at", Time(), nullable=False),
        sa.Column("created_at", Time(), nullable=False),
        sa.Column("settled_at", Time(), nullable=True),
        sa.ForeignKeyConstraint(
            ["feature_id"],
            ["features.id"],
            name=op.f("fk_credit_reservations_feature_id_features"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"],
            ["credit_pools.id"],
            name=op.f("fk_credit_reservations_pool_id_credit_pools"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_credit_reservations_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_reservations")),
        sa.UniqueConstraint("public_id", name=op.f("uq_credit_reservations_public_id")),
        sa.UniqueConstraint(
            "tenant_id",
            "idempotency_key",
            name=op.f("uq_credit_reservations_tenant_id_idempotency_key"),
        ),
    )
    op.create_index(
        "ix_credit_reservations_tenant_id_pool_id_status",
        "credit_reservations",
        ["tenant_id", "pool_id", "status"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        "ix_credit_reservations_tenant_id_pool_id_status", table_name="credit_reservations"
    )
    op.drop_table("credit_reservations")
    op.drop_table("credit_packs")
    op.drop_table("credit_costs")
    op.drop_table("plan_allowances")
    with op.batch_alter_table("credit_ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_credit_ledger_tenant_id_pool_id_id")
        batch_op.drop_index("ix_credit_ledger_bucket_id")

    op.drop_table("credit_ledger")
    with op.batch_alter_table("credit_buckets", schema=None) as batch_op:
        batch_op.drop_index("ix_credit_buckets_tenant_id_pool_id")

    op.drop_table("credit_buckets")
    op.drop_table("credit_pools")
