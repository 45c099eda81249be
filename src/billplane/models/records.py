"""What billplane keeps as history: Stripe webhook deliveries and the audit trail."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from billplane.models.base import Base
from billplane.schemas import EventOutcome


class StripeEvent(Base):
    __tablename__ = "stripe_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    stripe_event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(128))
    livemode: Mapped[bool] = mapped_column(default=False)
    stripe_created_at: Mapped[datetime | None]
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]
    outcome: Mapped[EventOutcome] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    # Why an `ignored` event had nothing to do (another app's object, or one Stripe no longer has).
    reason: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class AuditEntry(Base):
    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL"), index=True
    )
    actor: Mapped[str] = mapped_column(String(64))  # admin | cli | stripe-webhook | ...
    action: Mapped[str] = mapped_column(String(64))  # e.g. plan.create, token.rotate
    target: Mapped[str] = mapped_column(String(255))  # e.g. plan:realtyos/pro
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(index=True)
