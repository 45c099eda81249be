"""Signed webhook delivery: verified by the SDK, held back, shuffled, repeated, refused."""

import time
from collections import Counter
from collections.abc import Callable

import pytest

import stripe
from stripe_double import StripeDouble, signature_header
from stripe_double.testing import WebhookRecorder

Subscribe = Callable[..., stripe.Subscription]


def test_delivered_events_verify_with_the_sdk(
    double: StripeDouble,
    recorder: WebhookRecorder,
    catalog: dict[str, stripe.Price],
    subscribe: Subscribe,
) -> None:
    subscription = subscribe(catalog["monthly"].id)

    assert recorder.rejected == 0
    assert recorder.ids() == [event["id"] for event in double.events()]
    assert "checkout.session.completed" in recorder.types()
    created = next(e for e in recorder.events if e.type == "customer.subscription.created")
    assert created.data.object["id"] == subscription.id
    assert all(delivery.ok for delivery in double.deliveries)


def test_an_endpoint_with_another_secret_rejects_every_delivery(
    double: StripeDouble, recorder: WebhookRecorder, client: stripe.StripeClient
) -> None:
    recorder.secret = "whsec_someone_else"

    client.v1.customers.create(params={"email": "x@example.com"})
    double.wait_for_deliveries()

    assert recorder.events == []
    assert recorder.rejected == 1
    assert [d.status_code for d in double.deliveries] == [400]


def test_held_events_arrive_shuffled_and_twice_each(
    double: StripeDouble,
    recorder: WebhookRecorder,
    catalog: dict[str, stripe.Price],
    subscribe: Subscribe,
) -> None:
    double.hold_deliveries()
    recorder.reset()
    subscription = subscribe(catalog["monthly"].id)
    double.renew(subscription.id)
    held = [event["id"] for event in double.pending_events()]
    assert recorder.events == []
    assert len(held) > 10

    deliveries = double.deliver(order="shuffled", duplicate=True, seed=7)

    assert len(deliveries) == 2 * len(held)
    assert Counter(recorder.ids()) == {event_id: 2 for event_id in held}
    assert recorder.ids() != held + held
    assert double.pending_events() == []


def test_shuffling_with_the_same_seed_repeats_the_order(
    double: StripeDouble, recorder: WebhookRecorder, client: stripe.StripeClient
) -> None:
    def shuffled_names() -> list[str]:
        double.reset()
        recorder.reset()
        double.set_webhook(recorder.url, recorder.secret)
        double.hold_deliveries()
        for n in range(8):
            client.v1.customers.create(params={"name": f"c{n}"})
        double.deliver(order="shuffled", seed=3)
        return [event.data.object["name"] for event in recorder.events]

    first, second = shuffled_names(), shuffled_names()

    assert first == second
    assert sorted(first) == [f"c{n}" for n in range(8)]
    assert first != sorted(first)


def test_reversed_delivery_sends_the_newest_first(
    double: StripeDouble,
    recorder: WebhookRecorder,
    catalog: dict[str, stripe.Price],
    subscribe: Subscribe,
) -> None:
    subscription = subscribe(catalog["monthly"].id)
    double.hold_deliveries()
    double.fail_payment(subscription.id)
    held = [event["type"] for event in double.pending_events()]
    recorder.reset()

    double.deliver(order="reversed")

    assert recorder.types() == held[::-1]
    assert recorder.types()[0] == "customer.subscription.updated"


def test_delivering_only_some_types_leaves_the_rest_pending(
    double: StripeDouble,
    recorder: WebhookRecorder,
    catalog: dict[str, stripe.Price],
    subscribe: Subscribe,
) -> None:
    double.hold_deliveries()
    recorder.reset()
    subscribe(catalog["monthly"].id)

    double.deliver(types=["checkout.session.completed"])

    assert recorder.types() == ["checkout.session.completed"]
    remaining = {event["type"] for event in double.pending_events()}
    assert "checkout.session.completed" not in remaining
    assert "customer.subscription.created" in remaining


def test_resuming_sends_what_was_held_in_order(
    double: StripeDouble, recorder: WebhookRecorder, client: stripe.StripeClient
) -> None:
    double.hold_deliveries()
    client.v1.customers.create(params={"name": "late"})
    held = [event["id"] for event in double.pending_events()]

    double.resume_deliveries()

    assert recorder.ids() == held
    assert double.pending_events() == []


def test_failed_delivery_is_recorded_and_can_be_sent_again(
    double: StripeDouble, recorder: WebhookRecorder, client: stripe.StripeClient
) -> None:
    recorder.answer = 500
    client.v1.customers.create(params={"name": "retry"})
    double.wait_for_deliveries()
    [failed] = double.deliveries

    recorder.answer = 200
    [retried] = double.redeliver(failed.event_id)

    assert (failed.ok, failed.status_code) == (False, 500)
    assert retried.ok
    assert recorder.ids() == [failed.event_id, failed.event_id]


def test_signed_pair_verifies_and_a_stale_one_does_not(
    double: StripeDouble, client: stripe.StripeClient
) -> None:
    client.v1.customers.create(params={"name": "signed"})
    event_id = double.events()[-1]["id"]

    payload, header = double.signed(event_id)
    stale_payload, stale_header = double.signed(event_id, timestamp=int(time.time()) - 3600)

    event = stripe.Webhook.construct_event(payload, header, double.webhook_secret)
    assert event.id == event_id
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(stale_payload, stale_header, double.webhook_secret)


def test_signature_is_hmac_sha256_of_timestamp_dot_payload() -> None:
    header = signature_header(b'{"id": "evt_1"}', "whsec_k", timestamp=1_700_000_000)

    # printf '1700000000.{"id": "evt_1"}' | openssl dgst -sha256 -hmac whsec_k
    expected = "bd9c84c9c11624b8601ad0287cf22d91685cb46598ae2a32edac83af7a2e3c55"
    assert header == f"t=1700000000,v1={expected}"


def test_webhook_endpoint_made_through_the_api_gets_its_own_secret_and_event_filter(
    double: StripeDouble,
    recorder: WebhookRecorder,
    client: stripe.StripeClient,
) -> None:
    double.set_webhook(None)
    endpoint = client.v1.webhook_endpoints.create(
        params={"url": recorder.url, "enabled_events": ["customer.created"]}
    )
    recorder.secret = str(endpoint.secret)

    client.v1.products.create(params={"name": "not wanted"})
    client.v1.customers.create(params={"name": "wanted"})
    double.wait_for_deliveries()

    assert str(endpoint.secret).startswith("whsec_")
    assert recorder.types() == ["customer.created"]
    assert double.events("customer.created")[0]["pending_webhooks"] == 1
    assert double.events("product.created")[0]["pending_webhooks"] == 0
    assert [e.id for e in client.v1.webhook_endpoints.list().data] == [endpoint.id]
    assert client.v1.webhook_endpoints.delete(endpoint.id).deleted is True
    assert client.v1.webhook_endpoints.list().data == []


def test_events_are_listed_and_retrieved_through_the_sdk(
    double: StripeDouble,
    client: stripe.StripeClient,
    catalog: dict[str, stripe.Price],
    subscribe: Subscribe,
) -> None:
    subscription = subscribe(catalog["monthly"].id)

    listed = client.v1.events.list(params={"type": "customer.subscription.*"})
    [created] = listed.data
    fetched = client.v1.events.retrieve(created.id)

    assert created.type == "customer.subscription.created"
    assert fetched.data.object["id"] == subscription.id
    assert fetched.api_version == double.state.api_version
    assert fetched.request is not None
