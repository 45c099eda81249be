"""One Stripe event from receipt to outcome. Like a request handler, this is an edge: it owns
its transactions (the webhook endpoint, the replay endpoint and the CLI all run it).

The event's row and its effect are written in one transaction, marked `processed` only when the
effect commits. If anything fails, that transaction rolls back and a second one records the
event as `failed` with its error: a retry of a failed event is processed again, never taken for
a duplicate.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from billplane.billing.service import Context
from billplane.db import Transactions
from billplane.errors import BillplaneError, EventNotFound
from billplane.logs import billplane_logger, redact
from billplane.models import StripeEvent
from billplane.outage import is_outage
from billplane.schemas import EventOutcome
from billplane.stripe.errors import LivemodeMismatch, WebhookFailed
from billplane.stripe.facts import EventFacts, event_from
from billplane.stripe.gateway import StripeGateway
from billplane.webhooks import handlers, repository

ACTOR = "stripe-webhook"
DONE = frozenset({"processed", "ignored"})
MAX_ERROR = 2000

log = billplane_logger()


@dataclass(frozen=True)
class Receipt:
    event_id: str
    type: str
    outcome: EventOutcome
    duplicate: bool = False
    changes: int = 0


class EventFailed(Exception):
    """Processing failed and the event is recorded as `failed`; `cause` says why."""

    def __init__(self, event: EventFacts, cause: Exception, error: str) -> None:
        super().__init__(error)
        self.event = event
        self.cause = cause
        self.error = error


def refuse_other_mode(stripe: StripeGateway, event: EventFacts) -> None:
    """A live event at a test-mode server (or the reverse) is a misrouted endpoint."""
    if stripe.configured and event.livemode != stripe.livemode:
        sent = "live" if event.livemode else "test"
        raise LivemodeMismatch(
            f"Event {event.id} is a {sent}-mode event, but STRIPE_SECRET_KEY is a "
            f"{stripe.mode}-mode key: point this {sent}-mode webhook at a billplane "
            f"configured for {sent} mode."
        )


def process(
    tx: Transactions,
    stripe: StripeGateway,
    event: EventFacts,
    clock: Callable[[], datetime],
    *,
    grace_days: int,
    replay: bool = False,
) -> Receipt:
    """Apply the event once (again, if `replay`); raises EventFailed after recording it."""
    with tx.read() as session:
        stored = repository.get(session, event.id)
        if stored is not None and stored.outcome in DONE and not replay:
            return Receipt(event.id, event.type, stored.outcome, duplicate=True)
        relevant = handlers.concerns_billplane(session, event)
    try:
        # Stripe is asked before the transaction opens: a slow Stripe must not hold locks.
        gathered = handlers.gather(event, stripe, clock) if relevant else None
        with tx.write() as session:
            now = clock()
            row = repository.claim(session, event, now)
            if row.outcome in DONE and not replay:
                return Receipt(event.id, event.type, row.outcome, duplicate=True)
            if gathered is None or gathered.gone:
                _finish(row, "ignored", None, now, reason=_why_ignored(event, gathered))
                return Receipt(event.id, event.type, row.outcome)
            ctx = Context(actor=ACTOR, now=now, seen_at=gathered.seen_at, grace_days=grace_days)
            changes = handlers.apply(session, event, gathered, ctx)
            _finish(row, "processed", None, now)
            return Receipt(event.id, event.type, row.outcome, changes=len(changes))
    except Exception as exc:
        if is_outage(exc):
            raise  # nowhere to record it, and nothing to: Stripe delivers it again after a 503
        error = _describe(exc)
        _record_failure(tx, event, error, clock())
        raise EventFailed(event, exc, error) from exc


def _record_failure(tx: Transactions, event: EventFacts, error: str, now: datetime) -> None:
    with tx.write() as session:
        row = repository.claim(session, event, now)
        # A replay that fails leaves an event already applied as it was.
        if row.outcome not in DONE:
            _finish(row, "failed", error, None)


def _why_ignored(event: EventFacts, gathered: handlers.Gathered | None) -> str:
    if gathered is not None and gathered.gone:
        return gathered.gone
    if event.type not in handlers.HANDLED_TYPES:
        return f"billplane does not act on {event.type} events."
    return "Not about a tenant, customer or subscription billplane keeps (another app's?)."


def _finish(
    row: StripeEvent,
    outcome: EventOutcome,
    error: str | None,
    now: datetime | None,
    *,
    reason: str | None = None,
) -> None:
    row.outcome = outcome
    row.error = error
    row.reason = reason
    row.processed_at = now


def _describe(exc: Exception) -> str:
    if isinstance(exc, BillplaneError):
        return redact(f"{exc.code}: {exc.message}")[:MAX_ERROR]
    # A bug, not an expected refusal: keep the traceback in the log (secrets masked).
    log.error("stripe event processing failed: %s", type(exc).__name__, exc_info=exc)
    return redact(f"{type(exc).__name__}: {exc}")[:MAX_ERROR]


def replay_stored(
    tx: Transactions,
    stripe: StripeGateway,
    event_id: str,
    clock: Callable[[], datetime],
    *,
    grace_days: int,
) -> Receipt:
    """Process a received event again from its stored payload (an operator's retry)."""
    with tx.read() as session:
        row = repository.get(session, event_id)
        if row is None:
            raise EventNotFound(f"No Stripe event '{event_id}' was received.")
        event = event_from(row.payload)
    refuse_other_mode(stripe, event)
    try:
        return process(tx, stripe, event, clock, grace_days=grace_days, replay=True)
    except EventFailed as failed:
        # The operator hears Stripe trouble as 503, a parked link as 409, like any call.
        if isinstance(failed.cause, BillplaneError):
            raise failed.cause from None
        raise WebhookFailed(f"Replaying {event_id} failed: {failed.error}") from None
