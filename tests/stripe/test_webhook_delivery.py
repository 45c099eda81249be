"""`POST /webhooks/stripe`: signatures, repeats, failures, retries, unknown and foreign events."""

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg import errors as pg
from sqlalchemy import exc as sa

from billplane.stripe.gateway import StripeGateway
from billplane.webhooks import handlers
from conftest import ADMIN_TOKEN
from stripe_shop import Shop, closed_port_url


def _event_ids(shop: Shop) -> list[str]:
    return [e["id"] for e in shop.events()]


def test_a_bad_signature_is_refused_and_nothing_is_recorded(shop: Shop) -> None:
    subscription = shop.subscribe()
    event = shop.double.events("customer.subscription.created")[0]

    answer = shop.deliver(event, secret="whsec_someone_else")

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_signature"
    assert _event_ids(shop) == []
    assert shop.tenant()["subscription"] is None, subscription


def test_a_stale_signature_is_refused(shop: Shop) -> None:
    shop.subscribe()
    event = shop.double.events("customer.subscription.created")[0]

    answer = shop.deliver(event, timestamp=int(time.time()) - 3600)

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_signature"
    assert _event_ids(shop) == []


def test_a_signature_dated_far_ahead_is_refused(shop: Shop) -> None:
    """Stripe's SDK checks only that a signature is not too old: a year ahead is refused too."""
    shop.subscribe()
    event = shop.double.events("customer.subscription.created")[0]

    answer = shop.deliver(event, timestamp=int(time.time()) + 365 * 86400)

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_signature"
    assert "future" in answer.json()["error"]["message"]
    assert _event_ids(shop) == []
    # A clock a little fast is not refused (Stripe's five minutes, either way).
    assert shop.deliver(event, timestamp=int(time.time()) + 60).status_code == 200


def test_a_body_without_a_signature_header_is_refused(shop: Shop) -> None:
    answer = shop.client.post("/webhooks/stripe", content=b'{"id": "evt_1"}')

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_signature"


def test_without_a_webhook_secret_every_delivery_is_refused_with_a_clear_message(
    shop: Shop,
) -> None:
    shop.subscribe()
    event = shop.double.events("customer.subscription.created")[0]
    shop.client.app.state.settings = shop.client.app.state.settings.model_copy(  # type: ignore[attr-defined]
        update={"stripe_webhook_secret": None}
    )

    answer = shop.deliver(event)

    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "webhook_not_configured"
    assert "STRIPE_WEBHOOK_SECRET" in answer.json()["error"]["message"]
    assert _event_ids(shop) == []


def test_an_event_is_applied_once_and_a_repeat_changes_nothing(shop: Shop) -> None:
    subscription = shop.subscribe()
    event = shop.double.events("customer.subscription.created")[0]

    first = shop.deliver(event)
    audited = len(shop.audit())
    second = shop.deliver(event)

    assert first.status_code == second.status_code == 200
    assert first.json() | {"duplicate": True} == second.json()
    assert first.json()["outcome"] == "processed"
    assert _event_ids(shop) == [event["id"]]
    assert len(shop.audit()) == audited
    assert shop.tenant()["subscription"]["stripe_subscription_id"] == subscription
    assert shop.check()["plan"] == "pro"


def test_an_unknown_event_type_is_stored_as_ignored(shop: Shop) -> None:
    shop.sdk.v1.products.create(params={"name": "Add-on"})
    event = shop.double.events("product.created")[-1]

    answer = shop.deliver(event)

    assert answer.status_code == 200
    assert answer.json()["outcome"] == "ignored"
    assert [(e["id"], e["outcome"]) for e in shop.events()] == [(event["id"], "ignored")]
    assert shop.events()[0]["reason"] == "billplane does not act on product.created events."


def test_a_subscription_of_a_customer_billplane_did_not_create_is_ignored(shop: Shop) -> None:
    customer = shop.sdk.v1.customers.create(params={"email": "someone@else.test"})
    shop.sdk.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": shop.pro_price}]}
    )
    event = shop.double.events("customer.subscription.created")[-1]

    answer = shop.deliver(event)

    assert answer.json()["outcome"] == "ignored"
    assert shop.tenant()["subscription"] is None
    assert "Not about a tenant, customer or subscription" in shop.events()[0]["reason"]


def test_an_event_whose_object_stripe_no_longer_has_is_ignored_saying_so(shop: Shop) -> None:
    """Not `processed`: nothing could be applied, and the operator is told why."""
    subscription = shop.subscribe()
    shop.deliver_all({"checkout.session.completed"})
    invoice = shop.double.events("invoice.paid")[0]
    updated = shop.double.events("customer.subscription.created")[0]
    shop.double.forget(subscription)
    shop.double.forget(invoice["data"]["object"]["id"])

    answers = [shop.deliver(event).json()["outcome"] for event in (updated, invoice)]

    assert answers == ["ignored", "ignored"]
    reasons = {e["id"]: (e["outcome"], e["reason"]) for e in shop.events()}
    gone = "(deleted, or test data cleared): its state is unknown, so nothing was changed."
    assert reasons[updated["id"]] == (
        "ignored",
        f"Stripe no longer has subscription {subscription} {gone}",
    )
    invoice_id = invoice["data"]["object"]["id"]
    assert reasons[invoice["id"]] == (
        "ignored",
        f"Stripe no longer has invoice {invoice_id} {gone}",
    )
    assert shop.tenant()["subscription"]["status"] == "active"  # as the checkout left it


