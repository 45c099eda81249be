"""`POST /v1/checkout`: a subscription checkout tied to the tenant, through the real SDK."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import Client
from factories import Seed
from stripe_shop import CANCEL_URL, ORIGIN, SUCCESS_URL, Shop


def _session(shop: Shop, session_id: str) -> Any:
    return shop.sdk.v1.checkout.sessions.retrieve(
        session_id, params={"expand": ["line_items"]}
    ).to_dict()


def test_checkout_opens_a_subscription_session_for_the_plans_price(shop: Shop) -> None:
    answer = shop.checkout()

    assert answer.status_code == 200, answer.text
    opened = answer.json()
    assert opened["url"].startswith(shop.double.base_url)
    session = _session(shop, opened["id"])
    assert session["mode"] == "subscription"
    assert [line["price"]["id"] for line in session["line_items"]["data"]] == [shop.pro_price]
    assert session["client_reference_id"] == "realtyos/acme"
    assert session["metadata"] == {"billplane_project": "realtyos", "billplane_tenant": "acme"}
    assert session["success_url"] == f"{SUCCESS_URL}?session_id={{CHECKOUT_SESSION_ID}}"
    assert session["cancel_url"] == CANCEL_URL


def test_the_sessions_subscription_carries_the_tenant_in_its_metadata(shop: Shop) -> None:
    subscription = shop.subscribe()

    found = shop.sdk.v1.subscriptions.retrieve(subscription)

    assert found.metadata.to_dict() == {
        "billplane_project": "realtyos",
        "billplane_tenant": "acme",
    }


def test_the_first_checkout_creates_the_customer_once_and_stores_it(shop: Shop) -> None:
    first = shop.checkout().json()
    second = shop.checkout().json()

    customers = shop.sdk.v1.customers.list().data
    assert len(customers) == 1
    customer = customers[0]
    assert customer.metadata is not None
    assert customer.metadata.to_dict() == {
        "billplane_project": "realtyos",
        "billplane_tenant": "acme",
    }
    assert customer.email == "ops@acme.test"
    assert shop.tenant()["stripe_customer_id"] == customer.id
    assert _session(shop, first["id"])["customer"] == customer.id
    assert _session(shop, second["id"])["customer"] == customer.id
    link = [e for e in shop.audit() if e["action"] == "tenant.link_customer"]
    assert [e["after"] for e in link] == [{"stripe_customer_id": customer.id}]


def test_a_success_url_with_a_query_gets_the_session_id_appended(shop: Shop) -> None:
    answer = shop.checkout(success_url=f"{ORIGIN}/done?plan=pro#top").json()

    expected = f"{ORIGIN}/done?plan=pro&session_id={{CHECKOUT_SESSION_ID}}#top"
    assert _session(shop, answer["id"])["success_url"] == expected


def test_a_success_url_naming_the_placeholder_is_kept(shop: Shop) -> None:
    url = f"{ORIGIN}/done/{{CHECKOUT_SESSION_ID}}"
    answer = shop.checkout(success_url=url).json()

    assert _session(shop, answer["id"])["success_url"] == url


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.test/billing",
        "http://app.realtyos.test/billing",  # another scheme is another origin
        "https://app.realtyos.test:8443/billing",
        "https://app.realtyos.test.evil.test/billing",
        "https://app.realtyos.test@evil.test/billing",
        "https://evil.test\\@app.realtyos.test/billing",
        "//evil.test/billing",
        "javascript:alert(1)",
        "/billing",
    ],
)
def test_return_urls_outside_the_projects_origins_are_refused(shop: Shop, url: str) -> None:
    for field in ("success_url", "cancel_url"):
        answer = shop.checkout(**{field: url})

        assert answer.status_code == 400, (field, answer.text)
        assert answer.json()["error"]["code"] == "url_not_allowed"
        assert answer.json()["error"]["param"] == field
    assert shop.sdk.v1.checkout.sessions.list().data == []


def test_an_origin_with_a_path_allows_only_urls_below_it(
    seed: Seed, shop: Shop, client: TestClient
) -> None:
    token = seed.project("reeltours", origins=["https://tours.test/app"]).token.secret
    seed.plan("reeltours", "pro", stripe_price_id=shop.pro_price)
    seed.tenant("reeltours", "t1")
    api = Client(client, token)

    def checkout(url: str) -> int:
        body = {"tenant": "t1", "plan": "pro", "success_url": url, "cancel_url": url}
        return int(api.post("/v1/checkout", body).status_code)

    assert checkout("https://tours.test/app/billing") == 200
    assert checkout("https://tours.test/application") == 400
    assert checkout("https://tours.test/other") == 400


def test_a_tenant_with_a_live_subscription_is_sent_to_the_portal(shop: Shop) -> None:
    shop.subscribe()
    shop.deliver_all()

    answer = shop.checkout()

    assert answer.status_code == 409
    error = answer.json()["error"]
    assert error["code"] == "subscription_exists"
    assert error["portal"] == "/v1/portal"
    assert "portal" in error["message"]


def test_a_canceled_subscription_allows_a_new_checkout(shop: Shop) -> None:
    subscription = shop.subscribe()
    shop.double.cancel(subscription)
    shop.deliver_all()

    assert shop.checkout().status_code == 200


def test_plan_trial_days_become_a_stripe_trial_that_grants_access(shop: Shop) -> None:
    shop.admin.call("PATCH", "/admin/api/projects/realtyos/plans/pro", json={"trial_days": 14})

    subscription = shop.subscribe()
    shop.deliver_all()

    found = shop.sdk.v1.subscriptions.retrieve(subscription)
    assert found.status == "trialing"
    assert found.trial_end == shop.double.now + 14 * 86400
    check = shop.check()
    assert (check["allowed"], check["plan"], check["subscription_status"]) == (
        True,
        "pro",
        "trialing",
    )
    assert shop.tenant()["subscription"]["trial_end"] is not None


@pytest.mark.parametrize(
    ("plan", "code", "status"),
    [("free", "plan_not_purchasable", 409), ("gold", "plan_not_found", 404)],
)
def test_only_a_paid_active_plan_can_be_bought(
    shop: Shop, plan: str, code: str, status: int
) -> None:
    answer = shop.checkout(plan=plan)

    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code


def test_an_archived_plan_cannot_be_bought(shop: Shop) -> None:
    shop.admin.call("PATCH", "/admin/api/projects/realtyos/plans/pro", json={"status": "archived"})

    answer = shop.checkout()

    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "plan_not_purchasable"


def test_an_archived_tenant_cannot_buy_a_plan_until_restored(shop: Shop) -> None:
    """Its checks are refused: a subscription bought now would pay for nothing usable."""
    tenant = "/admin/api/projects/realtyos/tenants/acme"
    shop.admin.call("PATCH", tenant, json={"status": "archived"})
    sessions_before = len(shop.double.state.all("checkout.session"))

    refused = shop.checkout()
    sessions_after_refusal = len(shop.double.state.all("checkout.session"))
    shop.admin.call("PATCH", tenant, json={"status": "active"})
    restored = shop.checkout()

    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "tenant_archived"
    assert sessions_after_refusal == sessions_before  # Stripe was not asked
    assert restored.status_code == 200, restored.text


def test_a_plan_whose_price_stripe_archived_is_refused_before_stripe_is_asked(
    shop: Shop,
) -> None:
    shop.sdk.v1.prices.update(shop.pro_price, params={"active": False})
    shop.admin.call("PATCH", "/admin/api/projects/realtyos/plans/pro", json={"name": "Pro"})

    answer = shop.checkout()

    assert answer.status_code == 409
    assert "archived" in answer.json()["error"]["message"]
    assert shop.sdk.v1.customers.list().data == []


def test_a_tenant_scoped_token_cannot_check_out_another_tenant(shop: Shop) -> None:
    shop.seed.tenant("realtyos", "globex")
    scoped = shop.admin.call(
        "POST", "/admin/api/projects/realtyos/tokens", 201, json={"name": "a", "tenant": "acme"}
    )
    api = Client(shop.client, scoped["token"])

    body = {"plan": "pro", "success_url": SUCCESS_URL, "cancel_url": CANCEL_URL}
    assert api.post("/v1/checkout", {**body, "tenant": "globex"}).status_code == 403
    assert api.post("/v1/checkout", {**body, "tenant": "acme"}).status_code == 200


def test_checkout_needs_a_token(shop: Shop) -> None:
    body = {"tenant": "acme", "plan": "pro", "success_url": SUCCESS_URL, "cancel_url": CANCEL_URL}
    assert shop.client.post("/v1/checkout", json=body).status_code == 401
