"""`POST /v1/checkout/{id}/confirm` and `POST /v1/portal`."""

from typing import Any

import pytest

from conftest import Client
from stripe_shop import ORIGIN, Shop


def _confirm(shop: Shop, session_id: str, api: Client | None = None) -> Any:
    return (api or shop.api).post(f"/v1/checkout/{session_id}/confirm", {})


def _open_and_pay(shop: Shop) -> tuple[str, str]:
    opened = shop.checkout().json()["id"]
    subscription = str(shop.double.complete_checkout(opened)["subscription"])
    return opened, subscription


def _state(shop: Shop) -> dict[str, Any]:
    tenant = shop.tenant()
    return {"plan": tenant["plan"], "subscription": tenant["subscription"]}


def test_confirm_applies_a_paid_checkout_without_waiting_for_the_webhook(shop: Shop) -> None:
    session_id, subscription = _open_and_pay(shop)

    answer = _confirm(shop, session_id)

    assert answer.status_code == 200, answer.text
    entitlements = answer.json()
    assert entitlements["tenant"] == "acme"
    assert entitlements["plan"] == "pro"
    assert entitlements["subscription"]["status"] == "active"
    exports = next(f for f in entitlements["features"] if f["feature"] == "exports")
    assert exports["allowed"] is True
    assert shop.tenant()["subscription"]["stripe_subscription_id"] == subscription
    confirmed = [e for e in shop.audit() if e["actor"] == "checkout-confirm"]
    assert [e["action"] for e in confirmed] == ["subscription.create"]


def test_confirm_then_webhooks_give_the_same_state_as_webhooks_then_confirm(
    shop: Shop,
) -> None:
    session_id, _ = _open_and_pay(shop)

    _confirm(shop, session_id)
    after_confirm = _state(shop)
    shop.deliver_all()
    after_both = _state(shop)
    assert after_both == after_confirm
    # The webhook found nothing left to change about the subscription.
    webhook_changes = [
        e["action"]
        for e in shop.audit()
        if e["actor"] == "stripe-webhook" and e["action"].startswith("subscription.")
    ]
    assert webhook_changes == []

    shop.seed.tenant("realtyos", "globex")
    second_session = shop.checkout("globex").json()["id"]
    shop.double.complete_checkout(second_session)
    shop.deliver_all()
    webhook_first = shop.tenant("globex")["subscription"]
    _confirm(shop, second_session)
    assert shop.tenant("globex")["subscription"] == webhook_first
    assert webhook_first["status"] == after_both["subscription"]["status"] == "active"


def test_confirming_twice_changes_nothing_the_second_time(shop: Shop) -> None:
    session_id, _ = _open_and_pay(shop)

    first = _confirm(shop, session_id).json()
    audited = len(shop.audit())
    second = _confirm(shop, session_id).json()

    assert first == second
    assert len(shop.audit()) == audited


def test_an_unpaid_session_is_not_confirmed(shop: Shop) -> None:
    session_id = shop.checkout().json()["id"]

    answer = _confirm(shop, session_id)

    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "checkout_not_complete"
    assert shop.tenant()["subscription"] is None


def test_an_unknown_session_is_404(shop: Shop) -> None:
    answer = _confirm(shop, "cs_test_doesnotexist")

    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "checkout_session_not_found"


def test_a_session_billplane_did_not_open_is_404(shop: Shop) -> None:
    foreign = shop.sdk.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": shop.pro_price, "quantity": 1}],
            "success_url": f"{ORIGIN}/x",
            "client_reference_id": "realtyos/acme",
        }
    )
    shop.double.complete_checkout(foreign.id)

    answer = _confirm(shop, foreign.id)

    assert answer.status_code == 404
    assert shop.tenant()["subscription"] is None


def test_another_projects_token_cannot_confirm_the_session(shop: Shop) -> None:
    session_id, _ = _open_and_pay(shop)
    other = shop.seed.project("reeltours").token.secret

    answer = _confirm(shop, session_id, Client(shop.client, other))

    assert answer.status_code == 404
    assert shop.tenant()["subscription"] is None


def test_a_token_scoped_to_another_tenant_cannot_confirm_the_session(shop: Shop) -> None:
    session_id, _ = _open_and_pay(shop)
    shop.seed.tenant("realtyos", "globex")
    scoped = shop.admin.call(
        "POST", "/admin/api/projects/realtyos/tokens", 201, json={"name": "g", "tenant": "globex"}
    )

    answer = _confirm(shop, session_id, Client(shop.client, scoped["token"]))

    assert answer.status_code == 403
    assert shop.tenant()["subscription"] is None


def test_a_session_naming_another_customer_is_parked_not_applied(shop: Shop) -> None:
    """Metadata names the tenant, but the customer is not the one billplane created for it."""
    _open_and_pay(shop)
    mine = shop.tenant()["stripe_customer_id"]
    event = shop.double.events("checkout.session.completed")[0]
    forged = {**event, "data": {"object": {**event["data"]["object"], "customer": "cus_forged"}}}

    answer = shop.deliver(forged)

    assert answer.status_code == 500
    [stored] = shop.events()
    assert stored["outcome"] == "failed"
    assert stored["error"].startswith("unverified_link")
    assert shop.tenant()["subscription"] is None
    assert shop.tenant()["stripe_customer_id"] == mine


# --- portal ---------------------------------------------------------------------------------


def test_the_portal_needs_a_stripe_customer_first(shop: Shop) -> None:
    answer = shop.api.post("/v1/portal", {"tenant": "acme", "return_url": f"{ORIGIN}/billing"})

    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "no_stripe_customer"


def test_the_portal_opens_a_session_for_the_tenants_customer(shop: Shop) -> None:
    shop.subscribe()

    answer = shop.api.post("/v1/portal", {"tenant": "acme", "return_url": f"{ORIGIN}/billing"})

    assert answer.status_code == 200, answer.text
    portal = answer.json()
    assert portal["url"].startswith(shop.double.base_url)
    stored = shop.double.get(portal["id"])
    assert stored["customer"] == shop.tenant()["stripe_customer_id"]
    assert stored["return_url"] == f"{ORIGIN}/billing"


@pytest.mark.parametrize("url", ["https://evil.test/", "http://app.realtyos.test/billing"])
def test_the_portal_return_url_must_be_under_the_projects_origins(shop: Shop, url: str) -> None:
    shop.subscribe()

    answer = shop.api.post("/v1/portal", {"tenant": "acme", "return_url": url})

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "url_not_allowed"
