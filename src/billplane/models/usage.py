"""Usage: each recorded event (exactly once per idempotency key) and per-period counters."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, ForeignKeyConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from billplane.models.base import Base


class UsageEvent(Base):
    """One recorded use. It belongs to the counter it was counted in (which belongs to the
    tenant and the feature): one foreign key per event to check, not two, on the hot path's
    largest insert; deleting a tenant or a feature still takes its counters and events along.
    A counter is only ever removed at zero, when no event can point at it (quantities are >= 1).
    """

    __tablename__ = "usage_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        ForeignKeyConstraint(
            ["tenant_id", "feature_id", "period_key"],
            [
                "usage_counters.tenant_id",
                "usage_counters.feature_id",
                "usage_counters.period_key",
            ],
            ondelete="CASCADE",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int]
    feature_id: Mapped[int]
    idempotency_key: Mapped[str] = mapped_column(String(255))
    quantity: Mapped[int] = mapped_column(BigInteger)
    period_key: Mapped[str] = mapped_column(String(48))
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    # The answer given the first time, returned again for a repeat of the same key.
    response: Mapped[dict[str, Any]] = mapped_column(JSON)


class UsageCounter(Base):
    """How much of one feature a tenant used in one reset period."""

    __tablename__ = "usage_counters"
    __table_args__ = (UniqueConstraint("tenant_id", "feature_id", "period_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    feature_id: Mapped[int] = mapped_column(ForeignKey("features.id", ondelete="CASCADE"))
    period_key: Mapped[str] = mapped_column(String(48))
    used: Mapped[int] = mapped_column(BigInteger, default=0)
