"""`POST /admin/api/stripe/sync`: reconciliation repairs what missed webhooks left wrong."""

from typing import Any

from billplane.stripe.gateway import StripeGateway
from stripe_shop import Shop, closed_port_url


def _sync(shop: Shop, expect: int = 200) -> Any:
    return shop.admin.call("POST", "/admin/api/stripe/sync", expect)


def test_sync_stores_a_subscription_whose_webhooks_never_arrived(shop: Shop) -> None:
    subscription = shop.subscribe()
    assert shop.check()["plan"] == "free"

    report = _sync(shop)

    assert shop.check()["plan"] == "pro"
    assert shop.tenant()["subscription"]["stripe_subscription_id"] == subscription
    [change] = report["changes"]
    assert change["action"] == "subscription.create"
    assert change["tenant"] == "realtyos/acme"
    assert change["after"]["status"] == "active"
    assert (report["customers"], report["subscriptions"], report["problems"]) == (1, 1, [])
    synced = [e for e in shop.audit() if e["actor"] == "stripe-sync"]
    assert [e["action"] for e in synced] == ["subscription.create"]


def test_sync_repairs_a_missed_update_and_then_has_nothing_to_do(shop: Shop) -> None:
    subscription = shop.subscribe()
    shop.deliver_all()
    shop.double.fail_payment(subscription, status="unpaid")  # its webhooks are lost

    report = _sync(shop)

    [change] = report["changes"]
    assert (change["before"]["status"], change["after"]["status"]) == ("active", "unpaid")
    assert shop.check()["allowed"] is False
    assert _sync(shop)["changes"] == []


def test_sync_links_a_customer_billplane_created_but_never_stored(shop: Shop) -> None:
    gateway: StripeGateway = shop.client.app.state.stripe  # type: ignore[attr-defined]
    customer = gateway.create_customer(
        metadata={"billplane_project": "realtyos", "billplane_tenant": "acme"},
        email=None,
        name=None,
        idempotency_key="test-lost-write",
    )
    shop.sdk.v1.customers.create(params={"email": "not-ours@x.test"})

    report = _sync(shop)

    assert shop.tenant()["stripe_customer_id"] == customer.id
    assert [c["action"] for c in report["changes"]] == ["tenant.link_customer"]


def test_sync_unbinds_a_customer_deleted_in_stripe(shop: Shop) -> None:
    subscription = shop.subscribe()
    shop.deliver_all()
    shop.double.delete_customer(shop.tenant()["stripe_customer_id"])

    report = _sync(shop)

    tenant = shop.tenant()
    assert tenant["stripe_customer_id"] is None
    assert tenant["subscription"]["status"] == "canceled"
    assert shop.check()["plan"] == "free"
    assert {c["action"] for c in report["changes"]} == {
        "tenant.unlink_customer",
        "subscription.update",
    }, subscription


def test_sync_reports_what_it_cannot_repair(shop: Shop) -> None:
    first = shop.subscribe()
    shop.deliver_all()
    customer = shop.tenant()["stripe_customer_id"]
    second = shop.sdk.v1.subscriptions.create(
        params={"customer": customer, "items": [{"price": shop.pro_price}]}
    )

    report = _sync(shop)

    assert len(report["problems"]) == 1
    assert second.id in report["problems"][0]
    assert shop.tenant()["subscription"]["stripe_subscription_id"] == first


def test_sync_with_stripe_unreachable_is_503_and_changes_nothing(shop: Shop) -> None:
    shop.subscribe()
    shop.client.app.state.stripe = StripeGateway("sk_test_x", closed_port_url())  # type: ignore[attr-defined]

    error = _sync(shop, 503)["error"]

    assert error["code"] == "stripe_unavailable"
    assert shop.tenant()["subscription"] is None


def test_stripe_check_sees_key_plans_and_webhook_endpoint(shop: Shop) -> None:
    url = "https://billplane.example/webhooks/stripe"
    before = shop.admin.call("GET", "/admin/api/stripe/check")
    assert (before["configured"], before["mode"], before["key"]["valid"]) == (True, "test", True)
    assert [(p["plan"], p["stripe"]["usable"]) for p in before["plans"]] == [("pro", True)]
    assert before["webhook"]["url"] == url
    assert before["webhook"]["registered"] is False
    assert before["ok"] is False

    shop.sdk.v1.webhook_endpoints.create(
        params={"url": url, "enabled_events": ["customer.subscription.updated"]}
    )
    partial = shop.admin.call("GET", "/admin/api/stripe/check")["webhook"]
    assert partial["registered"] is True
    assert "invoice.paid" in partial["missing_events"]
    assert "customer.subscription.updated" not in partial["missing_events"]

    shop.sdk.v1.webhook_endpoints.update(partial["endpoint"], params={"enabled_events": ["*"]})
    after = shop.admin.call("GET", "/admin/api/stripe/check")
    assert after["webhook"]["missing_events"] == []
    assert after["ok"] is True
