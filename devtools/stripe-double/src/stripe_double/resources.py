"""API operations on products, prices, customers, invoices, webhook endpoints and events.

Each takes the decoded params, validates them as Stripe does (missing or unknown → 400/404)
and returns the stored object; the routes in `app.py` render it.
"""

import copy
from collections.abc import Callable
from typing import Any

from stripe_double import billing, objects
from stripe_double.errors import StripeError, parameter_invalid, parameter_missing
from stripe_double.forms import Params, as_bool, as_int, as_list, merge_metadata
from stripe_double.objects import StripeObject
from stripe_double.state import DoubleState, changed_attributes, new_id

INTERVALS = ("day", "week", "month", "year")


def required(params: Params, name: str) -> Any:
    value = params.get(name)
    if value in (None, ""):
        raise parameter_missing(name)
    return value


def matching(
    rows: list[StripeObject], params: Params, fields: dict[str, Callable[[Any], Any]]
) -> list[StripeObject]:
    """Rows whose fields equal the filters present in params (each coerced by its function)."""
    for field, coerce in fields.items():
        if params.get(field) not in (None, ""):
            wanted = coerce(params[field])
            rows = [row for row in rows if row.get(field) == wanted]
    return rows


def _update(
    state: DoubleState,
    kind: str,
    obj: StripeObject,
    params: Params,
    fields: dict[str, Callable[[Any], Any]],
) -> StripeObject:
    """Apply simple fields and metadata; announce `<kind>.updated` if anything changed."""
    before = copy.deepcopy(obj)
    for field, coerce in fields.items():
        if field in params:
            obj[field] = None if params[field] == "" else coerce(params[field])
    obj["metadata"] = merge_metadata(obj["metadata"], params.get("metadata"))
    previous = changed_attributes(before, obj)
    if previous:
        if "updated" in obj:
            obj["updated"] = state.clock.now
        state.emit(f"{kind}.updated", obj, previous)
    return obj


# --- products and prices --------------------------------------------------------------------

PRODUCT_FIELDS: dict[str, Callable[[Any], Any]] = {
    "name": str,
    "description": str,
    "active": as_bool,
    "default_price": str,
    "unit_label": str,
}


def create_product(state: DoubleState, params: Params, *, livemode: bool) -> StripeObject:
    product_id = str(params.get("id") or state.new_id("product"))
    if state.find(product_id) is not None:
        raise StripeError(
            f"Product already exists: {product_id}", code="resource_already_exists", param="id"
        )
    product = objects.product(
        id=product_id,
        name=str(required(params, "name")),
        created=state.clock.now,
        livemode=livemode,
    )
    state.add("product", product)
    _update_silently(product, params, PRODUCT_FIELDS)
    state.emit("product.created", product)
    return product


def update_product(state: DoubleState, product_id: str, params: Params) -> StripeObject:
    product = state.get("product", product_id)
    if params.get("default_price"):
        state.get("price", params["default_price"], param="default_price")
    return _update(state, "product", product, params, PRODUCT_FIELDS)


def delete_product(state: DoubleState, product_id: str) -> StripeObject:
    product = state.get("product", product_id)
    if any(price["product"] == product_id for price in state.all("price")):
        raise StripeError(
            "This product cannot be deleted because it has one or more user-created prices."
        )
    state.mark_deleted(product_id)
    state.emit("product.deleted", product)
    return objects.deleted("product", product_id)


def list_products(state: DoubleState, params: Params) -> list[StripeObject]:
    return matching(state.all("product"), params, {"active": as_bool})


PRICE_FIELDS: dict[str, Callable[[Any], Any]] = {
    "active": as_bool,
    "nickname": str,
    "lookup_key": str,
}


def create_price(state: DoubleState, params: Params, *, livemode: bool) -> StripeObject:
    currency = str(required(params, "currency")).lower()
    unit_amount = as_int(required(params, "unit_amount"), "unit_amount")
    if unit_amount < 0:
        raise parameter_invalid("unit_amount", "unit_amount must be >= 0")
    price = objects.price(
        id=state.new_id("price"),
        product=_price_product(state, params, livemode),
        currency=currency,
        unit_amount=unit_amount,
        recurring=_recurring(params.get("recurring")),
        created=state.clock.now,
        livemode=livemode,
    )
    state.add("price", price)
    _update_silently(price, params, PRICE_FIELDS)
    state.emit("price.created", price)
    return price


def _price_product(state: DoubleState, params: Params, livemode: bool) -> str:
    if params.get("product"):
        return str(state.get("product", params["product"], param="product")["id"])
    product_data = params.get("product_data")
    if not isinstance(product_data, dict):
        raise parameter_missing("product")
    return str(create_product(state, product_data, livemode=livemode)["id"])


def _recurring(raw: Any) -> StripeObject | None:
    if raw in (None, ""):
        return None
    if not isinstance(raw, dict):
        raise parameter_invalid("recurring", "Invalid hash")
    interval = raw.get("interval")
    if interval not in INTERVALS:
        raise parameter_invalid("recurring[interval]", f"interval must be one of {INTERVALS}")
    count = as_int(raw.get("interval_count", 1), "recurring[interval_count]")
    return objects.recurring(interval, count)


