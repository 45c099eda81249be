"""The Ed25519 keys that sign entitlement snapshots: the public half in clear, the private half
sealed with BILLPLANE_SECRET_KEY (see `signing.keys`)."""

from datetime import datetime

from sqlalchemy import Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from billplane.models.base import Base


class SigningKey(Base):
    __tablename__ = "signing_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The RFC 7638 thumbprint of the public key: what a snapshot's header names.
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    public_key: Mapped[str] = mapped_column(String(64))  # raw 32 bytes, base64url (the JWK's x)
    private_key_sealed: Mapped[str] = mapped_column(Text)
    # True for the one key that signs, NULL once retired: the unique constraint lets at most one
    # row be current (NULLs never collide), so two workers making a first key, or two operators
    # rotating at once, cannot leave two keys signing.
    is_current: Mapped[bool | None] = mapped_column(Boolean, unique=True)
    created_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]
