"""app webhooks outbox: endpoints of client apps, the outbox of events, deliveries and attempts

Revision ID: a7e3b9c41d52
Revises: c42cd1364195
Create Date: 2026-12-05 09:00:00

Client apps hear of their tenants' changes through webhooks (the Standard Webhooks spec). Each
project has endpoints; every event is written to `app_events` in the transaction of the change
it tells of, with a per-tenant sequence number (`app_event_sequences`), and one row in
`app_deliveries` per endpoint that asked for its type; each POST is kept in
`app_delivery_attempts`. Nothing that exists today changes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billplane.models.base

revision: str = "a7e3b9c41d52"
down_revision: str | None = "c42cd1364195"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Time = billplane.models.base.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "app_webhook_endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("previous_secret", sa.Text(), nullable=True),
        sa.Column("previous_secret_until", Time(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("failing_since", Time(timezone=True), nullable=True),
        sa.Column("created_at", Time(timezone=True), nullable=False),
        sa.Column("updated_at", Time(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_app_webhook_endpoints_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_webhook_endpoints")),
        sa.UniqueConstraint("public_id", name=op.f("uq_app_webhook_endpoints_public_id")),
    )
    op.create_index(
        op.f("ix_app_webhook_endpoints_project_id"), "app_webhook_endpoints", ["project_id"]
    )

    op.create_table(
        "app_event_sequences",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("last", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_app_event_sequences_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_app_event_sequences")),
    )
    op.create_table(
        "app_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=255), nullable=True),
        sa.Column("created_at", Time(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_app_events_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_app_events_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_events")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_app_events_dedupe_key")),
        sa.UniqueConstraint("public_id", name=op.f("uq_app_events_public_id")),
    )
    op.create_index(op.f("ix_app_events_tenant_id"), "app_events", ["tenant_id"])

    op.create_table(
        "app_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", Time(timezone=True), nullable=False),
        sa.Column("give_up_at", Time(timezone=True), nullable=True),
        sa.Column("claim", sa.String(length=32), nullable=True),
        sa.Column("claimed_until", Time(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", Time(timezone=True), nullable=False),
        sa.Column("delivered_at", Time(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["app_webhook_endpoints.id"],
            name=op.f("fk_app_deliveries_endpoint_id_app_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["app_events.id"],
            name=op.f("fk_app_deliveries_event_id_app_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_app_deliveries_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_deliveries")),
        sa.UniqueConstraint(
            "event_id", "endpoint_id", name=op.f("uq_app_deliveries_event_id_endpoint_id")
        ),
        sa.UniqueConstraint("public_id", name=op.f("uq_app_deliveries_public_id")),
    )
    op.create_index("ix_app_deliveries_due", "app_deliveries", ["status", "next_attempt_at"])
    op.create_index(
        "ix_app_deliveries_queue", "app_deliveries", ["endpoint_id", "tenant_id", "sequence"]
    )

    op.create_table(
        "app_delivery_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("attempted_at", Time(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("response_excerpt", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["app_deliveries.id"],
            name=op.f("fk_app_delivery_attempts_delivery_id_app_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_delivery_attempts")),
    )
    op.create_index(
        op.f("ix_app_delivery_attempts_delivery_id"), "app_delivery_attempts", ["delivery_id"]
    )


def downgrade() -> None:
    op.drop_table("app_delivery_attempts")
    op.drop_table("app_deliveries")
    op.drop_table("app_events")
    op.drop_table("app_event_sequences")
    op.drop_table("app_webhook_endpoints")