def update_price(state: DoubleState, price_id: str, params: Params) -> StripeObject:
    return _update(state, "price", state.get("price", price_id), params, PRICE_FIELDS)


def list_prices(state: DoubleState, params: Params) -> list[StripeObject]:
    rows = matching(
        state.all("price"),
        params,
        {"active": as_bool, "product": str, "type": str, "currency": str.lower},
    )
    if lookup_keys := as_list(params.get("lookup_keys")):
        rows = [row for row in rows if row["lookup_key"] in lookup_keys]
    interval = (params.get("recurring") or {}).get("interval")
    if interval:
        rows = [row for row in rows if (row["recurring"] or {}).get("interval") == interval]
    return rows


def _update_silently(
    obj: StripeObject, params: Params, fields: dict[str, Callable[[Any], Any]]
) -> None:
    """Optional create-time fields: set before the `.created` event, so it needs no update."""
    for field, coerce in fields.items():
        if params.get(field) not in (None, ""):
            obj[field] = coerce(params[field])
    obj["metadata"] = merge_metadata({}, params.get("metadata"))


# --- customers -------------------------------------------------------------------------------

CUSTOMER_FIELDS: dict[str, Callable[[Any], Any]] = {
    "email": str,
    "name": str,
    "description": str,
    "phone": str,
}


def create_customer(state: DoubleState, params: Params, *, livemode: bool) -> StripeObject:
    customer = billing.new_customer(
        state,
        livemode=livemode,
        email=params.get("email") or None,
        name=params.get("name") or None,
        metadata=merge_metadata({}, params.get("metadata")),
    )
    # new_customer announced it already: the remaining fields are set without a second event.
    for field in ("description", "phone"):
        if params.get(field):
            customer[field] = str(params[field])
    return customer


def update_customer(state: DoubleState, customer_id: str, params: Params) -> StripeObject:
    return _update(state, "customer", state.get("customer", customer_id), params, CUSTOMER_FIELDS)


def list_customers(state: DoubleState, params: Params) -> list[StripeObject]:
    return matching(state.all("customer"), params, {"email": str})


# --- invoices and events -----------------------------------------------------------------------


def list_invoices(state: DoubleState, params: Params) -> list[StripeObject]:
    rows = matching(state.all("invoice"), params, {"customer": str, "status": str})
    if subscription := params.get("subscription"):
        rows = [row for row in rows if invoice_subscription(row) == subscription]
    return rows


def invoice_subscription(invoice: StripeObject) -> str | None:
    parent = invoice["parent"] or {}
    details = parent.get("subscription_details") or {}
    return details.get("subscription")


def list_events(state: DoubleState, params: Params) -> list[StripeObject]:
    wanted = [str(kind) for kind in as_list(params.get("types"))]
    if params.get("type"):
        wanted.append(str(params["type"]))
    rows = state.all("event")
    if wanted:
        rows = [row for row in rows if any(_type_matches(row["type"], kind) for kind in wanted)]
    return rows


def _type_matches(event_type: str, pattern: str) -> bool:
    # Stripe's `type` filter accepts a trailing wildcard: `customer.subscription.*`.
    if pattern.endswith("*"):
        return event_type.startswith(pattern[:-1])
    return event_type == pattern


# --- webhook endpoints -------------------------------------------------------------------------


def create_webhook_endpoint(
    state: DoubleState, params: Params, *, livemode: bool, api_version: str | None
) -> StripeObject:
    enabled = [str(kind) for kind in as_list(required(params, "enabled_events"))]
    endpoint = objects.webhook_endpoint(
        id=state.new_id("webhook_endpoint"),
        url=str(required(params, "url")),
        enabled_events=enabled,
        created=state.clock.now,
        livemode=livemode,
        api_version=params.get("api_version") or api_version,
        description=params.get("description") or None,
    )
    endpoint["metadata"] = merge_metadata({}, params.get("metadata"))
    state.add("webhook_endpoint", endpoint)
    state.webhook_secrets[endpoint["id"]] = new_id("whsec_", 32)
    # Stripe shows the signing secret once, in the create response only.
    return {**endpoint, "secret": state.webhook_secrets[endpoint["id"]]}


def update_webhook_endpoint(state: DoubleState, endpoint_id: str, params: Params) -> StripeObject:
    endpoint = state.get("webhook_endpoint", endpoint_id)
    if "url" in params:
        endpoint["url"] = str(required(params, "url"))
    if "enabled_events" in params:
        endpoint["enabled_events"] = [str(kind) for kind in as_list(params["enabled_events"])]
    if "disabled" in params:
        endpoint["status"] = "disabled" if as_bool(params["disabled"]) else "enabled"
    if "description" in params:
        endpoint["description"] = params["description"] or None
    endpoint["metadata"] = merge_metadata(endpoint["metadata"], params.get("metadata"))
    return endpoint


def delete_webhook_endpoint(state: DoubleState, endpoint_id: str) -> StripeObject:
    state.get("webhook_endpoint", endpoint_id)
    state.mark_deleted(endpoint_id)
    return objects.deleted("webhook_endpoint", endpoint_id)
