"""All SQL about app webhook endpoints, deliveries and their attempts (the outbox's writes are
`outbox`'s)."""

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, func, select, text, update
from sqlalchemy.orm import Session, aliased

from billplane.models import AppDelivery, AppDeliveryAttempt, AppEvent, AppWebhookEndpoint
from billplane.paging import Page

Endpoint = AppWebhookEndpoint


def add(session: Session, row: Any) -> None:
    session.add(row)
    session.flush()


def endpoint(session: Session, project_id: int, public_id: str) -> Endpoint | None:
    return session.scalar(
        select(Endpoint).where(Endpoint.project_id == project_id, Endpoint.public_id == public_id)
    )


def endpoints(
    session: Session, project_id: int, *, limit: int, starting_after: str | None
) -> Page[Endpoint]:
    """Oldest first; `starting_after` is the id of the last endpoint of the previous page."""
    query = select(Endpoint).where(Endpoint.project_id == project_id)
    if starting_after is not None:
        after = endpoint(session, project_id, starting_after)
        if after is not None:
            query = query.where(Endpoint.id > after.id)
    rows = session.scalars(query.order_by(Endpoint.id).limit(limit + 1)).all()
    return Page(data=rows[:limit], has_more=len(rows) > limit)


def deliveries(
    session: Session,
    endpoint_id: int,
    *,
    limit: int,
    starting_after: str | None,
    status: str | None = None,
) -> Page[tuple[AppDelivery, AppEvent]]:
    """Newest first, each with its event; `starting_after` is a delivery's id."""
    query = (
        select(AppDelivery, AppEvent)
        .join(AppEvent, AppEvent.id == AppDelivery.event_id)
        .where(AppDelivery.endpoint_id == endpoint_id)
    )
    if status is not None:
        query = query.where(AppDelivery.status == status)
    if starting_after is not None:
        after = session.scalar(
            select(AppDelivery.id).where(
                AppDelivery.endpoint_id == endpoint_id, AppDelivery.public_id == starting_after
            )
        )
        if after is not None:
            query = query.where(AppDelivery.id < after)
    rows = session.execute(query.order_by(AppDelivery.id.desc()).limit(limit + 1)).all()
    pairs = [(d, e) for d, e in rows]
    return Page(data=pairs[:limit], has_more=len(pairs) > limit)


def delivery(
    session: Session, endpoint_id: int, public_id: str
) -> tuple[AppDelivery, AppEvent] | None:
    row = session.execute(
        select(AppDelivery, AppEvent)
        .join(AppEvent, AppEvent.id == AppDelivery.event_id)
        .where(AppDelivery.endpoint_id == endpoint_id, AppDelivery.public_id == public_id)
    ).first()
    return None if row is None else (row[0], row[1])


def attempts_of(
    session: Session, delivery_id: int, limit: int = 50
) -> Sequence[AppDeliveryAttempt]:
    """The newest attempts of a delivery, newest first."""
    return session.scalars(
        select(AppDeliveryAttempt)
        .where(AppDeliveryAttempt.delivery_id == delivery_id)
        .order_by(AppDeliveryAttempt.id.desc())
        .limit(limit)
    ).all()


def backlog(session: Session) -> tuple[int, datetime | None]:
    """How many deliveries are pending, and when the oldest of them was written: one statement
    over the pending rows alone (the `(status, next_attempt_at)` index finds them)."""
    row = session.execute(
        select(func.count(), func.min(AppDelivery.created_at)).where(
            AppDelivery.status == "pending"
        )
    ).one()
    return int(row[0]), row[1]


def counts_by_status(session: Session, endpoint_id: int) -> dict[str, int]:
    rows = session.execute(
        select(AppDelivery.status, func.count())
        .where(AppDelivery.endpoint_id == endpoint_id)
        .group_by(AppDelivery.status)
    )
    return {status: int(count) for status, count in rows}


