"""Builders of Stripe-shaped objects: a blank template with the fields that mean something set.

Builders only shape data; the rules (which status, which period, what is billed) live in
`billing.py` and `resources.py`.
"""

import copy
from typing import Any

from stripe_double.templates import TEMPLATES, blank

StripeObject = dict[str, Any]

# Checkout sessions left open expire after a day, as Stripe's default.
CHECKOUT_LIFETIME = 24 * 3600


def list_object(data: list[StripeObject], url: str, *, has_more: bool = False) -> StripeObject:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def deleted(resource: str, object_id: str) -> StripeObject:
    """What Stripe answers for a deleted object: `{"id", "object", "deleted": true}`."""
    if f"deleted_{resource}" not in TEMPLATES:
        return {"deleted": True, "id": object_id, "object": resource}
    stub = blank(f"deleted_{resource}")
    stub["id"] = object_id
    return stub


def product(
    *, id: str, name: str, created: int, livemode: bool, description: str | None = None
) -> StripeObject:
    obj = blank("product")
    obj.update(id=id, name=name, created=created, updated=created, livemode=livemode)
    obj["description"] = description
    return obj


def recurring(interval: str, interval_count: int = 1) -> StripeObject:
    return {
        "interval": interval,
        "interval_count": interval_count,
        "meter": None,
        "trial_period_days": None,
        "usage_type": "licensed",
    }


def price(
    *,
    id: str,
    product: str,
    currency: str,
    unit_amount: int,
    recurring: StripeObject | None,
    created: int,
    livemode: bool,
) -> StripeObject:
    obj = blank("price")
    obj.update(
        id=id,
        product=product,
        currency=currency,
        unit_amount=unit_amount,
        unit_amount_decimal=str(unit_amount),
        recurring=recurring,
        type="recurring" if recurring else "one_time",
        created=created,
        livemode=livemode,
    )
    return obj


def plan_from_price(price: StripeObject) -> StripeObject:
    """The legacy `plan` Stripe still mirrors on subscription items from a recurring price."""
    obj = blank("plan")
    recurring = price["recurring"] or {}
    obj.update(
        id=price["id"],
        active=price["active"],
        amount=price["unit_amount"],
        amount_decimal=price["unit_amount_decimal"],
        created=price["created"],
        currency=price["currency"],
        interval=recurring.get("interval", "month"),
        interval_count=recurring.get("interval_count", 1),
        livemode=price["livemode"],
        metadata=dict(price["metadata"]),
        nickname=price["nickname"],
        product=price["product"],
    )
    return obj


def customer(*, id: str, created: int, livemode: bool, invoice_prefix: str) -> StripeObject:
    obj = blank("customer")
    obj.update(id=id, created=created, livemode=livemode, invoice_prefix=invoice_prefix)
    return obj


def subscription_item(
    *,
    id: str,
    subscription: str,
    price: StripeObject,
    quantity: int,
    created: int,
    period: tuple[int, int],
) -> StripeObject:
    obj = blank("subscription_item")
    obj.update(
        id=id,
        subscription=subscription,
        price=copy.deepcopy(price),
        plan=plan_from_price(price),
        quantity=quantity,
        created=created,
        current_period_start=period[0],
        current_period_end=period[1],
    )
    return obj


def subscription(
    *,
    id: str,
    customer: str,
    items: list[StripeObject],
    created: int,
    livemode: bool,
    currency: str,
) -> StripeObject:
    obj = blank("subscription")
    obj.update(
        id=id,
        customer=customer,
        created=created,
        start_date=created,
        billing_cycle_anchor=created,
        livemode=livemode,
        currency=currency,
        items=list_object(items, f"/v1/subscription_items?subscription={id}"),
    )
    return obj


def checkout_session(
    *, id: str, mode: str, created: int, livemode: bool, url: str, currency: str | None
) -> StripeObject:
    obj = blank("checkout.session")
    obj.update(
        id=id,
        mode=mode,
        created=created,
        expires_at=created + CHECKOUT_LIFETIME,
        livemode=livemode,
        url=url,
        currency=currency,
    )
    return obj


def checkout_line_item(
    *, id: str, price: StripeObject, quantity: int, description: str
) -> StripeObject:
    obj = blank("item")
    amount = (price["unit_amount"] or 0) * quantity
    obj.update(
        id=id,
        price=copy.deepcopy(price),
        quantity=quantity,
        currency=price["currency"],
        description=description,
        amount_subtotal=amount,
        amount_total=amount,
    )
    return obj


def payment_intent(
    *,
    id: str,
    amount: int,
    currency: str,
    customer: str | None,
    latest_charge: str,
    created: int,
    livemode: bool,
) -> StripeObject:
    """A PaymentIntent paid in full by its one charge."""
    obj = blank("payment_intent")
    obj.update(
        id=id,
        amount=amount,
        amount_received=amount,
        currency=currency,
        customer=customer,
        latest_charge=latest_charge,
        created=created,
        livemode=livemode,
        client_secret=f"{id}_secret_double",
        status="succeeded",
    )
    return obj


