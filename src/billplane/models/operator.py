"""Who operates billplane: dashboard sessions, secrets waiting to be shown once, and the failed
guesses of the admin token that throttle a client."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from billplane.models.base import Base


class OperatorSession(Base):
    """A dashboard login, alive until logout or `expires_at`. The cookie carries a secret; only
    its hash is kept, so the table alone opens nothing."""

    __tablename__ = "operator_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class OneTimeSecret(Base):
    """A new token between the POST that made it and the page that shows it, sealed with a pad
    that only the session's cookie holds: tokens are stored as hashes, and this stays true of
    the database."""

    __tablename__ = "one_time_secrets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random, named by the cookie
    session_id: Mapped[int] = mapped_column(
        ForeignKey("operator_sessions.id", ondelete="CASCADE"), index=True
    )
    what: Mapped[str] = mapped_column(String(255))
    sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class AdminTokenFailure(Base):
    """A wrong admin token, from the login form or the admin API, by client address."""

    __tablename__ = "admin_token_failures"
    __table_args__ = (Index("ix_admin_token_failures_client_failed_at", "client", "failed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column(index=True)
