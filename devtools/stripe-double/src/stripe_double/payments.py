"""One-time payments: the PaymentIntent and Charge a payment-mode Checkout makes, and refunds.

A refund moves the charge's `amount_refunded` (the total of its refunds so far) and `refunded`
(all of it given back), and Stripe announces it as `refund.created` and `charge.refunded`, the
latter carrying the charge as it is after the refund. Callers hold `state.lock`.
"""

import copy

from stripe_double import objects
from stripe_double.errors import StripeError, parameter_invalid, parameter_missing
from stripe_double.forms import Params, as_int, merge_metadata
from stripe_double.objects import StripeObject
from stripe_double.resources import matching
from stripe_double.state import DoubleState, changed_attributes

REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def pay(
    state: DoubleState,
    *,
    customer: str | None,
    amount: int,
    currency: str,
    livemode: bool,
    metadata: dict[str, str] | None = None,
) -> StripeObject:
    """A PaymentIntent paid at once by card, and its charge; returns the PaymentIntent."""
    now = state.clock.now
    intent_id = state.new_id("payment_intent")
    charge_id = state.new_id("charge")
    charge = objects.charge(
        id=charge_id,
        amount=amount,
        currency=currency,
        customer=customer,
        payment_intent=intent_id,
        created=now,
        livemode=livemode,
    )
    intent = objects.payment_intent(
        id=intent_id,
        amount=amount,
        currency=currency,
        customer=customer,
        latest_charge=charge_id,
        created=now,
        livemode=livemode,
    )
    intent["metadata"] = dict(metadata or {})
    state.add("charge", charge)
    state.add("payment_intent", intent)
    state.emit("charge.succeeded", charge)
    state.emit("payment_intent.succeeded", intent)
    return intent


def create_refund(state: DoubleState, params: Params, *, livemode: bool) -> StripeObject:
    """`POST /v1/refunds`: all that is left of the charge (or PaymentIntent), or `amount`."""
    charge = _refunded_charge(state, params)
    left = charge["amount"] - charge["amount_refunded"]
    if left <= 0:
        raise StripeError(
            f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
        )
    amount = as_int(params["amount"], "amount") if params.get("amount") else left
    if amount <= 0:
        raise parameter_invalid("amount", "Refund amount must be positive.")
    if amount > left:
        raise StripeError(
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left}).",
            code="amount_too_large",
            param="amount",
        )
    reason = params.get("reason") or None
    if reason is not None and reason not in REFUND_REASONS:
        raise parameter_invalid("reason", f"Invalid reason: must be one of {REFUND_REASONS}")
    refund = objects.refund(
        id=state.new_id("refund"),
        amount=amount,
        charge=charge,
        created=state.clock.now,
        reason=reason,
    )
    refund["metadata"] = merge_metadata({}, params.get("metadata"))
    state.add("refund", refund)
    before = copy.deepcopy(charge)
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
    charge["refunds"]["data"].insert(0, copy.deepcopy(refund))
    state.emit("refund.created", refund)
    state.emit("charge.refunded", charge, changed_attributes(before, charge))
    return refund


def _refunded_charge(state: DoubleState, params: Params) -> StripeObject:
    if params.get("charge"):
        return state.get("charge", params["charge"], param="charge")
    if params.get("payment_intent"):
        intent = state.get("payment_intent", params["payment_intent"], param="payment_intent")
        if not intent["latest_charge"]:
            raise parameter_invalid("payment_intent", "This PaymentIntent has no charge.")
        return state.get("charge", intent["latest_charge"], param="payment_intent")
    raise parameter_missing("charge")


def list_charges(state: DoubleState, params: Params) -> list[StripeObject]:
    return matching(state.all("charge"), params, {"customer": str, "payment_intent": str})


def list_payment_intents(state: DoubleState, params: Params) -> list[StripeObject]:
    return matching(state.all("payment_intent"), params, {"customer": str})


def list_refunds(state: DoubleState, params: Params) -> list[StripeObject]:
    return matching(state.all("refund"), params, {"charge": str, "payment_intent": str})
