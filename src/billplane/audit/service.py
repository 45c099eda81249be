"""Writing and reading audit entries."""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billplane.models import AuditEntry


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str,
    now: datetime,
    project_id: int | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            project_id=project_id,
            actor=actor,
            action=action,
            target=target,
            before=None if before is None else dict(before),
            after=None if after is None else dict(after),
            created_at=now,
        )
    )


def recent(
    session: Session, *, project_id: int | None = None, limit: int = 100
) -> Sequence[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if project_id is not None:
        query = query.where(AuditEntry.project_id == project_id)
    return session.scalars(query).all()
