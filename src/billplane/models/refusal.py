"""What client apps were answered: refused checks and usage calls, kept a while to answer "why
was this refused?" after the fact, and how many checks each project got per day."""

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from billplane.models.base import Base


class Refusal(Base):
    """One refused check (`allowed: false`) or usage call (402), as it was answered.

    Keys, not ids, for the tenant and the feature: a refusal of a key the project does not have
    (`unknown_feature`) is kept too. Written in the background, in batches (see `refusals`).
    """

    __tablename__ = "refusals"
    __table_args__ = (Index("ix_refusals_project_id_at", "project_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    tenant: Mapped[str] = mapped_column(String(255))
    feature: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(8))  # check | usage
    quantity: Mapped[int] = mapped_column(BigInteger)
    limit: Mapped[int | None] = mapped_column(BigInteger)
    used: Mapped[int | None] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(index=True)


class DailyChecks(Base):
    """How many checks a project got on a UTC day, and how many of them were refused: counted
    in each worker and added here in the background (see `refusals`)."""

    __tablename__ = "daily_checks"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD, UTC
    checks: Mapped[int] = mapped_column(BigInteger, default=0)
    refused: Mapped[int] = mapped_column(BigInteger, default=0)
