"""The subscription lifecycle: start, renew, failed and recovered payments, cancellation.

Each step changes state the way Stripe does and emits the events Stripe would, in Stripe's
order; callers hold `state.lock`. Periods live on the subscription items, as in today's API.
"""

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from stripe_double import objects
from stripe_double.clock import SECONDS_PER_DAY, add_interval
from stripe_double.errors import StripeError, parameter_invalid
from stripe_double.objects import StripeObject
from stripe_double.state import DoubleState, changed_attributes

FailedStatus = Literal["past_due", "unpaid"]
# Stripe's default Smart Retries try again a few days after a failure.
RETRY_DELAY = 3 * SECONDS_PER_DAY
LIVE_STATUSES = {"trialing", "active", "past_due", "unpaid", "incomplete", "paused"}


def new_customer(
    state: DoubleState,
    *,
    livemode: bool,
    email: str | None = None,
    name: str | None = None,
    metadata: dict[str, str] | None = None,
) -> StripeObject:
    customer_id = state.new_id("customer")
    customer = objects.customer(
        id=customer_id,
        created=state.clock.now,
        livemode=livemode,
        invoice_prefix=customer_id[-8:].upper(),
    )
    customer.update(email=email, name=name, metadata=dict(metadata or {}))
    state.add("customer", customer)
    state.emit("customer.created", customer)
    return customer


def start_subscription(
    state: DoubleState,
    *,
    customer: StripeObject,
    lines: list[tuple[StripeObject, int]],
    metadata: dict[str, str],
    trial_end: int | None = None,
) -> StripeObject:
    """A new subscription billed at once (nothing due while trialing), as after checkout."""
    now = state.clock.now
    subscription_id = state.new_id("subscription")
    items = [
        _new_item(state, subscription_id, price, quantity, trial_end) for price, quantity in lines
    ]
    subscription = objects.subscription(
        id=subscription_id,
        customer=customer["id"],
        items=items,
        created=now,
        livemode=customer["livemode"],
        currency=lines[0][0]["currency"],
    )
    subscription["metadata"] = dict(metadata)
    if trial_end is not None:
        subscription.update(status="trialing", trial_start=now, trial_end=trial_end)
    else:
        subscription["status"] = "active"
    state.add("subscription", subscription)
    for item in items:
        state.add("subscription_item", item)
    invoice = _draft_invoice(state, subscription, "subscription_create", free=trial_end is not None)
    state.emit("customer.subscription.created", subscription)
    _announce_and_collect(state, invoice, succeed=True)
    return subscription


def _new_item(
    state: DoubleState,
    subscription_id: str,
    price: StripeObject,
    quantity: int,
    trial_end: int | None,
) -> StripeObject:
    recurring = price["recurring"]
    if not recurring:
        raise parameter_invalid("price", f"The price {price['id']} is not recurring.")
    now = state.clock.now
    period_end = trial_end or add_interval(now, recurring["interval"], recurring["interval_count"])
    return objects.subscription_item(
        id=state.new_id("subscription_item"),
        subscription=subscription_id,
        price=price,
        quantity=quantity,
        created=now,
        period=(now, period_end),
    )


def renew(state: DoubleState, subscription_id: str) -> StripeObject:
    """The period ends: the next one is billed and paid (or the subscription ends, if asked)."""
    subscription = live_subscription(state, subscription_id)
    if subscription["cancel_at_period_end"]:
        return end_subscription(state, subscription, at=period_end(subscription))
    with announcing_update(state, subscription):
        invoice = _next_cycle(state, subscription)
        _announce_and_collect(state, invoice, succeed=True)
        subscription.update(status="active")
    return subscription


def fail_payment(
    state: DoubleState, subscription_id: str, status: FailedStatus = "past_due"
) -> StripeObject:
    """A payment fails: the open invoice's retry, or else the next period's first attempt."""
    if status not in ("past_due", "unpaid"):
        raise parameter_invalid("status", "status must be past_due or unpaid")
    subscription = live_subscription(state, subscription_id)
    with announcing_update(state, subscription):
        invoice = _open_invoice(state, subscription)
        if invoice is None:
            invoice = _next_cycle(state, subscription)
            _announce_and_collect(state, invoice, succeed=False)
        else:
            _attempt(state, invoice, succeed=False)
        subscription["status"] = status
    return subscription


def recover(state: DoubleState, subscription_id: str) -> StripeObject:
    """The customer fixes their card: the open invoice is paid and the subscription is active."""
    subscription = live_subscription(state, subscription_id)
    invoice = _open_invoice(state, subscription)
    if invoice is None:
        raise StripeError(f"Subscription {subscription_id} has no unpaid invoice to recover.")
    with announcing_update(state, subscription):
        _attempt(state, invoice, succeed=True)
        subscription["status"] = "active"
    return subscription


def cancel(
    state: DoubleState, subscription_id: str, *, at_period_end: bool = False
) -> StripeObject:
    """Cancel now (`customer.subscription.deleted`) or at the period's end (`…updated`)."""
    subscription = live_subscription(state, subscription_id)
    if not at_period_end:
        return end_subscription(state, subscription)
    set_cancel_at_period_end(state, subscription, True)
    return subscription


def set_cancel_at_period_end(state: DoubleState, subscription: StripeObject, flag: bool) -> None:
    with announcing_update(state, subscription):
        apply_cancel_at_period_end(state, subscription, flag)


def apply_cancel_at_period_end(state: DoubleState, subscription: StripeObject, flag: bool) -> None:
    """Set or clear a pending cancellation, without announcing it (the caller does)."""
    subscription["cancel_at_period_end"] = flag
    if flag:
        subscription.update(
            cancel_at=period_end(subscription),
            canceled_at=state.clock.now,
            cancellation_details=_cancellation("cancellation_requested"),
        )
    else:
        subscription.update(
            cancel_at=None, canceled_at=None, cancellation_details=_cancellation(None)
        )


