"""Webhooks to client apps: each project's endpoints, the outbox of events for them, and every
delivery and attempt (the Standard Webhooks spec; see `billplane.appwebhooks`)."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from billplane.models.base import Base


class AppWebhookEndpoint(Base):
    """A URL of a client app that receives the events it chose, signed with its own secret."""

    __tablename__ = "app_webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[Any]] = mapped_column(JSON)
    # The signing secret (`whsec_…`) must be read back to sign, so it cannot be kept as a hash
    # the way API tokens are: it is kept sealed with BILLPLANE_SECRET_KEY (see
    # `appwebhooks.signing`); the API shows it only at creation and rotation.
    secret_sealed: Mapped[str] = mapped_column(Text)
    # After a rotation the old secret signs beside the new one for a while, so that the app can
    # switch without losing a delivery.
    previous_secret_sealed: Mapped[str | None] = mapped_column(Text)
    previous_secret_until: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="enabled")  # enabled | disabled
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    # When its current run of failed attempts began (None: its last attempt succeeded).
    failing_since: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AppEventSequence(Base):
    """The last sequence number given to one tenant's events: locked while an event is written,
    so that a tenant's numbers follow the order its changes commit in."""

    __tablename__ = "app_event_sequences"

    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    last: Mapped[int] = mapped_column(BigInteger)


class AppEvent(Base):
    """The outbox: one event, written in the transaction of the change it tells of."""

    __tablename__ = "app_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)  # the `webhook-id` header
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Set for events that happen once per something (a usage threshold per period): a second
    # write of the same key is dropped.
    dedupe_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime]


class AppDelivery(Base):
    """One event on its way to one endpoint."""

    __tablename__ = "app_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id"),
        # A tenant's queue at an endpoint: what was sent before what.
        Index("ix_app_deliveries_queue", "endpoint_id", "tenant_id", "sequence"),
        Index("ix_app_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("app_events.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("app_webhook_endpoints.id", ondelete="CASCADE")
    )
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(default=0)  # since it was written or last replayed
    next_attempt_at: Mapped[datetime]
    # Set at the first attempt (and again after a replay): retried until then.
    give_up_at: Mapped[datetime | None]
    # A sender's claim: no other sender takes the delivery before `claimed_until`.
    claim: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class AppDeliveryAttempt(Base):
    """One POST of a delivery, whatever came of it."""

    __tablename__ = "app_delivery_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("app_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime]
    duration_ms: Mapped[int]
    status_code: Mapped[int | None]  # None: no answer (refused, timed out)
    error: Mapped[str | None] = mapped_column(Text)
    response_excerpt: Mapped[str | None] = mapped_column(Text)
