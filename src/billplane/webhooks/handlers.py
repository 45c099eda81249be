"""What each Stripe event type does to billing state (docs/architecture.md, "The life of a
Stripe webhook").

An event is news that something changed, not the change itself: Stripe repeats deliveries and
does not order them, so each handler reads the object's current state from Stripe (`gather`,
outside any transaction) and stores that (`apply`). Whatever order events arrive in, the last
one processed leaves what Stripe says now.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from billplane.billing import invoices, refunds
from billplane.billing import repository as billing_rows
from billplane.billing import service as billing
from billplane.credits import repository as credit_rows
from billplane.stripe import facts
from billplane.stripe.facts import (
    TOPUP_PRICE_KEY,
    ChargeFacts,
    CheckoutSessionFacts,
    EventFacts,
    InvoiceFacts,
    SubscriptionFacts,
    claimed_tenant,
)
from billplane.stripe.gateway import StripeGateway

CHECKOUT_COMPLETED = "checkout.session.completed"
SUBSCRIPTION_EVENTS = (
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
)
PAYMENT_FAILED = "invoice.payment_failed"
INVOICE_EVENTS = ("invoice.created", "invoice.finalized", "invoice.paid", PAYMENT_FAILED)
# Invoices whose outcome moves the subscription (Stripe sets its status as they settle).
SETTLING_INVOICE_EVENTS = ("invoice.paid", PAYMENT_FAILED)
CUSTOMER_DELETED = "customer.deleted"
CHARGE_REFUNDED = "charge.refunded"
HANDLED_TYPES = (
    CHECKOUT_COMPLETED,
    *SUBSCRIPTION_EVENTS,
    *INVOICE_EVENTS,
    CUSTOMER_DELETED,
    CHARGE_REFUNDED,
)

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Gathered:
    """What Stripe said, when asked about an event's objects."""

    seen_at: datetime
    checkout: CheckoutSessionFacts | None = None
    subscription: SubscriptionFacts | None = None
    invoice: InvoiceFacts | None = None
    charge: ChargeFacts | None = None
    # Set when what the event is about is gone from Stripe: the event is ignored, saying so.
    gone: str | None = None


def concerns_billplane(session: Session, event: EventFacts) -> bool:
    """Whether the event is about something billplane created or keeps; others are ignored
    without asking Stripe (an account often serves more than billplane)."""
    obj = event.object
    if event.type == CHECKOUT_COMPLETED:
        return claimed_tenant(facts.checkout_session_from(obj).metadata) is not None
    if event.type in SUBSCRIPTION_EVENTS:
        sub = facts.subscription_from(obj)
        return (
            _known_subscription(session, sub.id)
            or _linked_customer(session, sub.customer)
            or claimed_tenant(sub.metadata) is not None
        )
    if event.type in INVOICE_EVENTS:
        invoice = facts.invoice_from(obj)
        return _known_subscription(session, invoice.subscription) or _linked_customer(
            session, invoice.customer
        )
    if event.type == CUSTOMER_DELETED:
        customer = str(obj.get("id") or "")
        return _linked_customer(session, customer) or bool(
            billing_rows.subscriptions_of_customer(session, customer)
        )
    if event.type == CHARGE_REFUNDED:
        # A top-up's customer is linked before its checkout opens, so even a refund processed
        # before the top-up landed is recognised.
        charge = facts.charge_from(obj)
        return _linked_customer(session, charge.customer) or (
            bool(charge.payment_intent)
            and credit_rows.topup_by_payment_intent(session, str(charge.payment_intent)) is not None
        )
    return False


def _known_subscription(session: Session, subscription_id: str | None) -> bool:
    return bool(subscription_id) and (
        billing_rows.subscription(session, str(subscription_id)) is not None
    )


def _linked_customer(session: Session, customer_id: str | None) -> bool:
    return bool(customer_id) and (
        billing_rows.tenant_by_customer(session, str(customer_id)) is not None
    )


def gather(event: EventFacts, stripe: StripeGateway, clock: Clock) -> Gathered:
    """Read from Stripe the current state of what the event is about."""
    obj = event.object
    if event.type == CHECKOUT_COMPLETED:
        return gather_checkout(facts.checkout_session_from(obj), stripe, clock)
    if event.type in SUBSCRIPTION_EVENTS:
        current = stripe.find_subscription(str(obj["id"]))
        gone = None if current else _gone("subscription", str(obj["id"]))
        return Gathered(seen_at=clock(), subscription=current, gone=gone)
    if event.type in INVOICE_EVENTS:
        invoice = stripe.find_invoice(str(obj["id"]))
        if invoice is None:
            return Gathered(seen_at=clock(), gone=_gone("invoice", str(obj["id"])))
        subscription = None
        if invoice is not None and invoice.subscription and event.type in SETTLING_INVOICE_EVENTS:
            subscription = stripe.find_subscription(invoice.subscription)
        return Gathered(seen_at=clock(), invoice=invoice, subscription=subscription)
    if event.type == CHARGE_REFUNDED:
        return gather_refund(str(obj["id"]), stripe, clock)
    return Gathered(seen_at=clock())


def gather_refund(charge_id: str, stripe: StripeGateway, clock: Clock) -> Gathered:
    """The charge as Stripe has it now (its refunds so far), and the top-up checkout its
    PaymentIntent paid, if billplane opened one (else nothing is to be done)."""
    charge = stripe.find_charge(charge_id)
    if charge is None:
        return Gathered(seen_at=clock(), gone=_gone("charge", charge_id))
    paid = (
        stripe.checkout_sessions_of_payment(charge.payment_intent) if charge.payment_intent else []
    )
    topup = next((s for s in paid if TOPUP_PRICE_KEY in s.metadata), None)
    return Gathered(seen_at=clock(), checkout=topup, charge=charge)


def _gone(kind: str, object_id: str) -> str:
    return (
        f"Stripe no longer has {kind} {object_id} (deleted, or test data cleared): "
        "its state is unknown, so nothing was changed."
    )


def gather_checkout(
    checkout: CheckoutSessionFacts, stripe: StripeGateway, clock: Clock
) -> Gathered:
    """A completed checkout and its subscription as Stripe has it now (also for confirm)."""
    subscription = (
        stripe.find_subscription(checkout.subscription) if checkout.subscription else None
    )
    return Gathered(seen_at=clock(), checkout=checkout, subscription=subscription)


def apply(
    session: Session, event: EventFacts, gathered: Gathered, ctx: billing.Context
) -> list[billing.Change]:
    """Store what was gathered for this event; raises to leave everything as it was."""
    if event.type == CHARGE_REFUNDED:
        if gathered.checkout is None or gathered.charge is None:
            return []
        return refunds.apply_refund(session, gathered.checkout, gathered.charge, ctx)
    if event.type == CHECKOUT_COMPLETED and gathered.checkout is not None:
        return billing.apply_checkout(session, gathered.checkout, gathered.subscription, ctx)
    if event.type == CUSTOMER_DELETED:
        return billing.unlink_customer(
            session, str(event.object["id"]), ctx, ended_at=event.created
        )
    changes = []
    if gathered.subscription is not None:
        changes += billing.apply_subscription(session, gathered.subscription, ctx)
    if gathered.invoice is not None:
        changes += invoices.record_invoice(session, gathered.invoice, ctx)
        if event.type == PAYMENT_FAILED:
            invoices.tell_payment_failed(session, gathered.invoice, ctx)
    return changes
