"""Stripe's news reaches the tenant's app as `tenant.subscription.updated`,
`tenant.entitlements.updated` and `invoice.payment_failed`, each written once, in sequence,
in the transaction that applied it, however often Stripe repeats itself."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from billplane.models import AppEvent
from stripe_shop import Shop


def test_a_subscription_and_its_failed_payment_are_told_once_in_sequence(
    shop: Shop, session: Session
) -> None:
    shop.seed.webhook_endpoint("realtyos", "https://app.realtyos.test/hooks")
    subscription = shop.subscribe()
    shop.double.fail_payment(subscription)

    shop.deliver_all()
    for event in reversed(shop.double.events()):  # every one again, backwards
        assert shop.deliver(event).status_code == 200

    told = [(e.sequence, e.type, e.payload["data"]) for e in session.scalars(select(AppEvent))]
    assert [(sequence, kind) for sequence, kind, _ in told] == [
        (1, "tenant.subscription.updated"),
        (2, "tenant.entitlements.updated"),
        (3, "invoice.payment_failed"),
    ]
    updated, entitlements, failed = (data for _, _, data in told)
    assert updated["subscription"]["id"] == subscription
    assert (updated["subscription"]["status"], updated["previous"]) == ("past_due", None)
    assert (entitlements["previous_plan"], entitlements["plan"]) == ("free", "pro")
    assert failed["invoice"]["status"] == "open"
    assert failed["invoice"]["attempt_count"] == 1
