"""Tenants (the billing identity of one client), their overrides and subscriptions."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from billplane.models.base import Base
from billplane.schemas import Reset, Status


class Tenant(Base):
    __tablename__ = "tenants"
    __table_args__ = (UniqueConstraint("project_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    # An archived tenant keeps its subscription, usage and audit trail, but every check of it
    # is refused.
    status: Mapped[Status] = mapped_column(String(16), default="active", server_default="active")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class TenantOverride(Base):
    """A per-tenant grant that replaces the plan's grant for one feature."""

    __tablename__ = "tenant_overrides"
    __table_args__ = (UniqueConstraint("tenant_id", "feature_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    feature_id: Mapped[int] = mapped_column(ForeignKey("features.id", ondelete="CASCADE"))
    enabled: Mapped[bool] = mapped_column(default=True)
    limit: Mapped[int | None]
    reset: Mapped[Reset | None] = mapped_column(String(16))


class TenantPlanVersion(Base):
    """The version of a plan a tenant bought: kept when the plan changes, until an operator
    migrates the tenant. Written when a live subscription to one of the plan's prices is
    first stored, or moves to it."""

    __tablename__ = "tenant_plan_versions"
    __table_args__ = (Index("ix_tenant_plan_versions_plan_version", "plan_id", "version"),)

    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    plan_id: Mapped[int] = mapped_column(
        ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int]
    updated_at: Mapped[datetime]


class Subscription(Base):
    """A tenant's Stripe subscription as billplane last learned it."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    stripe_subscription_id: Mapped[str] = mapped_column(String(255), unique=True)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    stripe_price_id: Mapped[str | None] = mapped_column(String(255))
    current_period_start: Mapped[datetime | None]
    current_period_end: Mapped[datetime | None]
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    trial_end: Mapped[datetime | None]
    canceled_at: Mapped[datetime | None]
    # When billplane last read this subscription from Stripe: an older read never wins.
    stripe_updated_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
