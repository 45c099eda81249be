"""Plans (a Stripe price plus what it unlocks), their versions and their per-feature grants.

Changing what a plan grants (grants, price, trial days) makes a new version; the older versions'
rows are kept, since tenants who bought them keep them (`TenantPlanVersion`, in `tenant`).
"""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from billplane.models.base import Base
from billplane.schemas import Reset, Status


class Plan(Base):
    __tablename__ = "plans"
    __table_args__ = (
        UniqueConstraint("project_id", "key"),
        # At most one default plan per project, enforced by the database itself.
        Index(
            "uq_plans_one_default_per_project",
            "project_id",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    stripe_price_id: Mapped[str | None] = mapped_column(String(255), index=True)
    trial_days: Mapped[int] = mapped_column(default=0)
    status: Mapped[Status] = mapped_column(String(16), default="active")
    is_default: Mapped[bool] = mapped_column(default=False)
    # The newest version: what new subscribers get, and what tenants on the default plan without
    # a subscription follow.
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    # What Stripe said of `stripe_price_id` when the plan was last saved (see plans/prices.py).
    stripe_price: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PlanVersion(Base):
    """One version of a plan: the price and trial it was sold with (its grants: `PlanGrant`)."""

    __tablename__ = "plan_versions"
    __table_args__ = (
        UniqueConstraint("plan_id", "version"),
        # The plan of a subscribed price, whichever version sold it (the check reads it).
        Index("ix_plan_versions_price_plan", "stripe_price_id", "plan_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    version: Mapped[int]
    stripe_price_id: Mapped[str | None] = mapped_column(String(255))
    trial_days: Mapped[int]
    created_at: Mapped[datetime]


class PlanGrant(Base):
    """What one version of a plan grants for one feature: on/off, or a limit with its reset."""

    __tablename__ = "plan_grants"
    __table_args__ = (UniqueConstraint("plan_id", "version", "feature_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    feature_id: Mapped[int] = mapped_column(ForeignKey("features.id", ondelete="CASCADE"))
    enabled: Mapped[bool] = mapped_column(default=True)
    limit: Mapped[int | None]
    reset: Mapped[Reset | None] = mapped_column(String(16))
