"""Projects (one per product) and the features their plans can unlock."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from billplane.models.base import Base
from billplane.schemas import FeatureType, Status


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    origins: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime]
    first_check_at: Mapped[datetime | None]
    # How long its signed snapshots are valid, in seconds; NULL: BILLPLANE_SNAPSHOT_TTL.
    snapshot_ttl_seconds: Mapped[int | None]
    # A new random number whenever the project's plans, their versions or grants change, set by
    # the database's triggers (see entitlements/catalogue.py); workers keep the plans under it.
    catalogue_generation: Mapped[int] = mapped_column(BigInteger, server_default="0")


class Feature(Base):
    __tablename__ = "features"
    __table_args__ = (UniqueConstraint("project_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[FeatureType] = mapped_column(String(16))
    unit: Mapped[str | None] = mapped_column(String(64))
    # An archived feature keeps its grants and usage, but every check of it is refused.
    status: Mapped[Status] = mapped_column(String(16), default="active", server_default="active")
    created_at: Mapped[datetime]
