"""billplane against localstripe, for what localstripe supports: customers, subscriptions that
reference a legacy `plan`, and signed webhooks. (It has no prices, Checkout or portal: those are
proven against the Stripe double.)"""

import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

import stripe
from billplane.settings import Settings
from billplane.stripe.gateway import StripeGateway
from conftest import ADMIN_TOKEN, Admin, Client, fresh_database
from factories import Seed
from localstripe_process import running_localstripe
from servers import running_server

KEY = "sk_test_localstripe"
SECRET = "whsec_localstripe_tests"
PLAN = "price_pro_monthly"


@pytest.fixture(scope="module")
def localstripe() -> Iterator[str]:
    with running_localstripe() as base_url:
        yield base_url


@pytest.fixture(scope="module")
def sdk(localstripe: str) -> stripe.StripeClient:
    client = stripe.StripeClient(KEY, base_addresses={"api": localstripe}, max_network_retries=0)
    product = client.v1.products.create(params={"name": "Pro"})
    client.v1.plans.create(
        params={
            "id": PLAN,
            "amount": 2000,
            "currency": "usd",
            "interval": "month",
            "product": product.id,
        }
    )
    return client


@pytest.fixture
def settings(database_url: str, localstripe: str) -> Settings:
    return Settings(
        database_url=database_url,
        billplane_admin_token=ADMIN_TOKEN,
        stripe_secret_key=KEY,
        stripe_api_base=localstripe,
        stripe_webhook_secret=SECRET,
    )


def _tenant(project: str) -> dict[str, str]:
    return {"billplane_project": project, "billplane_tenant": "acme"}


def _paying_customer(gateway: StripeGateway, sdk: stripe.StripeClient, project: str) -> str:
    """A customer made by billplane's Stripe module, given a card so localstripe can charge.
    (localstripe lives for the module: each test names its own project.)"""
    customer = gateway.create_customer(
        metadata=_tenant(project), email="ops@acme.test", name=None, idempotency_key=project
    ).id
    card = sdk.v1.tokens.create(
        params={
            "card": {
                "number": "4242424242424242",
                "exp_month": "12",
                "exp_year": "2040",
                "cvc": "123",
            }
        }
    )
    sdk.v1.customers.payment_sources.create(customer, params={"source": card.id})
    return customer


def _subscribe(sdk: stripe.StripeClient, customer: str, project: str) -> str:
    return sdk.v1.subscriptions.create(
        params={"customer": customer, "items": [{"plan": PLAN}], "metadata": _tenant(project)}
    ).id


def test_billplanes_stripe_module_reads_localstripe_objects(
    localstripe: str, sdk: stripe.StripeClient
) -> None:
    gateway = StripeGateway(KEY, localstripe)
    gateway.verify_key()
    project = f"read{secrets.token_hex(4)}"
    customer = _paying_customer(gateway, sdk, project)
    subscription = _subscribe(sdk, customer, project)

    found = gateway.find_customer(customer)
    assert found is not None
    assert found.metadata == _tenant(project)
    facts = gateway.find_subscription(subscription)
    assert facts is not None
    assert (facts.status, facts.customer, facts.price_ids) == ("active", customer, (PLAN,))
    assert facts.current_period_end is not None
    assert facts.metadata == _tenant(project)
    assert [s.id for s in gateway.subscriptions_of(customer)] == [subscription]
    assert customer in {c.id for c in gateway.customers()}

    sdk.v1.subscriptions.cancel(subscription)
    assert [s.status for s in gateway.subscriptions_of(customer)] == ["canceled"]
    sdk.v1.customers.delete(customer)
    assert gateway.find_customer(customer) is None