def charge(
    *,
    id: str,
    amount: int,
    currency: str,
    customer: str | None,
    payment_intent: str,
    created: int,
    livemode: bool,
) -> StripeObject:
    """A card charge captured in full."""
    obj = blank("charge")
    obj.update(
        id=id,
        amount=amount,
        amount_captured=amount,
        captured=True,
        paid=True,
        status="succeeded",
        currency=currency,
        customer=customer,
        payment_intent=payment_intent,
        created=created,
        livemode=livemode,
        calculated_statement_descriptor="BILLPLANE DOUBLE",
        outcome={
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "seller_message": "Payment complete.",
            "type": "authorized",
        },
    )
    obj["refunds"] = list_object([], f"/v1/charges/{id}/refunds")
    return obj


def refund(
    *, id: str, amount: int, charge: StripeObject, created: int, reason: str | None
) -> StripeObject:
    """A refund of `amount` of `charge`, succeeded at once (as card refunds are, in test mode)."""
    obj = blank("refund")
    obj.update(
        id=id,
        amount=amount,
        charge=charge["id"],
        payment_intent=charge["payment_intent"],
        currency=charge["currency"],
        created=created,
        reason=reason,
        status="succeeded",
    )
    return obj


def portal_session(
    *, id: str, customer: str, created: int, livemode: bool, return_url: str | None, url: str
) -> StripeObject:
    obj = blank("billing_portal.session")
    obj.update(
        id=id, customer=customer, created=created, livemode=livemode, return_url=return_url, url=url
    )
    return obj


def invoice(
    *,
    id: str,
    subscription: StripeObject,
    billing_reason: str,
    created: int,
    period: tuple[int, int],
    lines: list[StripeObject],
) -> StripeObject:
    """A draft invoice for `subscription`; billing.py finalizes, pays or fails it."""
    obj = blank("invoice")
    total = sum(line["amount"] for line in lines)
    obj.update(
        id=id,
        customer=subscription["customer"],
        currency=subscription["currency"],
        livemode=subscription["livemode"],
        billing_reason=billing_reason,
        created=created,
        period_start=period[0],
        period_end=period[1],
        amount_due=total,
        amount_remaining=total,
        subtotal=total,
        subtotal_excluding_tax=total,
        total=total,
        total_excluding_tax=total,
        lines=list_object(lines, f"/v1/invoices/{id}/lines"),
        # Today's API names the subscription here, not in a top-level `subscription` field.
        parent={
            "quote_details": None,
            "subscription_details": {
                "metadata": dict(subscription["metadata"]),
                "subscription": subscription["id"],
            },
            "type": "subscription_details",
        },
    )
    return obj


def invoice_line(
    *,
    id: str,
    invoice: str,
    item: StripeObject,
    amount: int,
    period: tuple[int, int],
    livemode: bool,
) -> StripeObject:
    obj = blank("line_item")
    price = item["price"]
    obj.update(
        id=id,
        invoice=invoice,
        amount=amount,
        subtotal=amount,
        currency=price["currency"],
        description=f"{item['quantity']} x {price['product']}",
        quantity=item["quantity"],
        livemode=livemode,
        period={"start": period[0], "end": period[1]},
        parent={
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": item["subscription"],
                "subscription_item": item["id"],
            },
            "type": "subscription_item_details",
        },
        pricing={
            "price_details": {"price": price["id"], "product": price["product"]},
            "type": "price_details",
            "unit_amount_decimal": price["unit_amount_decimal"],
        },
    )
    return obj


def event(
    *,
    id: str,
    type: str,
    created: int,
    livemode: bool,
    api_version: str,
    snapshot: StripeObject,
    previous_attributes: StripeObject | None,
    request_id: str | None,
    idempotency_key: str | None,
) -> StripeObject:
    obj = blank("event")
    data: StripeObject = {"object": snapshot}
    if previous_attributes:
        data["previous_attributes"] = previous_attributes
    obj.update(
        id=id,
        type=type,
        created=created,
        livemode=livemode,
        api_version=api_version,
        data=data,
        request={"id": request_id, "idempotency_key": idempotency_key},
    )
    return obj


def webhook_endpoint(
    *,
    id: str,
    url: str,
    enabled_events: list[str],
    created: int,
    livemode: bool,
    api_version: str | None,
    description: str | None,
) -> StripeObject:
    obj = blank("webhook_endpoint")
    obj.update(
        id=id,
        url=url,
        enabled_events=enabled_events,
        created=created,
        livemode=livemode,
        api_version=api_version,
        description=description,
    )
    return obj
