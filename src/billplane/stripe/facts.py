"""What billplane knows of Stripe objects, in its own terms: plain frozen dataclasses.

Built from Stripe's JSON (an API answer or a webhook payload) by the `*_from` functions, which
accept today's shapes and the older ones (`localstripe`, events from older API versions).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from billplane.errors import InvalidInput

# Subscriptions Stripe still keeps going (or may still charge): a tenant has at most one.
ENDED_STATUSES = frozenset({"canceled", "incomplete_expired"})
# The metadata keys billplane writes on what it creates in Stripe, to find its tenant again.
PROJECT_KEY = "billplane_project"
TENANT_KEY = "billplane_tenant"
# On a top-up's checkout session: the one-time price it sells (a pack of credits).
TOPUP_PRICE_KEY = "billplane_topup_price"

Json = Mapping[str, Any]


@dataclass(frozen=True)
class PriceFacts:
    id: str
    active: bool
    type: str  # recurring | one_time
    amount: int | None
    currency: str
    interval: str | None
    interval_count: int | None
    livemode: bool


@dataclass(frozen=True)
class CustomerFacts:
    id: str
    deleted: bool
    email: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SubscriptionFacts:
    id: str
    customer: str
    status: str
    price_ids: tuple[str, ...]
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    trial_end: datetime | None
    canceled_at: datetime | None
    created: datetime | None
    livemode: bool
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.status not in ENDED_STATUSES


@dataclass(frozen=True)
class CheckoutSessionFacts:
    id: str
    url: str | None
    status: str | None  # open | complete | expired
    mode: str | None
    customer: str | None
    subscription: str | None
    client_reference_id: str | None
    livemode: bool
    metadata: dict[str, str] = field(default_factory=dict)
    payment_status: str | None = None  # paid | unpaid | no_payment_required
    # Payment mode: what paid for it, and how much (minor units of `currency`).
    payment_intent: str | None = None
    amount_total: int | None = None
    currency: str | None = None


@dataclass(frozen=True)
class ChargeFacts:
    """A charge as Stripe has it now: `amount_refunded` is the total of its refunds so far."""

    id: str
    customer: str | None
    payment_intent: str | None
    amount: int
    amount_refunded: int
    refunded: bool
    currency: str
    livemode: bool


@dataclass(frozen=True)
class InvoiceFacts:
    id: str
    customer: str | None
    subscription: str | None
    status: str
    number: str | None
    currency: str
    amount_due: int
    amount_paid: int
    amount_remaining: int
    billing_reason: str | None
    attempt_count: int
    period_start: datetime | None
    period_end: datetime | None
    hosted_invoice_url: str | None
    created: datetime | None
    livemode: bool


@dataclass(frozen=True)
class WebhookEndpointFacts:
    id: str
    url: str
    enabled: bool
    enabled_events: tuple[str, ...]


@dataclass(frozen=True)
class EventFacts:
    """A verified webhook event: its envelope and the object it carries."""

    id: str
    type: str
    created: datetime | None
    livemode: bool
    object: dict[str, Any]
    payload: dict[str, Any]


def moment(value: Any) -> datetime | None:
    """A Stripe timestamp (unix seconds) as an aware UTC datetime."""
    if value is None or isinstance(value, bool):
        return None
    return datetime.fromtimestamp(int(value), UTC)


def _id(value: Any) -> str | None:
    """An id, whether Stripe sent it bare or expanded into its object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return str(value) if value else None


def _metadata(obj: Json) -> dict[str, str]:
    return {str(k): str(v) for k, v in (obj.get("metadata") or {}).items()}


def price_from(obj: Json) -> PriceFacts:
    recurring = obj.get("recurring")
    if "recurring" not in obj and obj.get("object") == "plan":
        # A legacy plan (localstripe, old accounts) is always a recurring price.
        recurring = {"interval": obj.get("interval"), "interval_count": obj.get("interval_count")}
    recurring = recurring or {}
    return PriceFacts(
        id=str(obj["id"]),
        active=bool(obj.get("active", True)),
        type=str(obj.get("type") or ("recurring" if recurring else "one_time")),
        amount=obj.get("unit_amount", obj.get("amount")),
        currency=str(obj.get("currency") or "").lower(),
        interval=recurring.get("interval"),
        interval_count=recurring.get("interval_count"),
        livemode=bool(obj.get("livemode", False)),
    )


def customer_from(obj: Json) -> CustomerFacts:
    return CustomerFacts(
        id=str(obj["id"]),
        deleted=bool(obj.get("deleted", False)),
        email=obj.get("email"),
        metadata=_metadata(obj),
    )


def _item_price(item: Json) -> str | None:
    # Today's items carry `price`; older ones (and localstripe) only the mirrored `plan`.
    return _id(item.get("price")) or _id(item.get("plan"))