# --- the sender's claims ---------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """A delivery a sender holds until `claimed_until`, with what it needs to send it."""

    delivery_id: int
    claim: str
    endpoint_id: int
    endpoint_public_id: str
    message_id: str
    url: str
    sealed_secrets: list[str]  # sealed (see `signing.unseal`): the sender opens them
    payload: dict[str, Any]
    attempts: int
    give_up_at: datetime | None


def _due(now: datetime, skip: Collection[int] = ()) -> Any:
    """Deliveries to send now: pending, due, claimed by nobody (or by a sender whose claim ran
    out: it died), at an enabled endpoint (but those of `skip`), and first in their tenant's
    queue there (nothing of the same tenant with a lower sequence number still pending)."""
    earlier = aliased(AppDelivery)
    queued_before = exists().where(
        earlier.endpoint_id == AppDelivery.endpoint_id,
        earlier.tenant_id == AppDelivery.tenant_id,
        earlier.status == "pending",
        earlier.sequence < AppDelivery.sequence,
    )
    query = (
        select(AppDelivery.id)
        .join(Endpoint, Endpoint.id == AppDelivery.endpoint_id)
        .where(
            AppDelivery.status == "pending",
            AppDelivery.next_attempt_at <= now,
            (AppDelivery.claimed_until.is_(None)) | (AppDelivery.claimed_until <= now),
            Endpoint.status == "enabled",
            ~queued_before,
        )
    )
    return query.where(Endpoint.id.not_in(skip)) if skip else query


@contextmanager
def _without_nested_loops(session: Session) -> Iterator[None]:
    """PostgreSQL: plan the block's queries without nested loops.

    A burst of deliveries (a plan change reaching every tenant) lands faster than PostgreSQL's
    statistics follow: believing few deliveries pending, it asked, for each due delivery,
    whether an earlier one of its queue waits by scanning every pending one (a claim cost
    0.3 s of its CPU with 1,600 waiting for a slow app, several a second from the senders).
    Hash joins take one pass whatever the statistics say. `SET LOCAL` ends with the
    transaction at the latest, so a pooled connection (PgBouncer) keeps nothing of it.
    """
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    session.execute(text("SET LOCAL enable_nestloop = off"))
    yield
    session.execute(text("SET LOCAL enable_nestloop = on"))


def any_due(session: Session, now: datetime, skip: Collection[int] = ()) -> bool:
    """Whether a sender would find work (a read: idle senders take no write lock); the
    endpoints of `skip` are left out."""
    with _without_nested_loops(session):
        return session.scalar(_due(now, skip).limit(1)) is not None


def claim_due(
    session: Session,
    now: datetime,
    *,
    limit: int,
    claim: str,
    until: datetime,
    skip: Collection[int] = (),
) -> list[Claimed]:
    """Claim up to `limit` due deliveries for one sender, oldest due first.

    On PostgreSQL, rows another sender is claiming at this moment are skipped (`SKIP LOCKED`),
    never waited for; on SQLite the caller's write transaction is the only claimer there is.
    Either way the claim is a column, not a lock held while sending: nothing stays open across
    transactions (PgBouncer's transaction pooling keeps no session for it).
    """
    query = _due(now, skip).order_by(AppDelivery.next_attempt_at, AppDelivery.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=AppDelivery, skip_locked=True)
    with _without_nested_loops(session):
        ids = list(session.scalars(query))
    if not ids:
        return []
    session.execute(
        update(AppDelivery)
        .where(AppDelivery.id.in_(ids))
        .values(claim=claim, claimed_until=until)
        .execution_options(synchronize_session=False)
    )
    rows = session.execute(
        select(AppDelivery, AppEvent, Endpoint)
        .join(AppEvent, AppEvent.id == AppDelivery.event_id)
        .join(Endpoint, Endpoint.id == AppDelivery.endpoint_id)
        .where(AppDelivery.id.in_(ids))
        .order_by(AppDelivery.next_attempt_at, AppDelivery.id)
    ).all()
    return [
        Claimed(
            delivery_id=d.id,
            claim=claim,
            endpoint_id=e.id,
            endpoint_public_id=e.public_id,
            message_id=event.public_id,
            url=e.url,
            sealed_secrets=signing_secrets(e, now),
            payload=event.payload,
            attempts=d.attempts,
            give_up_at=d.give_up_at,
        )
        for d, event, e in rows
    ]


