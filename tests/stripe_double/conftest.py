"""Fixtures for the Stripe double's own tests: one double and one webhook recorder per session,
reset before each test; an SDK client pointed at the double; a small catalog; checkout helpers."""

from collections.abc import Callable, Iterator
from typing import Any, Literal

import pytest

import stripe
from stripe_double import StripeDouble, running_double
from stripe_double.testing import WebhookRecorder, running_recorder

WEBHOOK_SECRET = "whsec_double_tests"
API_KEY = "sk_test_double_tests"
SUCCESS_URL = "https://app.example/billing/done?session={CHECKOUT_SESSION_ID}"

Checkout = Callable[..., stripe.checkout.Session]
Subscribe = Callable[..., stripe.Subscription]


@pytest.fixture(scope="session")
def shared_double() -> Iterator[StripeDouble]:
    with running_double(webhook_secret=WEBHOOK_SECRET) as double:
        yield double


@pytest.fixture
def double(shared_double: StripeDouble) -> StripeDouble:
    shared_double.reset()
    return shared_double


@pytest.fixture
def client(double: StripeDouble) -> stripe.StripeClient:
    return stripe.StripeClient(
        API_KEY, base_addresses={"api": double.base_url}, max_network_retries=0
    )


@pytest.fixture(scope="session")
def shared_recorder() -> Iterator[WebhookRecorder]:
    with running_recorder(WEBHOOK_SECRET) as recorder:
        yield recorder


@pytest.fixture
def recorder(shared_recorder: WebhookRecorder, double: StripeDouble) -> WebhookRecorder:
    """The double delivers every event to this recorder, signed with WEBHOOK_SECRET."""
    shared_recorder.reset()
    shared_recorder.secret = WEBHOOK_SECRET
    double.set_webhook(shared_recorder.url, WEBHOOK_SECRET)
    return shared_recorder


@pytest.fixture
def catalog(client: stripe.StripeClient) -> dict[str, stripe.Price]:
    """A "Pro" product's monthly (20.00 USD) and yearly (200.00 USD) prices."""
    product = client.v1.products.create(params={"name": "Pro"})

    def price(amount: int, interval: Literal["month", "year"]) -> stripe.Price:
        return client.v1.prices.create(
            params={
                "product": product.id,
                "unit_amount": amount,
                "currency": "usd",
                "recurring": {"interval": interval},
            }
        )

    return {"monthly": price(2000, "month"), "yearly": price(20000, "year")}


@pytest.fixture
def checkout(client: stripe.StripeClient) -> Checkout:
    """Opens a subscription checkout session for a price, as the app under test would."""

    def open_session(price_id: str, **extra: Any) -> stripe.checkout.Session:
        params: dict[str, Any] = {
            "mode": "subscription",
            "line_items": [{"price": price_id, "quantity": 1}],
            "success_url": SUCCESS_URL,
            "cancel_url": "https://app.example/billing",
            **extra,
        }
        return client.v1.checkout.sessions.create(params=params)  # type: ignore[arg-type]

    return open_session


@pytest.fixture
def subscribe(double: StripeDouble, client: stripe.StripeClient, checkout: Checkout) -> Subscribe:
    """Checkout opened and completed: the subscription as the SDK retrieves it."""

    def complete(price_id: str, **extra: Any) -> stripe.Subscription:
        completed = double.complete_checkout(checkout(price_id, **extra).id)
        return client.v1.subscriptions.retrieve(completed["subscription"])

    return complete
