"""app webhook secrets sealed: endpoints' signing secrets are kept encrypted at rest

Revision ID: 93d9c0f7d4fe
Revises: a7e3b9c41d52
Create Date: 2026-12-06 09:00:00

An app webhook endpoint's `whsec_` secret was stored as it is; it is now sealed as signing keys
are (AES-256-GCM under a key HKDF derives from BILLPLANE_SECRET_KEY, the endpoint's id as the
associated data). The columns are renamed (`secret_sealed`, `previous_secret_sealed`) so that
nothing reads a sealed value as a secret. Existing secrets are sealed here, which needs
BILLPLANE_SECRET_KEY when there are any; going down opens them again with it.
"""

import os
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import context, op

from billplane import sealing
from billplane.migrate import SecretKeyNeeded

revision: str = "93d9c0f7d4fe"
down_revision: str | None = "a7e3b9c41d52"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As `appwebhooks.signing.SEALING_PURPOSE` was when this migration was written: written out, so
# that this migration keeps doing what it did.
PURPOSE = b"billplane app webhook secrets v1"

NEEDED = (
    "{count} app webhook endpoint secret(s) must be {done} with BILLPLANE_SECRET_KEY, which is "
    "not set: set it (e.g. to the output of python3 -c 'import secrets; "
    "print(secrets.token_urlsafe(32))') and run the migration again."
)
WRONG_KEY = (
    "the secret of app webhook endpoint {endpoint} does not open with this "
    "BILLPLANE_SECRET_KEY: set the one that sealed it and run the migration again."
)


def _secret_key() -> str | None:
    given = context.config.attributes.get("billplane_secret_key")
    return given or os.environ.get("BILLPLANE_SECRET_KEY") or None


# The table as this migration sees it (after the rename going up, before it going down).
ENDPOINTS = sa.table(
    "app_webhook_endpoints",
    sa.column("id", sa.Integer()),
    sa.column("public_id", sa.String()),
    sa.column("secret_sealed", sa.Text()),
    sa.column("previous_secret_sealed", sa.Text()),
)


def _rewrite(change: Callable[[str, str, str], str], done: str) -> None:
    """Rewrite each endpoint's two secret columns with `change(value, key, public_id)`."""
    e = ENDPOINTS.c
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(e.id, e.public_id, e.secret_sealed, e.previous_secret_sealed)
    ).all()
    if not rows:
        return
    key = _secret_key()
    if key is None:
        raise SecretKeyNeeded(NEEDED.format(count=len(rows), done=done))
    for row_id, public_id, secret, previous in rows:
        bind.execute(
            ENDPOINTS.update()
            .where(e.id == row_id)
            .values(
                secret_sealed=change(secret, key, public_id),
                previous_secret_sealed=None
                if previous is None
                else change(previous, key, public_id),
            )
        )


def _seal(secret: str, key: str, endpoint: str) -> str:
    if sealing.is_sealed(secret):  # already sealed: this migration ran part way once
        return secret
    return sealing.seal(secret.encode(), key, purpose=PURPOSE, context=endpoint)


def _open(sealed: str, key: str, endpoint: str) -> str:
    try:
        return sealing.unseal(sealed, key, purpose=PURPOSE, context=endpoint).decode()
    except sealing.Unsealable:
        raise SecretKeyNeeded(WRONG_KEY.format(endpoint=endpoint)) from None


def upgrade() -> None:
    op.execute("ALTER TABLE app_webhook_endpoints RENAME COLUMN secret TO secret_sealed")
    op.execute(
        "ALTER TABLE app_webhook_endpoints RENAME COLUMN previous_secret TO previous_secret_sealed"
    )
    _rewrite(_seal, "sealed")


def downgrade() -> None:
    _rewrite(_open, "opened")
    op.execute("ALTER TABLE app_webhook_endpoints RENAME COLUMN secret_sealed TO secret")
    op.execute(
        "ALTER TABLE app_webhook_endpoints RENAME COLUMN previous_secret_sealed TO previous_secret"
    )
