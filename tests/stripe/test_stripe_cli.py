"""`billplane stripe check`, `billplane stripe sync`, `billplane events list|replay`, and a plan's
price looked up by `billplane plan create`, on a migrated database of each engine."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

import stripe
from billplane.app import create_app
from billplane.cli import app
from billplane.settings import Settings
from billplane.stripe.gateway import StripeGateway
from conftest import ADMIN_TOKEN, fresh_database
from stripe_double import StripeDouble
from stripe_shop import API_KEY, WEBHOOK_SECRET, closed_port_url, create_price

PUBLIC_URL = "https://billplane.example"


class Cli:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.runner = CliRunner()

    def __call__(self, *args: str, expect: int = 0, **env: str) -> Result:
        result = self.runner.invoke(app, list(args), env={**self.env, **env})
        assert result.exit_code == expect, (args, result.output, result.exception)
        return result


@pytest.fixture(params=["sqlite", "postgresql"])
def cli(
    request: pytest.FixtureRequest, tmp_path: Path, shared_double: StripeDouble
) -> Iterator[Cli]:
    shared_double.reset()
    with fresh_database(request.param, tmp_path) as url:
        yield Cli(
            {
                "DATABASE_URL": url,
                "STRIPE_SECRET_KEY": API_KEY,
                "STRIPE_API_BASE": shared_double.base_url,
                "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "BILLPLANE_PUBLIC_URL": PUBLIC_URL,
                "BILLPLANE_ADMIN_TOKEN": ADMIN_TOKEN,
            }
        )


@pytest.fixture
def sdk(shared_double: StripeDouble) -> stripe.StripeClient:
    return stripe.StripeClient(
        API_KEY, base_addresses={"api": shared_double.base_url}, max_network_retries=0
    )


def _seed(cli: Cli, sdk: stripe.StripeClient) -> str:
    price = create_price(sdk, 2000)
    cli("project", "create", "p", "--origin", "https://app.test")
    cli("feature", "create", "p", "exports")
    cli("plan", "create", "p", "free", "--default")
    created = json.loads(
        cli("plan", "create", "p", "pro", "--price", price, "--feature", "exports", "--json").output
    )
    assert created["stripe"]["usable"] is True
    assert created["stripe"]["amount"] == 2000
    cli("tenant", "create", "p", "acme")
    return price


def test_stripe_sync_pulls_what_happened_in_stripe_into_tenant_state(
    cli: Cli, sdk: stripe.StripeClient
) -> None:
    price = _seed(cli, sdk)
    # A customer billplane created (its write to the database lost), then subscribed in Stripe.
    customer = StripeGateway(API_KEY, cli.env["STRIPE_API_BASE"]).create_customer(
        metadata={"billplane_project": "p", "billplane_tenant": "acme"},
        email=None,
        name=None,
        idempotency_key="cli-test",
    )
    subscription = sdk.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price}]}
    )

    synced = cli("stripe", "sync")

    assert "1 customers and 1 subscriptions checked; 2 changes." in synced.output
    assert "tenant.link_customer tenant:p/acme" in synced.output
    assert f"subscription.create subscription:p/acme/{subscription.id}" in synced.output
    assert customer.id in cli("tenant", "list", "p").output
    again = json.loads(cli("stripe", "sync", "--json").stdout)
    assert (again["changed"], again["problems"]) == (0, [])


def test_stripe_check_tells_what_is_missing_until_the_webhook_is_registered(
    cli: Cli, sdk: stripe.StripeClient
) -> None:
    _seed(cli, sdk)

    missing = cli("stripe", "check", expect=1).output

    assert "Stripe: connected, test mode (the key is valid)" in missing
    assert "Plan p/pro (price_" in missing
    assert "ok, 20.00 USD per month" in missing
    assert f"Webhook endpoint {PUBLIC_URL}/webhooks/stripe: not registered" in missing
    assert "  - invoice.payment_failed" in missing

    sdk.v1.webhook_endpoints.create(
        params={"url": f"{PUBLIC_URL}/webhooks/stripe", "enabled_events": ["*"]}
    )
    done = cli("stripe", "check").output
    assert "registered, enabled, with every needed event" in done
    assert API_KEY not in missing + done


def test_stripe_check_without_a_key_or_with_stripe_down_says_so(cli: Cli) -> None:
    unset = cli("stripe", "check", expect=1, STRIPE_SECRET_KEY="").output
    down = cli("stripe", "check", expect=1, STRIPE_API_BASE=closed_port_url()).output
    sync = cli("stripe", "sync", expect=1, STRIPE_API_BASE=closed_port_url())

    assert "Stripe: error: Stripe is not configured: set STRIPE_SECRET_KEY." in unset
    assert "Stripe: unknown: Stripe could not be reached" in down
    assert "refused" not in down
    assert "error (stripe_unavailable): Stripe could not be reached" in sync.output
    assert API_KEY not in down + sync.output


def test_a_failed_event_is_listed_and_replayed_from_the_cli(
    cli: Cli, sdk: stripe.StripeClient, shared_double: StripeDouble
) -> None:
    price = _seed(cli, sdk)
    customer = StripeGateway(API_KEY, cli.env["STRIPE_API_BASE"]).create_customer(
        metadata={"billplane_project": "p", "billplane_tenant": "acme"},
        email=None,
        name=None,
        idempotency_key="cli-replay-test",
    )
    cli("stripe", "sync")  # links the customer to the tenant
    sdk.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": price}]})
    event = shared_double.events("customer.subscription.created")[-1]
    # The delivery reaches a billplane that cannot reach Stripe: processing fails.
    web = create_app(
        Settings(database_url=cli.env["DATABASE_URL"], stripe_webhook_secret=WEBHOOK_SECRET)
    )
    web.state.stripe = StripeGateway(API_KEY, closed_port_url())
    payload, header = shared_double.signed(event)
    with TestClient(web) as http:
        answer = http.post(
            "/webhooks/stripe", content=payload, headers={"Stripe-Signature": header}
        )
    web.state.db.dispose()
    assert answer.status_code == 500

    failed = json.loads(cli("events", "list", "--outcome", "failed", "--json").stdout)["data"]
    assert [(e["id"], e["type"], e["outcome"]) for e in failed] == [
        (event["id"], "customer.subscription.created", "failed")
    ]
    assert failed[0]["error"].startswith("stripe_unavailable")
    table = cli("events", "list", "--outcome", "failed").output.splitlines()
    assert table[0].split() == ["ID", "TYPE", "OUTCOME", "RECEIVED_AT", "ERROR", "REASON"]
    assert table[1].startswith(f"{event['id']}  customer.subscription.created  failed  ")
    replayed = dict(
        line.split(None, 1) for line in cli("events", "replay", event["id"]).output.splitlines()
    )
    assert (replayed["id"], replayed["outcome"]) == (event["id"], "processed")
    again = json.loads(cli("events", "replay", event["id"], "--json").stdout)
    assert (again["id"], again["type"], again["outcome"]) == (
        event["id"],
        "customer.subscription.created",
        "processed",
    )
    assert cli("events", "list", "--outcome", "failed").output == "(none)\n"
    unknown = cli("events", "replay", "evt_missing", expect=1)
    assert "error (event_not_found)" in unknown.output