def subscription_from(obj: Json) -> SubscriptionFacts:
    items = list((obj.get("items") or {}).get("data") or [])
    starts = [moment(i.get("current_period_start")) for i in items]
    ends = [moment(i.get("current_period_end")) for i in items]
    # Today's API keeps the period on the items; older payloads on the subscription itself.
    start = min((s for s in starts if s), default=moment(obj.get("current_period_start")))
    end = max((e for e in ends if e), default=moment(obj.get("current_period_end")))
    prices = tuple(p for p in (_item_price(i) for i in items) if p)
    if not prices and (legacy := _id(obj.get("plan"))):
        prices = (legacy,)
    return SubscriptionFacts(
        id=str(obj["id"]),
        customer=_id(obj.get("customer")) or "",
        status=str(obj.get("status") or "incomplete"),
        price_ids=prices,
        current_period_start=start,
        current_period_end=end,
        cancel_at_period_end=bool(obj.get("cancel_at_period_end", False)),
        trial_end=moment(obj.get("trial_end")),
        canceled_at=moment(obj.get("canceled_at")),
        created=moment(obj.get("created")),
        livemode=bool(obj.get("livemode", False)),
        metadata=_metadata(obj),
    )


def checkout_session_from(obj: Json) -> CheckoutSessionFacts:
    return CheckoutSessionFacts(
        id=str(obj["id"]),
        url=obj.get("url"),
        status=obj.get("status"),
        mode=obj.get("mode"),
        customer=_id(obj.get("customer")),
        subscription=_id(obj.get("subscription")),
        client_reference_id=obj.get("client_reference_id"),
        livemode=bool(obj.get("livemode", False)),
        metadata=_metadata(obj),
        payment_status=obj.get("payment_status"),
        payment_intent=_id(obj.get("payment_intent")),
        amount_total=None if obj.get("amount_total") is None else int(obj["amount_total"]),
        currency=str(obj["currency"]).lower() if obj.get("currency") else None,
    )


def charge_from(obj: Json) -> ChargeFacts:
    return ChargeFacts(
        id=str(obj["id"]),
        customer=_id(obj.get("customer")),
        payment_intent=_id(obj.get("payment_intent")),
        amount=int(obj.get("amount") or 0),
        amount_refunded=int(obj.get("amount_refunded") or 0),
        refunded=bool(obj.get("refunded", False)),
        currency=str(obj.get("currency") or "").lower(),
        livemode=bool(obj.get("livemode", False)),
    )


def invoice_subscription(obj: Json) -> str | None:
    """Today's invoices name their subscription under `parent`; older ones at the top level."""
    parent = obj.get("parent") or {}
    details = parent.get("subscription_details") or {}
    return _id(details.get("subscription")) or _id(obj.get("subscription"))


def invoice_from(obj: Json) -> InvoiceFacts:
    return InvoiceFacts(
        id=str(obj["id"]),
        customer=_id(obj.get("customer")),
        subscription=invoice_subscription(obj),
        status=str(obj.get("status") or "draft"),
        number=obj.get("number"),
        currency=str(obj.get("currency") or "").lower(),
        amount_due=int(obj.get("amount_due") or 0),
        amount_paid=int(obj.get("amount_paid") or 0),
        amount_remaining=int(obj.get("amount_remaining") or 0),
        billing_reason=obj.get("billing_reason"),
        attempt_count=int(obj.get("attempt_count") or 0),
        period_start=moment(obj.get("period_start")),
        period_end=moment(obj.get("period_end")),
        hosted_invoice_url=obj.get("hosted_invoice_url"),
        created=moment(obj.get("created")),
        livemode=bool(obj.get("livemode", False)),
    )


def webhook_endpoint_from(obj: Json) -> WebhookEndpointFacts:
    return WebhookEndpointFacts(
        id=str(obj["id"]),
        url=str(obj.get("url") or ""),
        enabled=obj.get("status", "enabled") == "enabled",
        enabled_events=tuple(str(e) for e in obj.get("enabled_events") or ()),
    )


def event_from(payload: Any) -> EventFacts:
    """The envelope of a webhook payload; a body that is not a Stripe event is bad input."""
    if not isinstance(payload, Mapping) or payload.get("object") != "event":
        raise InvalidInput("The body is not a Stripe event.")
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not payload.get("id") or not payload.get("type") or not isinstance(obj, Mapping):
        raise InvalidInput("The Stripe event has no id, type or data.object.")
    return EventFacts(
        id=str(payload["id"]),
        type=str(payload["type"]),
        created=moment(payload.get("created")),
        livemode=bool(payload.get("livemode", False)),
        object=dict(obj),
        payload=dict(payload),
    )


def claimed_tenant(metadata: Mapping[str, str]) -> tuple[str, str] | None:
    """The (project, tenant) keys billplane wrote on an object it created, if it did."""
    project, tenant = metadata.get(PROJECT_KEY), metadata.get(TENANT_KEY)
    return (project, tenant) if project and tenant else None
