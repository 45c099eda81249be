"""API operations on subscriptions and their items: create, update (plan change, cancel at period
end, metadata, ending a trial), cancel and list.
"""

import copy
from typing import Any

from stripe_double import billing, objects
from stripe_double.clock import SECONDS_PER_DAY, add_interval
from stripe_double.errors import parameter_invalid, parameter_missing, resource_missing
from stripe_double.forms import Params, as_bool, as_int, as_list, merge_metadata
from stripe_double.objects import StripeObject
from stripe_double.resources import matching, required
from stripe_double.state import DoubleState

# Stripe's list hides ended subscriptions unless asked for `status=all` or `canceled`.
HIDDEN_BY_DEFAULT = {"canceled", "incomplete_expired"}


def create_subscription(state: DoubleState, params: Params, *, livemode: bool) -> StripeObject:
    customer = state.get("customer", required(params, "customer"), param="customer")
    lines = [
        _price_and_quantity(state, entry, index)
        for index, entry in enumerate(as_list(required(params, "items")))
    ]
    subscription = billing.start_subscription(
        state,
        customer=customer,
        lines=lines,
        metadata=merge_metadata({}, params.get("metadata")),
        trial_end=_trial_end(state, params),
    )
    if as_bool(params.get("cancel_at_period_end", False)):
        billing.set_cancel_at_period_end(state, subscription, True)
    return subscription


def _price_and_quantity(state: DoubleState, entry: Any, index: int) -> tuple[StripeObject, int]:
    param = f"items[{index}][price]"
    if not isinstance(entry, dict) or not entry.get("price"):
        raise parameter_missing(param)
    price = state.get("price", entry["price"], param=param)
    return price, as_int(entry.get("quantity", 1), f"items[{index}][quantity]")


def _trial_end(state: DoubleState, params: Params) -> int | None:
    now = state.clock.now
    if params.get("trial_end") not in (None, "", "now"):
        trial_end = as_int(params["trial_end"], "trial_end")
        if trial_end <= now:
            raise parameter_invalid("trial_end", "trial_end must be in the future.")
        return trial_end
    if params.get("trial_period_days") not in (None, ""):
        days = as_int(params["trial_period_days"], "trial_period_days")
        return now + days * SECONDS_PER_DAY if days > 0 else None
    return None


def update_subscription(state: DoubleState, subscription_id: str, params: Params) -> StripeObject:
    subscription = billing.live_subscription(state, subscription_id)
    with billing.announcing_update(state, subscription):
        subscription["metadata"] = merge_metadata(subscription["metadata"], params.get("metadata"))
        if "cancel_at_period_end" in params:
            flag = as_bool(params["cancel_at_period_end"])
            billing.apply_cancel_at_period_end(state, subscription, flag)
        if "items" in params:
            for index, entry in enumerate(as_list(params["items"])):
                _change_item(state, subscription, entry, index)
        if params.get("trial_end") == "now" and subscription["status"] == "trialing":
            _end_trial(state, subscription)
    return subscription


def _change_item(state: DoubleState, subscription: StripeObject, entry: Any, index: int) -> None:
    """One `items[i]` entry: change an item's price/quantity, delete it, or add a new one."""
    if not isinstance(entry, dict):
        raise parameter_invalid(f"items[{index}]", "Invalid hash")
    items: list[StripeObject] = subscription["items"]["data"]
    if not entry.get("id"):
        price, quantity = _price_and_quantity(state, entry, index)
        items.append(_aligned_item(state, subscription, price, quantity))
        return
    item = next((item for item in items if item["id"] == entry["id"]), None)
    if item is None:
        raise resource_missing("subscription_item", str(entry["id"]), f"items[{index}][id]")
    if as_bool(entry.get("deleted", False)):
        if len(items) == 1:
            # Stripe keeps at least one item: ending a subscription is a cancellation.
            raise parameter_invalid(f"items[{index}][deleted]", "A subscription needs one item.")
        items.remove(item)
        state.mark_deleted(item["id"])
        return
    if entry.get("price"):
        price = state.get("price", entry["price"], param=f"items[{index}][price]")
        if not price["recurring"]:
            raise parameter_invalid(f"items[{index}][price]", "The price is not recurring.")
        item.update(price=copy.deepcopy(price), plan=objects.plan_from_price(price))
    if entry.get("quantity") not in (None, ""):
        item["quantity"] = as_int(entry["quantity"], f"items[{index}][quantity]")


def _aligned_item(
    state: DoubleState, subscription: StripeObject, price: StripeObject, quantity: int
) -> StripeObject:
    """A new item sharing the subscription's current period, as Stripe aligns added items."""
    first = subscription["items"]["data"][0]
    item = objects.subscription_item(
        id=state.new_id("subscription_item"),
        subscription=subscription["id"],
        price=price,
        quantity=quantity,
        created=state.clock.now,
        period=(first["current_period_start"], first["current_period_end"]),
    )
    return state.add("subscription_item", item)


def _end_trial(state: DoubleState, subscription: StripeObject) -> None:
    """`trial_end=now`: a new billing cycle starts at once and the subscription is active."""
    now = state.clock.now
    for item in subscription["items"]["data"]:
        recurring = item["price"]["recurring"]
        item["current_period_start"] = now
        item["current_period_end"] = add_interval(
            now, recurring["interval"], recurring["interval_count"]
        )
    subscription.update(status="active", trial_end=now, billing_cycle_anchor=now)
    billing.bill_current_period(state, subscription, "subscription_update")


def cancel_subscription(state: DoubleState, subscription_id: str) -> StripeObject:
    return billing.cancel(state, subscription_id)


def list_subscriptions(state: DoubleState, params: Params) -> list[StripeObject]:
    rows = matching(state.all("subscription"), params, {"customer": str})
    status = params.get("status")
    if status in (None, ""):
        rows = [row for row in rows if row["status"] not in HIDDEN_BY_DEFAULT]
    elif status != "all":
        rows = [row for row in rows if row["status"] == status]
    if price := params.get("price"):
        rows = [row for row in rows if any(i["price"]["id"] == price for i in row["items"]["data"])]
    return rows


def list_items(state: DoubleState, params: Params) -> list[StripeObject]:
    subscription = state.get("subscription", required(params, "subscription"), param="subscription")
    return list(subscription["items"]["data"])
