"""Renewals, failed and recovered payments, cancellation, plan changes and customer deletion."""

from collections.abc import Callable

import pytest

import stripe
from stripe_double import StripeDouble, StripeError

Subscribe = Callable[..., stripe.Subscription]

JAN_31_2026 = 1_769_817_600  # 2026-01-31T00:00:00Z: the next month is short
FEB_28_2026 = 1_772_236_800
MAR_28_2026 = 1_774_656_000


def period(subscription: stripe.Subscription) -> tuple[int, int]:
    item = subscription["items"].data[0]
    return item.current_period_start, item.current_period_end


def test_renew_moves_the_item_period_by_one_interval_and_bills_it(
    double: StripeDouble,
    client: stripe.StripeClient,
    catalog: dict[str, stripe.Price],
    subscribe: Subscribe,
) -> None:
    double.clock.set(JAN_31_2026)
    subscription = subscribe(catalog["monthly"].id)
    first_invoice = subscription.latest_invoice

    double.renew(subscription.id)
    renewed = client.v1.subscriptions.retrieve(subscription.id)
    invoice = client.v1.invoices.retrieve(str(renewed.latest_invoice))

    assert period(subscription) == (JAN_31_2026, FEB_28_2026)
    assert period(renewed) == (FEB_28_2026, MAR_28_2026)
    assert renewed.latest_invoice != first_invoice
    assert (invoice.status, invoice.billing_reason) == ("paid", "subscription_cycle")
    assert (invoice.period_start, invoice.period_end) == (FEB_28_2026, MAR_28_2026)


def test_renew_announces_payment_then_the_update_with_the_old_period(
    double: StripeDouble, catalog: dict[str, stripe.Price], subscribe: Subscribe
) -> None:
    subscription = subscribe(catalog["yearly"].id)
    already = len(double.events())

    double.renew(subscription.id)

    events = double.events()[already:]
    assert [event["type"] for event in events] == [
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
    ]
    previous_items = events[-1]["data"]["previous_attributes"]["items"]["data"]
    assert previous_items[0]["current_period_end"] == period(subscription)[1]


def test_renewing_a_trial_ends_it(
    client: stripe.StripeClient,
    catalog: dict[str, stripe.Price],
    subscribe: Subscribe,
    double: StripeDouble,
) -> None:
    subscription = subscribe(catalog["monthly"].id, subscription_data={"trial_period_days": 7})

    double.renew(subscription.id)
    renewed = client.v1.subscriptions.retrieve(subscription.id)

    assert subscription.status == "trialing"
    assert renewed.status == "active"
    assert period(renewed)[0] == subscription.trial_end
    assert client.v1.invoices.retrieve(str(renewed.latest_invoice)).amount_paid == 2000


def test_failed_payment_makes_the_subscription_past_due(
    double: StripeDouble,
    client: stripe.StripeClient,
    catalog: dict[str, stripe.Price],
    subscribe: Subscribe,
) -> None:
    subscription = subscribe(catalog["monthly"].id)
    already = len(double.events())

    double.fail_payment(subscription.id)
    failed = client.v1.subscriptions.retrieve(subscription.id)
    invoice = client.v1.invoices.retrieve(str(failed.latest_invoice))

    assert failed.status == "past_due"
    assert (invoice.status, invoice.attempt_count, invoice.amount_paid) == ("open", 1, 0)
    types = [event["type"] for event in double.events()[already:]]
    assert "invoice.payment_failed" in types
    assert types[-1] == "customer.subscription.updated"
    assert (
        double.events("customer.subscription.updated")[-1]["data"]["previous_attributes"]["status"]
        == "active"
    )


def test_a_second_failure_retries_the_same_invoice_and_can_end_unpaid(
    double: StripeDouble,
    client: stripe.StripeClient,
    catalog: dict[str, stripe.Price],
    subscribe: Subscribe,
) -> None:
    subscription = subscribe(catalog["monthly"].id)
    double.fail_payment(subscription.id)
    invoice_id = client.v1.subscriptions.retrieve(subscription.id).latest_invoice

    double.fail_payment(subscription.id, status="unpaid")
    after = client.v1.subscriptions.retrieve(subscription.id)

    assert after.latest_invoice == invoice_id
    assert after.status == "unpaid"
    assert client.v1.invoices.retrieve(str(invoice_id)).attempt_count == 2


def test_recover_pays_the_open_invoice_and_reactivates(
    double: StripeDouble,
    client: stripe.StripeClient,
    catalog: dict[str, stripe.Price],
    subscribe: Subscribe,
) -> None:
    subscription = subscribe(catalog["monthly"].id)
    double.fail_payment(subscription.id)

    double.recover(subscription.id)
    recovered = client.v1.subscriptions.retrieve(subscription.id)

    assert recovered.status == "active"
    assert client.v1.invoices.retrieve(str(recovered.latest_invoice)).status == "paid"
    assert double.events()[-1]["type"] == "customer.subscription.updated"
    with pytest.raises(StripeError):
        double.recover(subscription.id)


