"""Every object the double answers or puts in an event has exactly the keys of Stripe's own
example of that resource (`tests/data/stripe/fixtures3.json`, from Stripe's OpenAPI repository)."""

import json
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest

from stripe_double import StripeDouble

# Committed with the tests (see its README): a clone needs nothing beside it.
FIXTURES = Path(__file__).resolve().parents[1] / "data" / "stripe" / "fixtures3.json"
API_KEY = "sk_test_shapes"

# The resources the double serves, and the fixture each one is compared with.
RESOURCES = [
    "product",
    "deleted_product",
    "price",
    "customer",
    "deleted_customer",
    "subscription",
    "subscription_item",
    "plan",
    "checkout.session",
    "item",
    "billing_portal.session",
    "invoice",
    "line_item",
    "event",
    "webhook_endpoint",
    "deleted_webhook_endpoint",
    "payment_intent",
    "charge",
    "refund",
]


@cache
def stripe_examples() -> dict[str, dict[str, Any]]:
    if not FIXTURES.is_file():
        pytest.fail(f"Stripe's fixtures are missing at {FIXTURES} (set STRIPE_FIXTURES3)")
    resources: dict[str, dict[str, Any]] = json.loads(FIXTURES.read_text())["resources"]
    return resources


def keys(resource: str) -> set[str]:
    return set(stripe_examples()[resource])


class RawApi:
    """Plain HTTP against the double, to see the JSON exactly as sent."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"})

    def call(self, method: str, path: str, **data: Any) -> dict[str, Any]:
        response = self.http.request(method, path, data=data or None)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


Specimens = dict[str, list[dict[str, Any]]]


@pytest.fixture(scope="module")
def specimens(shared_double: StripeDouble) -> Specimens:
    """Made once for the module: the objects are plain JSON, later resets do not touch them."""
    shared_double.reset()
    return make_specimens(shared_double)


def make_specimens(double: StripeDouble) -> Specimens:
    """One or more live examples of every resource, made through the API and the controls."""
    api = RawApi(double.base_url)
    try:
        product = api.call("POST", "/v1/products", name="Pro")
        price = api.call(
            "POST",
            "/v1/prices",
            product=product["id"],
            unit_amount="2000",
            currency="usd",
            **{"recurring[interval]": "month"},
        )
        customer = api.call("POST", "/v1/customers", email="shape@example.com")
        session = api.call(
            "POST",
            "/v1/checkout/sessions",
            mode="subscription",
            customer=customer["id"],
            success_url="https://app.example/done",
            **{"line_items[0][price]": price["id"], "line_items[0][quantity]": "1"},
        )
        double.complete_checkout(session["id"])
        double.fail_payment(double.get(session["id"])["subscription"])
        session = api.call("GET", f"/v1/checkout/sessions/{session['id']}")
        subscription = api.call("GET", f"/v1/subscriptions/{session['subscription']}")
        item = subscription["items"]["data"][0]
        invoice = api.call("GET", f"/v1/invoices/{subscription['latest_invoice']}")
        # A closed local port refuses at once, where a real host would keep delivery waiting.
        endpoint = api.call(
            "POST", "/v1/webhook_endpoints", url="http://127.0.0.1:9/hook", enabled_events="*"
        )
        pack = api.call(
            "POST", "/v1/prices", product=product["id"], unit_amount="900", currency="usd"
        )
        paid = api.call(
            "POST",
            "/v1/checkout/sessions",
            mode="payment",
            customer=customer["id"],
            success_url="https://app.example/done",
            **{"line_items[0][price]": pack["id"], "line_items[0][quantity]": "1"},
        )
        double.complete_checkout(paid["id"])
        paid = api.call("GET", f"/v1/checkout/sessions/{paid['id']}")
        refund = api.call(
            "POST", "/v1/refunds", payment_intent=paid["payment_intent"], amount="300"
        )
        spare = api.call("POST", "/v1/products", name="Spare")
        gone = api.call("POST", "/v1/customers", email="gone@example.com")
        return {
            "product": [product],
            "deleted_product": [api.call("DELETE", f"/v1/products/{spare['id']}")],
            "price": [api.call("GET", f"/v1/prices/{price['id']}")],
            "customer": [api.call("GET", f"/v1/customers/{customer['id']}")],
            "deleted_customer": [
                api.call("DELETE", f"/v1/customers/{gone['id']}"),
                api.call("GET", f"/v1/customers/{gone['id']}"),
            ],
            "subscription": [subscription],
            "subscription_item": [item, api.call("GET", f"/v1/subscription_items/{item['id']}")],
            "plan": [item["plan"]],
            "checkout.session": [session, paid],
            "item": api.call("GET", f"/v1/checkout/sessions/{session['id']}/line_items")["data"],
            "billing_portal.session": [
                api.call("POST", "/v1/billing_portal/sessions", customer=customer["id"])
            ],
            "invoice": [invoice],
            "line_item": invoice["lines"]["data"],
            "event": api.call("GET", "/v1/events", limit="100")["data"],
            "webhook_endpoint": [api.call("GET", f"/v1/webhook_endpoints/{endpoint['id']}")],
            "payment_intent": [api.call("GET", f"/v1/payment_intents/{paid['payment_intent']}")],
            "charge": [api.call("GET", f"/v1/charges/{refund['charge']}")],
            "refund": [refund, api.call("GET", f"/v1/refunds/{refund['id']}")],
            "deleted_webhook_endpoint": [
                api.call("DELETE", f"/v1/webhook_endpoints/{endpoint['id']}")
            ],
        }
    finally:
        api.http.close()


@pytest.mark.parametrize("resource", RESOURCES)
def test_objects_have_exactly_the_keys_of_stripes_example(
    specimens: Specimens, resource: str
) -> None:
    found = specimens[resource]

    assert found, f"no {resource} was made"
    for obj in found:
        assert set(obj) == keys(resource), (
            f"{resource}: missing {sorted(keys(resource) - set(obj))}, "
            f"extra {sorted(set(obj) - keys(resource))}"
        )


def test_every_event_carries_an_object_shaped_like_stripes(specimens: Specimens) -> None:
    events = specimens["event"]
    types = {event["type"] for event in events}

    for event in events:
        snapshot = event["data"]["object"]
        assert set(snapshot) == keys(snapshot["object"]), event["type"]
    assert {
        "checkout.session.completed",
        "invoice.payment_failed",
        "customer.deleted",
        "charge.refunded",
    } <= types


def test_subscription_items_have_the_item_keys_and_the_period() -> None:
    # The fixture itself must say what the double relies on: periods and price on the item.
    item_keys = set(stripe_examples()["subscription"]["items"]["data"][0])

    assert item_keys == keys("subscription_item")
    assert {"current_period_start", "current_period_end", "price"} <= item_keys
    assert "current_period_end" not in keys("subscription")