def test_an_event_from_the_other_mode_is_refused(shop: Shop) -> None:
    shop.subscribe()
    event: dict[str, Any] = shop.double.events("customer.subscription.created")[0]

    answer = shop.deliver({**event, "livemode": True})

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "livemode_mismatch"
    assert _event_ids(shop) == []


def test_a_failure_rolls_back_answers_500_and_the_retry_is_processed(shop: Shop) -> None:
    shop.subscribe()
    event = shop.double.events("customer.subscription.created")[0]
    app = shop.client.app
    working = app.state.stripe  # type: ignore[attr-defined]
    app.state.stripe = StripeGateway(  # type: ignore[attr-defined]
        "sk_test_billplane_stripe_tests", closed_port_url()
    )

    failed = shop.deliver(event)

    assert failed.status_code == 500
    assert failed.json()["error"]["code"] == "webhook_failed"
    assert shop.tenant()["subscription"] is None
    [stored] = shop.events()
    assert stored["outcome"] == "failed"
    assert "stripe_unavailable" in stored["error"]
    assert not [e for e in shop.audit() if e["actor"] == "stripe-webhook"]

    app.state.stripe = working  # type: ignore[attr-defined]
    retried = shop.deliver(event)

    assert retried.status_code == 200
    assert retried.json()["duplicate"] is False
    assert retried.json()["outcome"] == "processed"
    assert shop.events()[0]["outcome"] == "processed"
    assert shop.events()[0]["error"] is None
    assert shop.tenant()["subscription"]["status"] == "active"


def test_a_database_outage_while_applying_is_a_503_and_nothing_is_recorded(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """There is nowhere to record the failure, nor need to: Stripe delivers the event again,
    and that delivery is processed as the first."""
    shop.subscribe()
    event = shop.double.events("customer.subscription.created")[0]
    ended = sa.OperationalError("UPDATE tenants ...", {}, pg.AdminShutdown("terminating"))

    def outage(*_args: Any) -> Any:
        raise ended

    with monkeypatch.context() as patched:
        patched.setattr(handlers, "apply", outage)
        refused = shop.deliver(event)

    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "database_unavailable"
    assert refused.headers["Retry-After"] == "1"
    assert shop.events() == []
    retried = shop.deliver(event)
    assert (retried.status_code, retried.json()["outcome"]) == (200, "processed")


def test_a_failed_event_can_be_replayed_by_the_operator(shop: Shop) -> None:
    shop.subscribe()
    event = shop.double.events("customer.subscription.created")[0]
    app = shop.client.app
    working = app.state.stripe  # type: ignore[attr-defined]
    app.state.stripe = StripeGateway("sk_test_x", closed_port_url())  # type: ignore[attr-defined]
    assert shop.deliver(event).status_code == 500

    refused = shop.client.post(
        f"/admin/api/events/{event['id']}/replay",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "stripe_unavailable"

    app.state.stripe = working  # type: ignore[attr-defined]
    replayed = shop.admin.call("POST", f"/admin/api/events/{event['id']}/replay")

    assert replayed["outcome"] == "processed"
    assert shop.tenant()["subscription"]["status"] == "active"
    assert shop.events(outcome="failed") == []


def test_replaying_an_unknown_event_is_404(shop: Shop) -> None:
    error = shop.admin.call("POST", "/admin/api/events/evt_nope/replay", 404)["error"]
    assert error["code"] == "event_not_found"


def test_every_change_a_webhook_makes_is_audited(shop: Shop) -> None:
    subscription = shop.subscribe()
    shop.deliver_all()

    entries = [e for e in shop.audit() if e["actor"] == "stripe-webhook"]

    actions = {e["action"] for e in entries}
    assert {"subscription.create", "invoice.record"} <= actions
    created = next(e for e in entries if e["action"] == "subscription.create")
    assert created["target"] == f"subscription:realtyos/acme/{subscription}"
    assert created["before"] is None
    assert created["after"]["status"] == "active"
    assert created["after"]["stripe_price_id"] == shop.pro_price


def test_events_are_listed_newest_first_with_paging(shop: Shop) -> None:
    shop.subscribe()
    delivered = [a["id"] for a in shop.deliver_all()]

    first = shop.admin.call("GET", "/admin/api/events", params={"limit": 2})
    rest = shop.admin.call(
        "GET", "/admin/api/events", params={"limit": 100, "starting_after": first["data"][-1]["id"]}
    )

    assert first["has_more"] is True
    assert [e["id"] for e in first["data"] + rest["data"]] == delivered[::-1]
    detail = shop.admin.call("GET", f"/admin/api/events/{delivered[0]}")
    assert detail["payload"]["id"] == delivered[0]


@pytest.mark.parametrize("path", ["/admin/api/events", "/admin/api/events/evt_1/replay"])
def test_the_event_admin_api_needs_the_admin_token(client: TestClient, path: str) -> None:
    method = "GET" if path.endswith("events") else "POST"
    assert client.request(method, path).status_code == 401