def test_stripe_sync_pulls_a_localstripe_subscription_into_tenant_state(
    admin: Admin, seed: Seed, client: TestClient, sdk: stripe.StripeClient
) -> None:
    project = f"sync{secrets.token_hex(4)}"
    token = seed.project(project).token.secret
    seed.feature(project, "exports", "boolean")
    seed.plan(project, "free", is_default=True)
    pro = seed.plan(project, "pro", stripe_price_id=PLAN, features={"exports": True})
    seed.tenant(project, "acme")
    api = Client(client, token)
    gateway: StripeGateway = client.app.state.stripe  # type: ignore[attr-defined]
    customer = _paying_customer(gateway, sdk, project)
    subscription = _subscribe(sdk, customer, project)

    report = admin.call("POST", "/admin/api/stripe/sync")

    # localstripe has no /v1/prices: the plan was saved, unchecked, saying why.
    assert pro.stripe_price is not None
    assert pro.stripe_price["checked"] is False
    assert {c["action"] for c in report["changes"]} >= {
        "tenant.link_customer",
        "subscription.create",
    }
    tenant = admin.call("GET", f"/admin/api/projects/{project}/tenants/acme")
    assert tenant["stripe_customer_id"] == customer
    assert tenant["subscription"]["stripe_subscription_id"] == subscription
    check = api.post("/v1/check", {"tenant": "acme", "feature": "exports"}).json()
    assert (check["allowed"], check["plan"], check["subscription_status"]) == (
        True,
        "pro",
        "active",
    )


def _eventually(read: Callable[[], Any], wanted: Callable[[Any], bool]) -> Any:
    """localstripe posts webhooks a second after the change, from its own event loop."""
    deadline = time.monotonic() + 30
    while True:
        value = read()
        if wanted(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


@pytest.mark.e2e
@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_localstripes_signed_webhooks_drive_a_real_billplane(
    engine: str, tmp_path: Any, localstripe: str, sdk: stripe.StripeClient
) -> None:
    project = f"hook{secrets.token_hex(4)}"
    env = {
        "STRIPE_SECRET_KEY": KEY,
        "STRIPE_API_BASE": localstripe,
        "STRIPE_WEBHOOK_SECRET": SECRET,
    }
    with (
        fresh_database(engine, tmp_path) as url,
        running_server(url, ADMIN_TOKEN, extra_env=env) as base_url,
        httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60
        ) as admin,
    ):
        for path, body in [
            ("/admin/api/projects", {"key": project, "name": "R"}),
            (
                f"/admin/api/projects/{project}/plans",
                {"key": "free", "name": "F", "is_default": True},
            ),
            (
                f"/admin/api/projects/{project}/plans",
                {"key": "pro", "name": "P", "stripe_price_id": PLAN},
            ),
            (f"/admin/api/projects/{project}/tenants", {"key": "acme"}),
        ]:
            assert admin.post(path, json=body).status_code == 201
        customer = _paying_customer(StripeGateway(KEY, localstripe), sdk, project)
        assert admin.post("/admin/api/stripe/sync").status_code == 200  # links the customer
        hook = httpx.post(
            f"{localstripe}/_config/webhooks/billplane-{engine}",
            json={"url": f"{base_url}/webhooks/stripe", "secret": SECRET},
        )
        assert hook.status_code == 200

        subscription = _subscribe(sdk, customer, project)

        def tenant() -> Any:
            return admin.get(f"/admin/api/projects/{project}/tenants/acme").json()

        # localstripe sends created and updated events a second apart; the first may describe
        # the subscription before its payment went through, so wait for the settled state.
        active = _eventually(tenant, lambda t: t["subscription"] is not None and t["plan"] == "pro")
        assert active["subscription"]["stripe_subscription_id"] == subscription
        assert (active["subscription"]["status"], active["plan"]) == ("active", "pro")

        sdk.v1.subscriptions.cancel(subscription)
        ended = _eventually(tenant, lambda t: t["subscription"]["status"] == "canceled")
        assert (ended["subscription"]["status"], ended["plan"]) == ("canceled", "free")
        events = admin.get("/admin/api/events", params={"limit": 100}).json()["data"]
        outcomes = {(e["type"], e["outcome"]) for e in events}
        assert ("customer.subscription.created", "processed") in outcomes
        assert ("customer.subscription.deleted", "processed") in outcomes
        assert not [e for e in events if e["outcome"] == "failed"]
        httpx.post(
            f"{localstripe}/_config/webhooks/billplane-{engine}",
            json={"url": "http://127.0.0.1:9/gone", "secret": SECRET},
        )
