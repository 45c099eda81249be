"""credits: paid top-ups with their payment, and refunds on the ledger

Revision ID: 05323f7e0564
Revises: e5c0d17a9b31
Create Date: 2026-12-04 16:02:55

A top-up keeps the Checkout session and PaymentIntent that paid for it, so a refunded charge
(`charge.refunded`) finds its credits; a refund's ledger row says what it could not remove.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billplane.models.base

revision: str = "05323f7e0564"
down_revision: str | None = "e5c0d17a9b31"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "credit_topups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("bucket_id", sa.Integer(), nullable=False),
        sa.Column("stripe_checkout_session_id", sa.String(length=255), nullable=False),
        sa.Column("stripe_payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_price_id", sa.String(length=255), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("amount_refunded", sa.BigInteger(), nullable=False),
        sa.Column("credits_refunded", sa.BigInteger(), nullable=False),
        sa.Column("credits_unrecovered", sa.BigInteger(), nullable=False),
        sa.Column("created_at", billplane.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("refunded_at", billplane.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["bucket_id"],
            ["credit_buckets.id"],
            name=op.f("fk_credit_topups_bucket_id_credit_buckets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"],
            ["credit_pools.id"],
            name=op.f("fk_credit_topups_pool_id_credit_pools"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_credit_topups_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_topups")),
        sa.UniqueConstraint(
            "stripe_checkout_session_id", name=op.f("uq_credit_topups_stripe_checkout_session_id")
        ),
    )
    with op.batch_alter_table("credit_topups", schema=None) as batch_op:
        batch_op.create_index(
            "ix_credit_topups_stripe_payment_intent_id", ["stripe_payment_intent_id"], unique=False
        )
        batch_op.create_index(
            "ix_credit_topups_tenant_id_created_at", ["tenant_id", "created_at"], unique=False
        )

    with op.batch_alter_table("credit_ledger", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unrecovered", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("credit_ledger", schema=None) as batch_op:
        batch_op.drop_column("unrecovered")

    with op.batch_alter_table("credit_topups", schema=None) as batch_op:
        batch_op.drop_index("ix_credit_topups_tenant_id_created_at")
        batch_op.drop_index("ix_credit_topups_stripe_payment_intent_id")

    op.drop_table("credit_topups")