def signing_secrets(endpoint: Endpoint, now: datetime) -> list[str]:
    """The secrets that sign now, sealed: the current one, and the one a rotation replaced for
    a while."""
    until = endpoint.previous_secret_until
    if endpoint.previous_secret_sealed and until is not None and now < until:
        return [endpoint.secret_sealed, endpoint.previous_secret_sealed]
    return [endpoint.secret_sealed]


def claimed(session: Session, delivery_id: int, claim: str) -> AppDelivery | None:
    """The delivery, locked, if `claim` still holds it (a sender that outlived its claim lost
    it to another: its attempt is kept, its verdict is not)."""
    return session.scalar(
        select(AppDelivery)
        .where(AppDelivery.id == delivery_id, AppDelivery.claim == claim)
        .with_for_update()
    )


def hold_back(session: Session, delivery_id: int, claim: str, reason: str) -> None:
    """Note why a claimed delivery was not sent; it stays claimed (and pending) until its claim
    runs out, and counts no attempt."""
    session.execute(
        update(AppDelivery)
        .where(AppDelivery.id == delivery_id, AppDelivery.claim == claim)
        .values(last_error=reason)
        .execution_options(synchronize_session=False)
    )


def add_attempt(session: Session, attempt: AppDeliveryAttempt) -> None:
    session.add(attempt)


def endpoint_failing_since(session: Session, endpoint_id: int, since: datetime) -> datetime | None:
    """Note that the endpoint is failing (since `since`, unless it was already); returns since
    when. One statement, so that two senders recording at once agree."""
    session.execute(
        update(Endpoint)
        .where(Endpoint.id == endpoint_id)
        .values(failing_since=func.coalesce(Endpoint.failing_since, since))
        .execution_options(synchronize_session=False)
    )
    return session.scalar(select(Endpoint.failing_since).where(Endpoint.id == endpoint_id))


def endpoint_succeeded(session: Session, endpoint_id: int) -> None:
    session.execute(
        update(Endpoint)
        .where(Endpoint.id == endpoint_id, Endpoint.failing_since.is_not(None))
        .values(failing_since=None)
        .execution_options(synchronize_session=False)
    )


def disable_endpoint(session: Session, endpoint_id: int, reason: str, now: datetime) -> bool:
    """Disable an enabled endpoint; False if it was not (another sender just did)."""
    result = session.execute(
        update(Endpoint)
        .where(Endpoint.id == endpoint_id, Endpoint.status == "enabled")
        .values(status="disabled", disabled_reason=reason, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def prune(session: Session, before: datetime, *, limit: int) -> int:
    """Remove up to `limit` events written before `before` of which no delivery waits any more
    (their deliveries and attempts go with them); how many were removed."""
    waiting = exists().where(AppDelivery.event_id == AppEvent.id, AppDelivery.status == "pending")
    old = select(AppEvent.id).where(AppEvent.created_at < before, ~waiting).limit(limit)
    ids = list(session.scalars(old))
    if ids:
        session.execute(
            delete(AppEvent)
            .where(AppEvent.id.in_(ids))
            .execution_options(synchronize_session=False)
        )
    return len(ids)


def restart_pending(session: Session, endpoint_id: int, now: datetime) -> None:
    """The endpoint's pending deliveries start again now, with three days of retries anew."""
    session.execute(
        update(AppDelivery)
        .where(AppDelivery.endpoint_id == endpoint_id, AppDelivery.status == "pending")
        .values(next_attempt_at=now, give_up_at=None, attempts=0, claim=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