def end_subscription(
    state: DoubleState, subscription: StripeObject, *, at: int | None = None
) -> StripeObject:
    """End it now, or `at` the period end that a pending cancellation was waiting for."""
    ended = state.clock.now if at is None else at
    subscription.update(
        status="canceled", ended_at=ended, canceled_at=subscription["canceled_at"] or ended
    )
    if subscription["cancellation_details"]["reason"] is None:
        subscription["cancellation_details"] = _cancellation("cancellation_requested")
    state.emit("customer.subscription.deleted", subscription)
    return subscription


def delete_customer(state: DoubleState, customer_id: str) -> StripeObject:
    """Deleting a customer cancels its subscriptions first, as Stripe does."""
    customer = state.get("customer", customer_id)
    for subscription in state.all("subscription"):
        if subscription["customer"] == customer_id and subscription["status"] in LIVE_STATUSES:
            end_subscription(state, subscription)
    state.mark_deleted(customer_id)
    state.emit("customer.deleted", customer)
    return objects.deleted("customer", customer_id)


def live_subscription(state: DoubleState, subscription_id: str) -> StripeObject:
    subscription = state.get("subscription", subscription_id)
    if subscription["status"] not in LIVE_STATUSES:
        raise StripeError(
            f"The subscription {subscription_id} is {subscription['status']}; it cannot change.",
            param="subscription",
        )
    return subscription


def period_end(subscription: StripeObject) -> int:
    return max(int(item["current_period_end"]) for item in subscription["items"]["data"])


# --- invoices ----------------------------------------------------------------------------


def bill_current_period(state: DoubleState, subscription: StripeObject, reason: str) -> None:
    """Invoice the items' current period and collect it (e.g. when a trial is ended early)."""
    invoice = _draft_invoice(state, subscription, reason, free=False)
    _announce_and_collect(state, invoice, succeed=True)


def _next_cycle(state: DoubleState, subscription: StripeObject) -> StripeObject:
    """Move every item to its next period (ending a trial) and draft that period's invoice."""
    for item in subscription["items"]["data"]:
        recurring = item["price"]["recurring"]
        start = item["current_period_end"]
        item["current_period_start"] = start
        item["current_period_end"] = add_interval(
            start, recurring["interval"], recurring["interval_count"]
        )
    return _draft_invoice(state, subscription, "subscription_cycle", free=False)


def _draft_invoice(
    state: DoubleState, subscription: StripeObject, reason: str, *, free: bool
) -> StripeObject:
    invoice_id = state.new_id("invoice")
    items = subscription["items"]["data"]
    lines = [
        objects.invoice_line(
            id=state.new_id("line_item"),
            invoice=invoice_id,
            item=item,
            amount=0 if free else (item["price"]["unit_amount"] or 0) * item["quantity"],
            period=(item["current_period_start"], item["current_period_end"]),
            livemode=subscription["livemode"],
        )
        for item in items
    ]
    period = (
        min(item["current_period_start"] for item in items),
        max(item["current_period_end"] for item in items),
    )
    invoice = objects.invoice(
        id=invoice_id,
        subscription=subscription,
        billing_reason=reason,
        created=state.clock.now,
        period=period,
        lines=lines,
    )
    customer = state.get("customer", subscription["customer"], param="customer")
    invoice.update(customer_email=customer["email"], customer_name=customer["name"])
    state.add("invoice", invoice)
    subscription["latest_invoice"] = invoice_id
    return invoice


def _announce_and_collect(state: DoubleState, invoice: StripeObject, *, succeed: bool) -> None:
    """invoice.created, then finalized, then the first payment attempt."""
    state.emit("invoice.created", invoice)
    now = state.clock.now
    customer = state.get("customer", invoice["customer"], param="customer")
    sequence = customer["next_invoice_sequence"]
    customer["next_invoice_sequence"] = sequence + 1
    invoice.update(
        status="open", effective_at=now, number=f"{customer['invoice_prefix']}-{sequence:04d}"
    )
    invoice["status_transitions"]["finalized_at"] = now
    state.emit("invoice.finalized", invoice)
    _attempt(state, invoice, succeed=succeed)


def _attempt(state: DoubleState, invoice: StripeObject, *, succeed: bool) -> None:
    now = state.clock.now
    if invoice["amount_due"] > 0:
        invoice.update(attempted=True, attempt_count=invoice["attempt_count"] + 1)
    if succeed:
        invoice.update(
            status="paid",
            amount_paid=invoice["amount_due"],
            amount_remaining=0,
            next_payment_attempt=None,
        )
        invoice["status_transitions"]["paid_at"] = now
        state.emit("invoice.paid", invoice)
        state.emit("invoice.payment_succeeded", invoice)
    else:
        invoice["next_payment_attempt"] = now + RETRY_DELAY
        state.emit("invoice.payment_failed", invoice)


def _open_invoice(state: DoubleState, subscription: StripeObject) -> StripeObject | None:
    latest = subscription["latest_invoice"]
    if latest is None:
        return None
    invoice = state.get("invoice", latest)
    return invoice if invoice["status"] == "open" else None


# --- helpers ------------------------------------------------------------------------------


@contextmanager
def announcing_update(state: DoubleState, subscription: StripeObject) -> Iterator[None]:
    """Emit `customer.subscription.updated` with `previous_attributes` if the block changed it."""
    before = copy.deepcopy(subscription)
    yield
    previous = changed_attributes(before, subscription)
    if previous:
        state.emit("customer.subscription.updated", subscription, previous)


def _cancellation(reason: str | None) -> StripeObject:
    return {"comment": None, "feedback": None, "reason": reason}
