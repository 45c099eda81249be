"""operator sessions and login throttle: dashboard sessions that end, and failed admin tokens

Revision ID: 5cf42745abeb
Revises: 8d4a6c2e9f17
Create Date: 2026-12-04 04:34:49

A dashboard session was only a signed cookie: logging out forgot it in one browser while a copy
kept working for 12 hours. Sessions are now rows that logout deletes; a new token waits for its
page in a row of its own (sealed, the pad in the cookie) instead of in the cookie; and each wrong
admin token is noted per client, so repeated guesses are refused for a while.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billplane.models.base

revision: str = "5cf42745abeb"
down_revision: str | None = "8d4a6c2e9f17"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Time = billplane.models.base.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "operator_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", Time(timezone=True), nullable=False),
        sa.Column("expires_at", Time(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator_sessions")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_operator_sessions_secret_hash")),
    )
    op.create_index(op.f("ix_operator_sessions_expires_at"), "operator_sessions", ["expires_at"])
    op.create_table(
        "one_time_secrets",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("what", sa.String(length=255), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("created_at", Time(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["operator_sessions.id"],
            name=op.f("fk_one_time_secrets_session_id_operator_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_one_time_secrets")),
    )
    op.create_index(op.f("ix_one_time_secrets_session_id"), "one_time_secrets", ["session_id"])
    op.create_table(
        "admin_token_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("failed_at", Time(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_token_failures")),
    )
    op.create_index(
        "ix_admin_token_failures_client_failed_at",
        "admin_token_failures",
        ["client", "failed_at"],
    )
    op.create_index(
        op.f("ix_admin_token_failures_failed_at"), "admin_token_failures", ["failed_at"]
    )


def downgrade() -> None:
    op.drop_table("admin_token_failures")
    op.drop_table("one_time_secrets")
    op.drop_table("operator_sessions")
