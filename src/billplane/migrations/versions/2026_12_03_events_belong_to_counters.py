"""usage events belong to their counter: one composite foreign key instead of two

Revision ID: 3c1e5a9b7d20
Revises: 7d5f8d332b5b
Create Date: 2026-12-03 18:30:00

An event's tenant and feature are its counter's, so the counter's key is the one reference an
event needs; the hot path's largest insert then checks one key per row instead of two. Deleting
a tenant or a feature still removes its events, through its counters.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3c1e5a9b7d20"
down_revision: str | None = "7d5f8d332b5b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTER_KEY = ["tenant_id", "feature_id", "period_key"]


def upgrade() -> None:
    # Every event has its counter today; should an older database hold one without, the counter
    # is made from its events (what they counted) rather than the events dropped.
    op.execute(
        """
        INSERT INTO usage_counters (tenant_id, feature_id, period_key, used)
        SELECT tenant_id, feature_id, period_key, SUM(quantity) FROM usage_events AS e
        WHERE NOT EXISTS (
          SELECT 1 FROM usage_counters AS c
          WHERE c.tenant_id = e.tenant_id AND c.feature_id = e.feature_id
            AND c.period_key = e.period_key
        )
        GROUP BY tenant_id, feature_id, period_key
        """
    )
    with op.batch_alter_table("usage_events", schema=None) as batch_op:
        batch_op.drop_constraint("fk_usage_events_feature_id_features", type_="foreignkey")
        batch_op.drop_constraint("fk_usage_events_tenant_id_tenants", type_="foreignkey")
        batch_op.create_foreign_key(
            batch_op.f("fk_usage_events_tenant_id_usage_counters"),
            "usage_counters",
            COUNTER_KEY,
            COUNTER_KEY,
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("usage_events", schema=None) as batch_op:
        batch_op.drop_constraint("fk_usage_events_tenant_id_usage_counters", type_="foreignkey")
        batch_op.create_foreign_key(
            batch_op.f("fk_usage_events_tenant_id_tenants"),
            "tenants",
            ["tenant_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_usage_events_feature_id_features"),
            "features",
            ["feature_id"],
            ["id"],
            ondelete="CASCADE",
        )
