"""All SQL about usage events and per-period counters.

The limit is enforced inside one conditional UPDATE (`used + q <= limit`), which both engines
evaluate under the row's write lock: that statement, not any lock in Python, is what keeps
concurrent requests from passing the limit.
"""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import Session

from billplane.models import UsageCounter, UsageEvent
from billplane.sql import insert_ignoring_conflict


def used_in(
    session: Session, tenant_id: int, keys: Iterable[tuple[int, str]]
) -> dict[tuple[int, str], int]:
    """Usage per (feature id, period key) for the pairs asked; absent pairs used nothing."""
    pairs = list(keys)
    if not pairs:
        return {}
    rows = session.execute(
        select(UsageCounter.feature_id, UsageCounter.period_key, UsageCounter.used).where(
            UsageCounter.tenant_id == tenant_id,
            tuple_(UsageCounter.feature_id, UsageCounter.period_key).in_(pairs),
        )
    )
    return {(r.feature_id, r.period_key): r.used for r in rows}


def claim_idempotency_key(
    session: Session,
    *,
    tenant_id: int,
    feature_id: int,
    key: str,
    quantity: int,
    period_key: str,
    occurred_at: datetime,
    now: datetime,
) -> int | None:
    """Insert the event row for `key`; None when an event with that key already exists."""
    values = {
        "tenant_id": tenant_id,
        "feature_id": feature_id,
        "idempotency_key": key,
        "quantity": quantity,
        "period_key": period_key,
        "occurred_at": occurred_at,
        "recorded_at": now,
        "response": {},
    }
    stmt = insert_ignoring_conflict(
        session, UsageEvent, values, ["tenant_id", "idempotency_key"]
    ).returning(UsageEvent.id)
    return session.execute(stmt).scalar_one_or_none()


def event_by_key(session: Session, tenant_id: int, key: str) -> UsageEvent | None:
    return session.scalar(
        select(UsageEvent).where(
            UsageEvent.tenant_id == tenant_id, UsageEvent.idempotency_key == key
        )
    )


def add_to_counter(
    session: Session,
    *,
    tenant_id: int,
    feature_id: int,
    period_key: str,
    quantity: int,
    limit: int | None,
) -> int | None:
    """Add `quantity` to the period's counter, only if it stays within `limit` (when given).

    Returns the new total, or None when the limit would be passed (nothing changed).
    """
    session.execute(
        insert_ignoring_conflict(
            session,
            UsageCounter,
            {"tenant_id": tenant_id, "feature_id": feature_id, "period_key": period_key, "used": 0},
            ["tenant_id", "feature_id", "period_key"],
        )
    )
    stmt = (
        update(UsageCounter)
        .where(
            UsageCounter.tenant_id == tenant_id,
            UsageCounter.feature_id == feature_id,
            UsageCounter.period_key == period_key,
        )
        .values(used=UsageCounter.used + quantity)
        .returning(UsageCounter.used)
    )
    if limit is not None:
        stmt = stmt.where(UsageCounter.used + quantity <= limit)
    return session.execute(stmt).scalar_one_or_none()


def save_response(session: Session, event_id: int, response: dict[str, Any]) -> None:
    session.execute(update(UsageEvent).where(UsageEvent.id == event_id).values(response=response))


def recent_events(session: Session, tenant_id: int, limit: int = 20) -> Sequence[UsageEvent]:
    return session.scalars(
        select(UsageEvent)
        .where(UsageEvent.tenant_id == tenant_id)
        .order_by(UsageEvent.id.desc())
        .limit(limit)
    ).all()
