"""All SQL about received Stripe events."""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from billplane.errors import present
from billplane.models import StripeEvent
from billplane.paging import Page
from billplane.schemas import EventOutcome
from billplane.sql import insert_ignoring_conflict
from billplane.stripe.facts import EventFacts

# Not yet decided: only ever seen inside the transaction that decides it.
PENDING: EventOutcome = "pending"


def get(session: Session, stripe_event_id: str) -> StripeEvent | None:
    return session.scalar(select(StripeEvent).where(StripeEvent.stripe_event_id == stripe_event_id))


def claim(session: Session, event: EventFacts, now: datetime) -> StripeEvent:
    """The event's row, created if new, locked until the transaction ends.

    On PostgreSQL a concurrent delivery of the same id waits here for the first to commit and
    then sees its outcome, so one event is never applied twice at once.
    """
    values = {
        "stripe_event_id": event.id,
        "type": event.type,
        "livemode": event.livemode,
        "stripe_created_at": event.created,
        "received_at": now,
        "outcome": PENDING,
        "payload": event.payload,
    }
    session.execute(
        insert_ignoring_conflict(session, StripeEvent.__table__, values, ["stripe_event_id"])
    )
    row = session.scalar(
        select(StripeEvent)
        .where(StripeEvent.stripe_event_id == event.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return present(row, f"event {event.id}")


def recent(
    session: Session,
    *,
    limit: int,
    starting_after: str | None = None,
    outcome: EventOutcome | None = None,
    type: str | None = None,
) -> Page[StripeEvent]:
    """Newest first; `starting_after` is the Stripe id of the last event of the previous page."""
    query = select(StripeEvent).order_by(StripeEvent.id.desc()).limit(limit + 1)
    if outcome is not None:
        query = query.where(StripeEvent.outcome == outcome)
    if type is not None:
        query = query.where(StripeEvent.type == type)
    if starting_after is not None:
        after = get(session, starting_after)
        if after is not None:
            query = query.where(StripeEvent.id < after.id)
    rows = session.scalars(query).all()
    return Page(data=rows[:limit], has_more=len(rows) > limit)
