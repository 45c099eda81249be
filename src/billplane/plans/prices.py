"""What Stripe says of a plan's price, and whether that price can back a subscription plan.

The lookup asks Stripe (outside any transaction); the verdict is a pure function of what Stripe
said and the currencies of the project's other plans. A plan is saved whatever the verdict: an
operator may set up plans before Stripe, or while it is unreachable, and sees why not here.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Required, TypedDict

from billplane.errors import StripeUnavailable
from billplane.stripe.errors import StripeRejected
from billplane.stripe.facts import PriceFacts
from billplane.stripe.gateway import NOT_CONFIGURED, StripeGateway


@dataclass(frozen=True)
class PriceLookup:
    price_id: str
    checked_at: datetime
    price: PriceFacts | None = None  # None: Stripe has no such price
    unchecked: str | None = None  # why Stripe could not be asked


def look_up(stripe: StripeGateway, price_id: str, now: datetime) -> PriceLookup:
    if not stripe.configured:
        return PriceLookup(price_id, now, unchecked=NOT_CONFIGURED)
    try:
        return PriceLookup(price_id, now, price=stripe.find_price(price_id))
    except (StripeUnavailable, StripeRejected) as exc:
        return PriceLookup(price_id, now, unchecked=exc.message)


class PriceVerdict(TypedDict, total=False):
    """Stripe's word on a plan's price, stored with the plan (JSON) and shown as its `stripe`."""

    checked: Required[bool]  # False: Stripe could not be asked; `reason` says why
    checked_at: str
    found: bool
    active: bool
    type: str  # recurring | one_time
    amount: int | None  # minor units
    currency: str
    interval: str | None
    interval_count: int | None
    livemode: bool
    usable: bool
    reason: str | None


def verdict(
    lookup: PriceLookup, other_currencies: Iterable[str], *, stripe_mode: str
) -> PriceVerdict:
    """The plan's `stripe` field: found/active/amount/currency/interval, `usable`, and the
    reason when it is not."""
    if lookup.unchecked is not None:
        return {"checked": False, "reason": lookup.unchecked}
    checked_at = lookup.checked_at.isoformat()
    price = lookup.price
    if price is None:
        return {
            "checked": True,
            "checked_at": checked_at,
            "found": False,
            "usable": False,
            "reason": f"Stripe ({stripe_mode} mode) has no price '{lookup.price_id}'.",
        }
    return {
        "checked": True,
        "checked_at": checked_at,
        "found": True,
        "active": price.active,
        "type": price.type,
        "amount": price.amount,
        "currency": price.currency,
        "interval": price.interval,
        "interval_count": price.interval_count,
        "livemode": price.livemode,
        "usable": (reason := _why_unusable(price, set(other_currencies))) is None,
        "reason": reason,
    }


def _why_unusable(price: PriceFacts, other_currencies: set[str]) -> str | None:
    if not price.active:
        return "The price is archived (inactive) in Stripe, so Checkout refuses it."
    if price.type != "recurring" or price.interval is None:
        return "The price is one-time; a plan needs a recurring price to subscribe to."
    if other_currencies and price.currency not in other_currencies:
        others = ", ".join(sorted(c.upper() for c in other_currencies))
        return (
            f"The price is in {price.currency.upper()}, but the project's other plans are in "
            f"{others}: a customer cannot switch between currencies in the portal."
        )
    return None


def currency_of(stored: Mapping[str, Any] | None) -> str | None:
    """The currency of a plan's stored verdict, when Stripe confirmed the price."""
    if stored and stored.get("found") and stored.get("currency"):
        return str(stored["currency"])
    return None
