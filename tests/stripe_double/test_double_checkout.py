"""Checkout sessions, their completion into a subscription, hosted pages, portal sessions."""

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

import stripe
from stripe_double import StripeDouble, StripeError

Checkout = Callable[..., stripe.checkout.Session]
Subscribe = Callable[..., stripe.Subscription]


def next_month(timestamp: int) -> int:
    moment = datetime.fromtimestamp(timestamp, UTC)
    year, month = divmod(moment.month, 12)
    return int(moment.replace(year=moment.year + year, month=month + 1).timestamp())


def test_completed_checkout_creates_subscription_with_price_metadata_and_item_period(
    double: StripeDouble,
    client: stripe.StripeClient,
    catalog: dict[str, stripe.Price],
    checkout: Checkout,
) -> None:
    double.clock.set(1_767_225_600)  # 2026-01-01: the month after has 31 days
    customer = client.v1.customers.create(params={"metadata": {"billplane_tenant": "acme"}})
    session = checkout(
        catalog["monthly"].id,
        customer=customer.id,
        client_reference_id="acme",
        metadata={"billplane_tenant": "acme"},
        subscription_data={"metadata": {"billplane_tenant": "acme"}},
    )

    double.complete_checkout(session.id)
    completed = client.v1.checkout.sessions.retrieve(session.id)
    subscription = client.v1.subscriptions.retrieve(str(completed.subscription))
    item = subscription["items"].data[0]

    assert (completed.status, completed.payment_status) == ("complete", "paid")
    assert completed.customer == customer.id
    assert completed.client_reference_id == "acme"
    assert subscription.status == "active"
    assert subscription.customer == customer.id
    assert subscription.metadata.to_dict() == {"billplane_tenant": "acme"}
    assert item.price.id == catalog["monthly"].id
    assert item.current_period_start == 1_767_225_600
    assert item.current_period_end == next_month(1_767_225_600)


def test_first_invoice_is_paid_and_names_its_subscription_under_parent(
    client: stripe.StripeClient, catalog: dict[str, stripe.Price], subscribe: Subscribe
) -> None:
    subscription = subscribe(catalog["monthly"].id)

    invoice = client.v1.invoices.retrieve(str(subscription.latest_invoice))

    assert invoice.status == "paid"
    assert (invoice.amount_due, invoice.amount_paid) == (2000, 2000)
    assert invoice.billing_reason == "subscription_create"
    assert invoice.parent is not None
    assert invoice.parent.subscription_details is not None
    assert invoice.parent.subscription_details.subscription == subscription.id


def test_checkout_without_customer_creates_one_from_the_email(
    double: StripeDouble,
    client: stripe.StripeClient,
    catalog: dict[str, stripe.Price],
    checkout: Checkout,
) -> None:
    session = checkout(catalog["monthly"].id, customer_email="new@example.com")

    completed = double.complete_checkout(session.id)

    customer = client.v1.customers.retrieve(completed["customer"])
    assert customer.email == "new@example.com"
    assert completed["customer_details"]["email"] == "new@example.com"


def test_trial_makes_a_trialing_subscription_with_nothing_due(
    double: StripeDouble,
    client: stripe.StripeClient,
    catalog: dict[str, stripe.Price],
    subscribe: Subscribe,
) -> None:
    subscription = subscribe(catalog["monthly"].id, subscription_data={"trial_period_days": 14})
    invoice = client.v1.invoices.retrieve(str(subscription.latest_invoice))
    item = subscription["items"].data[0]

    assert subscription.status == "trialing"
    assert subscription.trial_end == double.now + 14 * 86_400
    assert item.current_period_end == subscription.trial_end
    assert (invoice.status, invoice.amount_due) == ("paid", 0)


def test_completion_emits_stripe_events_in_order(
    double: StripeDouble, catalog: dict[str, stripe.Price], checkout: Checkout
) -> None:
    session = checkout(catalog["monthly"].id, customer_email="order@example.com")
    already = len(double.events())

    double.complete_checkout(session.id)

    assert [event["type"] for event in double.events()[already:]] == [
        "customer.created",
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "checkout.session.completed",
    ]
    completed_event = double.events("checkout.session.completed")[0]
    assert completed_event["data"]["object"]["id"] == session.id
    assert completed_event["data"]["object"]["subscription"].startswith("sub_")


def test_a_session_completes_only_once(
    double: StripeDouble, catalog: dict[str, stripe.Price], checkout: Checkout
) -> None:
    session = checkout(catalog["monthly"].id)
    double.complete_checkout(session.id)

    with pytest.raises(StripeError, match="complete"):
        double.complete_checkout(session.id)


def test_subscription_mode_needs_a_recurring_price(client: stripe.StripeClient) -> None:
    one_time = client.v1.prices.create(
        params={"product_data": {"name": "Setup"}, "unit_amount": 900, "currency": "usd"}
    )

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.create(
            params={
                "mode": "subscription",
                "line_items": [{"price": one_time.id, "quantity": 1}],
                "success_url": "https://app.example/done",
            }
        )
    assert raised.value.param == "line_items"


def test_line_items_can_be_expanded(
    client: stripe.StripeClient, catalog: dict[str, stripe.Price], checkout: Checkout
) -> None:
    session = checkout(catalog["yearly"].id)

    fetched = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["line_items"]})

    assert fetched.line_items is not None
    [line] = fetched.line_items.data
    assert (line.price.id if line.price else None, line.amount_total) == (
        catalog["yearly"].id,
        20000,
    )


def test_hosted_page_pays_and_returns_to_success_url_with_the_session_id(
    client: stripe.StripeClient, catalog: dict[str, stripe.Price], checkout: Checkout
) -> None:
    session = checkout(catalog["monthly"].id)
    assert session.url is not None

    page = httpx.get(session.url)
    paid = httpx.post(f"{session.url}/pay")

    assert page.status_code == 200
    assert "Pay 20.00 USD" in page.text
    assert paid.status_code == 303
    assert paid.headers["location"] == f"https://app.example/billing/done?session={session.id}"
    assert client.v1.checkout.sessions.retrieve(session.id).status == "complete"


def test_portal_session_points_at_the_double(
    double: StripeDouble, client: stripe.StripeClient
) -> None:
    customer = client.v1.customers.create(params={"email": "p@example.com"})

    portal = client.v1.billing_portal.sessions.create(
        params={"customer": customer.id, "return_url": "https://app.example/account"}
    )
    page = httpx.get(portal.url)

    assert portal.url.startswith(f"{double.base_url}/_double/portal/bps_")
    assert portal.customer == customer.id
    assert page.status_code == 200
    assert "https://app.example/account" in page.text
