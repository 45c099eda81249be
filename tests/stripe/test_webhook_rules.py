"""What each event does (`billplane.webhooks.handlers`, see docs/architecture.md), and the
rules learned the hard way: order does not matter, older news never wins, links are never
guessed, one live subscription per tenant."""

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from billplane.billing import service as billing
from billplane.stripe.gateway import StripeGateway
from conftest import Clock
from stripe_shop import Shop


def test_deliveries_in_reverse_order_leave_what_stripe_says_now(shop: Shop) -> None:
    subscription = shop.subscribe()
    shop.double.renew(subscription)
    shop.double.fail_payment(subscription)
    now = shop.sdk.v1.subscriptions.retrieve(subscription)

    for event in reversed(shop.double.events()):
        assert shop.deliver(event).status_code == 200

    stored = shop.tenant()["subscription"]
    assert stored["status"] == now.status == "past_due"
    period_end = now["items"]["data"][0]["current_period_end"]
    assert stored["current_period_end"].startswith(_iso_date(period_end))


def _iso_date(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def test_an_older_read_of_a_subscription_never_overwrites_a_newer_one(
    shop: Shop, session: Session, clock: Clock
) -> None:
    subscription = shop.subscribe()
    gateway: StripeGateway = shop.client.app.state.stripe  # type: ignore[attr-defined]
    older = gateway.find_subscription(subscription)
    shop.double.fail_payment(subscription)
    newer = gateway.find_subscription(subscription)
    assert older is not None
    assert newer is not None

    read_later = clock.now + timedelta(seconds=5)
    newest = billing.Context(actor="test", now=read_later, seen_at=read_later, grace_days=3)
    stale = billing.Context(actor="test", now=read_later, seen_at=clock.now, grace_days=3)
    assert billing.apply_subscription(session, newer, newest)
    assert billing.apply_subscription(session, older, stale) == []

    assert shop.tenant()["subscription"]["status"] == "past_due"


def test_past_due_grants_inside_the_grace_period_only(shop: Shop, clock: Clock) -> None:
    subscription = shop.subscribe()
    shop.double.fail_payment(subscription)
    shop.deliver_all()

    check = shop.check()
    assert (check["allowed"], check["plan"], check["subscription_status"]) == (
        True,
        "pro",
        "past_due",
    )
    period_start = shop.sdk.v1.subscriptions.retrieve(subscription)["items"]["data"][0][
        "current_period_start"
    ]
    clock.now = datetime.fromtimestamp(period_start, UTC) + timedelta(days=4)

    late = shop.check()
    assert (late["allowed"], late["plan"], late["subscription_status"]) == (
        False,
        "free",
        "past_due",
    )


def test_recovery_restores_access(shop: Shop) -> None:
    subscription = shop.subscribe()
    shop.double.fail_payment(subscription, status="unpaid")
    shop.deliver_all()
    assert shop.check()["allowed"] is False

    shop.double.recover(subscription)
    shop.deliver_all()

    assert (shop.check()["allowed"], shop.check()["subscription_status"]) == (True, "active")


def test_cancel_at_period_end_keeps_access_until_stripe_ends_it(shop: Shop) -> None:
    subscription = shop.subscribe()
    shop.double.cancel(subscription, at_period_end=True)
    shop.deliver_all()

    assert shop.tenant()["subscription"]["cancel_at_period_end"] is True
    assert shop.check()["allowed"] is True

    shop.double.renew(subscription)
    shop.deliver_all()

    assert shop.tenant()["subscription"]["status"] == "canceled"
    assert (shop.check()["allowed"], shop.check()["plan"]) == (False, "free")


def test_a_deleted_customer_unbinds_the_tenant_and_ends_its_subscription(shop: Shop) -> None:
    subscription = shop.subscribe()
    shop.deliver_all()
    customer = shop.tenant()["stripe_customer_id"]

    shop.double.delete_customer(customer)
    deleted = shop.double.events("customer.deleted")[0]
    assert shop.deliver(deleted).json()["outcome"] == "processed"

    tenant = shop.tenant()
    assert tenant["stripe_customer_id"] is None
    assert tenant["subscription"]["stripe_subscription_id"] == subscription
    assert tenant["subscription"]["status"] == "canceled"
    assert (shop.check()["allowed"], shop.check()["plan"]) == (False, "free")
    unlinked = [e for e in shop.audit() if e["action"] == "tenant.unlink_customer"]
    assert [e["before"] for e in unlinked] == [{"stripe_customer_id": customer}]


def test_events_arriving_after_the_customer_was_deleted_do_not_link_it_again(shop: Shop) -> None:
    shop.subscribe()
    customer = shop.tenant()["stripe_customer_id"]
    shop.double.delete_customer(customer)

    for event in reversed(shop.double.events()):
        assert shop.deliver(event).status_code == 200, event["type"]

    assert shop.tenant()["stripe_customer_id"] is None
    assert (shop.check()["allowed"], shop.check()["plan"]) == (False, "free")
    assert shop.events(outcome="failed") == []


def test_a_second_live_subscription_for_a_tenant_is_parked(shop: Shop) -> None:
    first = shop.subscribe()
    shop.deliver_all()
    customer = shop.tenant()["stripe_customer_id"]
    shop.sdk.v1.subscriptions.create(
        params={"customer": customer, "items": [{"price": shop.pro_price}]}
    )
    second = shop.double.events("customer.subscription.created")[-1]

    answer = shop.deliver(second)

    assert answer.status_code == 500
    [failed] = shop.events(outcome="failed")
    assert failed["id"] == second["id"]
    assert failed["error"].startswith("subscription_exists")
    assert shop.tenant()["subscription"]["stripe_subscription_id"] == first


def test_a_subscription_whose_metadata_names_a_tenant_it_is_not_linked_to_is_parked(
    shop: Shop,
) -> None:
    stranger = shop.sdk.v1.customers.create(params={"email": "mallory@evil.test"})
    shop.sdk.v1.subscriptions.create(
        params={
            "customer": stranger.id,
            "items": [{"price": shop.pro_price}],
            "metadata": {"billplane_project": "realtyos", "billplane_tenant": "acme"},
        }
    )
    event = shop.double.events("customer.subscription.created")[-1]

    answer = shop.deliver(event)

    assert answer.status_code == 500
    assert shop.events()[0]["error"].startswith("unverified_link")
    assert shop.tenant()["subscription"] is None
    assert shop.check()["plan"] == "free"


def test_invoices_are_kept_as_the_tenants_billing_history(shop: Shop) -> None:
    subscription = shop.subscribe()
    shop.double.renew(subscription)
    shop.double.fail_payment(subscription)
    shop.deliver_all()

    invoices = shop.admin.call("GET", "/admin/api/projects/realtyos/tenants/acme/invoices")["data"]

    assert [(i["status"], i["billing_reason"]) for i in invoices] == [
        ("open", "subscription_cycle"),
        ("paid", "subscription_cycle"),
        ("paid", "subscription_create"),
    ]
    assert {(i["amount_due"], i["currency"], i["subscription"]) for i in invoices} == {
        (2000, "usd", subscription)
    }
    assert invoices[0]["attempt_count"] == 1
    assert invoices[0]["amount_paid"] == 0
    assert all(i["number"] for i in invoices)


def test_late_news_of_an_ended_subscription_does_not_hide_its_successor(shop: Shop) -> None:
    first = shop.subscribe()
    shop.double.cancel(first)
    second = shop.subscribe()  # billplane had not heard of the first: checkout is allowed
    events = shop.double.events()
    about_second = [e for e in events if second in str(e["data"]["object"])]
    about_first = [e for e in events if e not in about_second]

    for event in about_second + about_first:
        assert shop.deliver(event).status_code == 200

    assert shop.tenant()["subscription"]["stripe_subscription_id"] == second
    assert (shop.check()["plan"], shop.check()["subscription_status"]) == ("pro", "active")
