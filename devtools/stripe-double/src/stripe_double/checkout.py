"""Checkout and customer-portal sessions: creating them from API params and completing checkout.

The hosted pages Stripe would show live on the double itself (`/_double/checkout/<id>`), so a
browser test can "pay" and be sent back to `success_url`.
"""

from stripe_double import billing, objects, payments
from stripe_double.clock import SECONDS_PER_DAY
from stripe_double.errors import StripeError, parameter_invalid, parameter_missing
from stripe_double.forms import Params, as_int, as_list, merge_metadata
from stripe_double.objects import StripeObject
from stripe_double.state import DoubleState

MODES = ("payment", "setup", "subscription")


def create_session(state: DoubleState, params: Params, *, livemode: bool) -> StripeObject:
    mode = params.get("mode")
    if mode not in MODES:
        raise (
            parameter_missing("mode")
            if mode is None
            else parameter_invalid("mode", f"Invalid mode: must be one of {', '.join(MODES)}")
        )
    if not params.get("success_url") and params.get("ui_mode", "hosted") == "hosted":
        raise parameter_missing("success_url")
    customer_id = params.get("customer")
    if customer_id:
        state.get("customer", customer_id, param="customer")
    session_id = state.new_id("checkout.session", livemode=livemode)
    lines = _line_items(state, session_id, params, mode)
    session = objects.checkout_session(
        id=session_id,
        mode=mode,
        created=state.clock.now,
        livemode=livemode,
        url=f"{state.base_url}/_double/checkout/{session_id}",
        currency=lines[0]["currency"] if lines else None,
    )
    total = sum(line["amount_total"] for line in lines)
    session.update(
        customer=customer_id or None,
        customer_email=params.get("customer_email") or None,
        client_reference_id=params.get("client_reference_id") or None,
        metadata=merge_metadata({}, params.get("metadata")),
        success_url=params.get("success_url"),
        cancel_url=params.get("cancel_url"),
        amount_subtotal=total,
        amount_total=total,
        customer_creation=None if customer_id or mode == "subscription" else "if_required",
    )
    state.add("checkout.session", session)
    state.checkout_lines[session_id] = lines
    state.checkout_subscription_data[session_id] = _subscription_data(params, mode)
    return session


def _line_items(
    state: DoubleState, session_id: str, params: Params, mode: str
) -> list[StripeObject]:
    raw = as_list(params.get("line_items"))
    if mode != "setup" and not raw:
        raise parameter_missing("line_items")
    lines = []
    for index, entry in enumerate(raw):
        param = f"line_items[{index}][price]"
        if not isinstance(entry, dict) or not entry.get("price"):
            raise parameter_missing(param)
        price = state.get("price", entry["price"], param=param)
        if not price["active"]:
            raise parameter_invalid(param, f"The price {price['id']} is not active.")
        if mode == "payment" and price["type"] == "recurring":
            raise parameter_invalid(param, "Recurring prices need mode=subscription.")
        quantity = as_int(entry.get("quantity", 1), f"line_items[{index}][quantity]")
        product = state.get("product", price["product"], param=param)
        lines.append(
            objects.checkout_line_item(
                id=state.new_id("item"), price=price, quantity=quantity, description=product["name"]
            )
        )
    if mode == "subscription" and not any(line["price"]["type"] == "recurring" for line in lines):
        raise parameter_invalid("line_items", "Subscription mode needs a recurring price.")
    return lines


def _subscription_data(params: Params, mode: str) -> Params:
    data = params.get("subscription_data") or {}
    if data and mode != "subscription":
        raise parameter_invalid("subscription_data", "subscription_data needs mode=subscription")
    trial_days = data.get("trial_period_days")
    return {
        "metadata": merge_metadata({}, data.get("metadata")),
        "trial_period_days": None
        if trial_days in (None, "")
        else as_int(trial_days, "subscription_data[trial_period_days]"),
    }


def complete(state: DoubleState, session_id: str, *, email: str | None = None) -> StripeObject:
    """The customer pays: customer (if new), subscription and its first invoice (subscription
    mode) or a PaymentIntent and its charge (payment mode), then the session."""
    session = state.get("checkout.session", session_id)
    if session["status"] != "open":
        raise StripeError(f"Checkout session {session_id} is {session['status']}, not open.")
    customer = _paying_customer(state, session, email)
    subscription = None
    if session["mode"] == "subscription":
        subscription = _subscribe(state, session, customer)
    invoice = state.get("invoice", subscription["latest_invoice"]) if subscription else None
    intent = None
    if session["mode"] == "payment":
        intent = payments.pay(
            state,
            customer=customer["id"],
            amount=session["amount_total"] or 0,
            currency=session["currency"] or "usd",
            livemode=session["livemode"],
        )
    session.update(
        status="complete",
        url=None,
        customer=customer["id"],
        subscription=subscription["id"] if subscription else None,
        invoice=invoice["id"] if invoice else None,
        payment_intent=intent["id"] if intent else None,
        payment_status=_payment_status(session, invoice),
        customer_details={
            "address": None,
            "email": customer["email"],
            "name": customer["name"],
            "phone": customer["phone"],
            "tax_exempt": customer["tax_exempt"],
            "tax_ids": [],
            "business_name": None,
            "individual_name": None,
        },
    )
    state.emit("checkout.session.completed", session)
    return session


def _paying_customer(state: DoubleState, session: StripeObject, email: str | None) -> StripeObject:
    if session["customer"]:
        return state.get("customer", session["customer"], param="customer")
    return billing.new_customer(
        state,
        livemode=session["livemode"],
        email=email or session["customer_email"] or f"{session['id'][-8:].lower()}@example.com",
    )


def _subscribe(state: DoubleState, session: StripeObject, customer: StripeObject) -> StripeObject:
    data = state.checkout_subscription_data[session["id"]]
    trial_days = data["trial_period_days"]
    trial_end = None if trial_days is None else state.clock.now + trial_days * SECONDS_PER_DAY
    lines = [
        (state.get("price", line["price"]["id"]), line["quantity"])
        for line in state.checkout_lines[session["id"]]
        if line["price"]["type"] == "recurring"
    ]
    return billing.start_subscription(
        state, customer=customer, lines=lines, metadata=data["metadata"], trial_end=trial_end
    )


def _payment_status(session: StripeObject, invoice: StripeObject | None) -> str:
    if session["mode"] == "setup" or (invoice is not None and invoice["amount_due"] == 0):
        return "no_payment_required"
    return "paid"


def expire(state: DoubleState, session_id: str) -> StripeObject:
    session = state.get("checkout.session", session_id)
    if session["status"] != "open":
        raise StripeError(f"Checkout session {session_id} is {session['status']}, not open.")
    session["status"] = "expired"
    session["url"] = None
    state.emit("checkout.session.expired", session)
    return session


def line_items(state: DoubleState, session_id: str) -> list[StripeObject]:
    state.get("checkout.session", session_id)
    return state.checkout_lines[session_id]


def create_portal_session(state: DoubleState, params: Params, *, livemode: bool) -> StripeObject:
    customer_id = params.get("customer")
    if not customer_id:
        raise parameter_missing("customer")
    state.get("customer", customer_id, param="customer")
    session_id = state.new_id("billing_portal.session")
    session = objects.portal_session(
        id=session_id,
        customer=customer_id,
        created=state.clock.now,
        livemode=livemode,
        return_url=params.get("return_url"),
        url=f"{state.base_url}/_double/portal/{session_id}",
    )
    if params.get("configuration"):
        session["configuration"] = params["configuration"]
    state.add("billing_portal.session", session)
    return session
