"""The `/_double` HTTP controls, for tests that drive the double from another process."""

from collections.abc import Callable

import httpx

import stripe
from stripe_double import StripeDouble
from stripe_double.testing import WebhookRecorder

Subscribe = Callable[..., stripe.Subscription]


def test_renew_over_http_moves_the_period(
    double: StripeDouble,
    client: stripe.StripeClient,
    catalog: dict[str, stripe.Price],
    subscribe: Subscribe,
) -> None:
    subscription = subscribe(catalog["monthly"].id)
    before = subscription["items"].data[0].current_period_end

    answer = httpx.post(f"{double.base_url}/_double/subscriptions/{subscription.id}/renew")

    assert answer.status_code == 200
    assert answer.json()["items"]["data"][0]["current_period_start"] == before
    renewed = client.v1.subscriptions.retrieve(subscription.id)
    assert renewed["items"].data[0].current_period_start == before


def test_fail_payment_and_cancel_over_http(
    double: StripeDouble, catalog: dict[str, stripe.Price], subscribe: Subscribe
) -> None:
    subscription = subscribe(catalog["monthly"].id)
    base = f"{double.base_url}/_double/subscriptions/{subscription.id}"

    failed = httpx.post(f"{base}/fail_payment", data={"status": "unpaid"})
    canceled = httpx.post(f"{base}/cancel", data={"at_period_end": "true"})

    assert failed.json()["status"] == "unpaid"
    assert canceled.json()["cancel_at_period_end"] is True


def test_unknown_subscription_is_a_stripe_shaped_404(double: StripeDouble) -> None:
    answer = httpx.post(f"{double.base_url}/_double/subscriptions/sub_nope/renew")

    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "resource_missing"


def test_clock_moves_over_http(double: StripeDouble) -> None:
    answer = httpx.post(f"{double.base_url}/_double/clock", data={"set": "1800000000", "days": "1"})

    assert answer.json() == {"now": 1_800_000_000 + 86_400}
    assert double.now == 1_800_000_000 + 86_400


def test_hold_and_deliver_over_http(
    double: StripeDouble, recorder: WebhookRecorder, client: stripe.StripeClient
) -> None:
    base = f"{double.base_url}/_double/deliveries"
    httpx.post(f"{base}/hold")
    client.v1.customers.create(params={"name": "held"})

    pending = httpx.get(f"{base}/pending").json()
    delivered = httpx.post(f"{base}/deliver", data={"duplicate": "true"}).json()

    assert [event["type"] for event in pending] == ["customer.created"]
    assert [d["status_code"] for d in delivered] == [200, 200]
    assert recorder.ids() == [pending[0]["id"]] * 2


def test_unknown_api_route_is_a_stripe_shaped_404(double: StripeDouble) -> None:
    answer = httpx.get(
        f"{double.base_url}/v1/charges_of_the_light_brigade",
        headers={"Authorization": "Bearer sk_test_x"},
    )

    assert answer.status_code == 404
    assert answer.json()["error"]["type"] == "invalid_request_error"
