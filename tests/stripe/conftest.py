"""Fixtures for billplane's Stripe work: the in-process app talks to a real Stripe double.

`settings` is overridden here so that `client`, `admin`, `seed` (and so every test in this
folder) run with STRIPE_SECRET_KEY, STRIPE_API_BASE (the double) and STRIPE_WEBHOOK_SECRET set.
The double does not post webhooks in these tests (it cannot reach the in-process app):
`Shop.deliver` signs the double's events and posts them through the test client, the same HTTP
request.
"""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

import stripe
from billplane.settings import Settings
from conftest import ADMIN_TOKEN, Admin, Client, Clock
from factories import Seed
from stripe_double import StripeDouble, running_double
from stripe_shop import API_KEY, ORIGIN, WEBHOOK_SECRET, Shop, create_price


@pytest.fixture(scope="session")
def shared_double() -> Iterator[StripeDouble]:
    with running_double(webhook_url=None, webhook_secret=WEBHOOK_SECRET) as double:
        yield double


@pytest.fixture
def double(shared_double: StripeDouble, clock: Clock) -> StripeDouble:
    """A fresh double whose clock reads what billplane's test clock reads."""
    shared_double.reset()
    shared_double.clock.set(int(clock.now.timestamp()))
    return shared_double


@pytest.fixture
def settings(database_url: str, double: StripeDouble) -> Settings:
    return Settings(
        database_url=database_url,
        billplane_admin_token=ADMIN_TOKEN,
        billplane_past_due_grace_days=3,
        billplane_public_url="https://billplane.example",
        stripe_secret_key=API_KEY,
        stripe_api_base=double.base_url,
        stripe_webhook_secret=WEBHOOK_SECRET,
    )


@pytest.fixture
def sdk(double: StripeDouble) -> stripe.StripeClient:
    """The test's own hands on the double (what an operator does in Stripe's dashboard)."""
    return stripe.StripeClient(
        API_KEY, base_addresses={"api": double.base_url}, max_network_retries=0
    )


@pytest.fixture
def shop(
    admin: Admin,
    seed: Seed,
    client: TestClient,
    double: StripeDouble,
    sdk: stripe.StripeClient,
) -> Shop:
    token = seed.project("realtyos", origins=[ORIGIN]).token.secret
    seed.feature("realtyos", "exports", "boolean")
    seed.feature("realtyos", "listings.publish", "limit", unit="listing")
    seed.plan(
        "realtyos",
        "free",
        is_default=True,
        features={"listings.publish": {"limit": 3, "reset": "month"}},
    )
    pro_price = create_price(sdk, 2000)
    seed.plan(
        "realtyos",
        "pro",
        stripe_price_id=pro_price,
        features={"exports": True, "listings.publish": {"limit": 100, "reset": "month"}},
    )
    seed.tenant("realtyos", "acme", name="Acme Realty", email="ops@acme.test")
    return Shop(
        admin=admin,
        seed=seed,
        api=Client(client, token),
        token=token,
        double=double,
        sdk=sdk,
        client=client,
        pro_price=pro_price,
    )