def test_cancel_now_ends_the_subscription_with_a_deleted_event(
    double: StripeDouble,
    client: stripe.StripeClient,
    catalog: dict[str, stripe.Price],
    subscribe: Subscribe,
) -> None:
    subscription = subscribe(catalog["monthly"].id)

    double.cancel(subscription.id)
    canceled = client.v1.subscriptions.retrieve(subscription.id)

    assert canceled.status == "canceled"
    assert canceled.ended_at == double.now
    last = double.events()[-1]
    assert last["type"] == "customer.subscription.deleted"
    assert last["data"]["object"]["status"] == "canceled"
    with pytest.raises(StripeError):
        double.renew(subscription.id)


def test_cancel_at_period_end_is_an_update_and_the_next_renewal_ends_it(
    double: StripeDouble,
    client: stripe.StripeClient,
    catalog: dict[str, stripe.Price],
    subscribe: Subscribe,
) -> None:
    subscription = subscribe(catalog["monthly"].id)

    double.cancel(subscription.id, at_period_end=True)
    pending = client.v1.subscriptions.retrieve(subscription.id)
    update = double.events()[-1]
    double.renew(subscription.id)

    assert (pending.status, pending.cancel_at_period_end) == ("active", True)
    assert pending.cancel_at == period(subscription)[1]
    assert update["type"] == "customer.subscription.updated"
    assert update["data"]["previous_attributes"]["cancel_at_period_end"] is False
    assert double.events()[-1]["type"] == "customer.subscription.deleted"
    ended = client.v1.subscriptions.retrieve(subscription.id)
    assert (ended.status, ended.ended_at) == ("canceled", period(subscription)[1])


def test_sdk_update_changes_the_plan_and_sdk_cancel_deletes(
    double: StripeDouble,
    client: stripe.StripeClient,
    catalog: dict[str, stripe.Price],
    subscribe: Subscribe,
) -> None:
    subscription = subscribe(catalog["monthly"].id)
    item_id = subscription["items"].data[0].id

    changed = client.v1.subscriptions.update(
        subscription.id, params={"items": [{"id": item_id, "price": catalog["yearly"].id}]}
    )
    update = double.events()[-1]
    client.v1.subscriptions.cancel(subscription.id)

    assert changed["items"].data[0].price.id == catalog["yearly"].id
    assert update["type"] == "customer.subscription.updated"
    old_items = update["data"]["previous_attributes"]["items"]["data"]
    assert old_items[0]["price"]["id"] == catalog["monthly"].id
    assert double.events()[-1]["type"] == "customer.subscription.deleted"


def test_canceled_subscriptions_leave_the_default_list(
    client: stripe.StripeClient, catalog: dict[str, stripe.Price], subscribe: Subscribe
) -> None:
    kept = subscribe(catalog["monthly"].id)
    ended = subscribe(catalog["monthly"].id)
    client.v1.subscriptions.cancel(ended.id)

    default = client.v1.subscriptions.list()
    everything = client.v1.subscriptions.list(params={"status": "all"})

    assert [s.id for s in default.data] == [kept.id]
    assert {s.id for s in everything.data} == {kept.id, ended.id}


def test_deleting_a_customer_cancels_its_subscription_first(
    double: StripeDouble,
    client: stripe.StripeClient,
    catalog: dict[str, stripe.Price],
    subscribe: Subscribe,
) -> None:
    subscription = subscribe(catalog["monthly"].id)
    customer_id = str(subscription.customer)

    deleted = client.v1.customers.delete(customer_id)

    assert deleted.deleted is True
    assert client.v1.customers.retrieve(customer_id)["deleted"] is True
    assert client.v1.subscriptions.retrieve(subscription.id).status == "canceled"
    assert [event["type"] for event in double.events()[-2:]] == [
        "customer.subscription.deleted",
        "customer.deleted",
    ]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.update(customer_id, params={"name": "ghost"})


def test_customer_metadata_merges_on_update(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(
        params={"email": "m@example.com", "metadata": {"tenant": "acme", "tier": "gold"}}
    )

    updated = client.v1.customers.update(
        customer.id, params={"metadata": {"tier": "", "region": "eu"}}
    )

    assert updated.metadata is not None
    assert updated.metadata.to_dict() == {"tenant": "acme", "region": "eu"}
    assert [c.id for c in client.v1.customers.list(params={"email": "m@example.com"}).data] == [
        customer.id
    ]


def test_objects_are_stamped_with_the_doubles_clock(
    double: StripeDouble, client: stripe.StripeClient
) -> None:
    double.clock.set(1_800_000_000)
    first = client.v1.customers.create(params={})

    double.advance(days=2)
    second = client.v1.customers.create(params={})

    assert first.created == 1_800_000_000
    assert second.created == 1_800_000_000 + 2 * 86_400
    assert double.events()[-1]["created"] == second.created


def test_removing_the_only_item_is_refused(
    client: stripe.StripeClient, catalog: dict[str, stripe.Price], subscribe: Subscribe
) -> None:
    subscription = subscribe(catalog["monthly"].id)
    item_id = subscription["items"].data[0].id

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.subscriptions.update(
            subscription.id, params={"items": [{"id": item_id, "deleted": True}]}
        )

    assert raised.value.param == "items[0][deleted]"
    assert client.v1.subscriptions.retrieve(subscription.id)["items"].data[0].id == item_id
