"""HTTP for Stripe's webhook deliveries, and the admin API over received events."""

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from billplane import metrics
from billplane.db import Transactions
from billplane.errors import BillplaneError, EventNotFound, present
from billplane.http import Admin, AppClock, CurrentSettings, Stripe, Tx, errors
from billplane.models import StripeEvent
from billplane.paging import ListOut
from billplane.schemas import EventOutcome, Key, PageLimit
from billplane.settings import Settings
from billplane.stripe.errors import WebhookFailed, WebhookNotConfigured
from billplane.stripe.facts import EventFacts, event_from
from billplane.stripe.gateway import StripeGateway
from billplane.webhooks import WEBHOOK_PATH, pipeline, repository
from billplane.webhooks.schemas import EventDetailOut, EventOut, WebhookAnswer

router = APIRouter(tags=["stripe"])
admin = APIRouter(prefix="/admin/api/events", tags=["admin"])


@router.post(
    WEBHOOK_PATH,
    response_model=WebhookAnswer,
    responses=errors(
        (
            400,
            "The signature does not verify, or the event's mode is not the key's "
            "(`invalid_signature`, `livemode_mismatch`): nothing was kept.",
        ),
        (
            413,
            "The body is larger than BILLPLANE_MAX_BODY_BYTES (`payload_too_large`; 2 MiB by "
            "default, several times Stripe's largest events): refused unread.",
        ),
        (500, "Processing failed (`webhook_failed`): Stripe delivers the event again."),
        (503, "STRIPE_WEBHOOK_SECRET is not set (`webhook_not_configured`)."),
    ),
    summary="Stripe's deliveries",
)
async def stripe_webhook(
    request: Request, settings: CurrentSettings, stripe: Stripe, tx: Tx, clock: AppClock
) -> Any:
    """Verify the signature, record the event once and apply it. Answers 400 (nothing kept)
    to a bad signature, 200 to a repeat, 500 when processing failed so that Stripe retries."""
    # The signature covers the exact bytes: read them before anything parses the body.
    payload = await request.body()
    signature = request.headers.get("stripe-signature")
    return await run_in_threadpool(_receive, payload, signature, settings, stripe, tx, clock)


UNVERIFIED = "unverified"  # the type label of a delivery refused before its event was read


def _receive(
    payload: bytes,
    signature: str | None,
    settings: Settings,
    stripe: StripeGateway,
    tx: Transactions,
    clock: AppClock,
) -> WebhookAnswer:
    event_type = UNVERIFIED  # counted under its type once the signature proves it is Stripe's
    try:
        event = _verified(payload, signature, settings, stripe)
        event_type = event.type
        answer = _apply(event, stripe, tx, clock, settings.billplane_past_due_grace_days)
    except BillplaneError as refused:
        metrics.webhook_event(event_type, refused.code)
        raise
    except Exception:
        metrics.webhook_event(event_type, "error")
        raise
    metrics.webhook_event(event_type, "duplicate" if answer.duplicate else answer.outcome)
    return answer


def _verified(
    payload: bytes, signature: str | None, settings: Settings, stripe: StripeGateway
) -> EventFacts:
    secret = settings.stripe_webhook_secret
    if not secret:
        raise WebhookNotConfigured(
            "STRIPE_WEBHOOK_SECRET is not set, so billplane cannot tell Stripe's deliveries "
            "from forgeries and accepts none: set it to the endpoint's signing secret."
        )
    return event_from(stripe.verify_webhook(payload, signature, secret))


def _apply(
    event: EventFacts, stripe: StripeGateway, tx: Transactions, clock: AppClock, grace_days: int
) -> WebhookAnswer:
    pipeline.refuse_other_mode(stripe, event)
    try:
        receipt = pipeline.process(tx, stripe, event, clock, grace_days=grace_days)
    except pipeline.EventFailed as failed:
        raise WebhookFailed(
            f"Event {event.id} could not be processed ({failed.error}); Stripe will retry it."
        ) from None
    return WebhookAnswer(
        received=True,
        id=receipt.event_id,
        type=receipt.type,
        outcome=receipt.outcome,
        duplicate=receipt.duplicate,
    )


def event_out(row: StripeEvent) -> EventOut:
    return EventOut(
        id=row.stripe_event_id,
        type=row.type,
        livemode=row.livemode,
        created=row.stripe_created_at,
        received_at=row.received_at,
        processed_at=row.processed_at,
        outcome=row.outcome,
        error=row.error,
        reason=row.reason,
    )


@admin.get("", response_model=ListOut[EventOut], summary="Received Stripe events, newest first")
def list_events(
    _: Admin,
    tx: Tx,
    limit: PageLimit = 50,
    starting_after: Key | None = None,
    outcome: EventOutcome | None = None,
    type: Key | None = None,
) -> Any:
    with tx.read() as session:
        page = repository.recent(
            session, limit=limit, starting_after=starting_after, outcome=outcome, type=type
        )
        return {"data": [event_out(e) for e in page.data], "has_more": page.has_more}


@admin.get("/{event_id}", response_model=EventDetailOut, summary="One event, with its payload")
def get_event(event_id: Key, _: Admin, tx: Tx) -> Any:
    with tx.read() as session:
        row = repository.get(session, event_id)
        if row is None:
            raise EventNotFound(f"No Stripe event '{event_id}' was received.")
        return EventDetailOut(**event_out(row).model_dump(), payload=row.payload)


@admin.post(
    "/{event_id}/replay",
    response_model=EventOut,
    responses=errors(503),
    summary="Process an event again",
)
def replay_event(
    event_id: Key,
    _: Admin,
    tx: Tx,
    stripe: Stripe,
    clock: AppClock,
    settings: CurrentSettings,
) -> Any:
    """Re-apply a received event from its stored payload (what Stripe says now wins)."""
    grace_days = settings.billplane_past_due_grace_days
    pipeline.replay_stored(tx, stripe, event_id, clock, grace_days=grace_days)
    with tx.read() as session:
        return event_out(present(repository.get(session, event_id), f"event {event_id}"))
