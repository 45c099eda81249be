"""A subscription stored from Stripe's webhooks keeps the plan version it bought: a later edit of
the plan (its limits, or its price) reaches new subscribers, not it."""

from typing import Any

from stripe_shop import Shop, create_price

PRO = "/admin/api/projects/realtyos/plans/pro"


def publish_limit(shop: Shop, tenant: str) -> Any:
    answer = shop.check("listings.publish", tenant)
    return answer["plan"], answer["limit"]


def buy_pro(shop: Shop, tenant: str) -> None:
    shop.subscribe(tenant)
    shop.deliver_all()


def test_webhooks_pin_the_version_sold_and_a_later_buyer_gets_the_newest(shop: Shop) -> None:
    buy_pro(shop, "acme")
    lower = {"features": {"exports": True, "listings.publish": {"limit": 5, "reset": "month"}}}
    assert shop.admin.call("PATCH", PRO, json=lower)["version"] == 2
    shop.seed.tenant("realtyos", "globex")
    buy_pro(shop, "globex")

    assert publish_limit(shop, "acme") == ("pro", 100)
    assert publish_limit(shop, "globex") == ("pro", 5)
    listed = shop.admin.call("GET", f"{PRO}/versions")["data"]
    assert [(v["version"], v["tenants"]) for v in listed] == [(1, 1), (2, 1)]


def test_a_new_price_keeps_the_old_prices_subscribers_on_their_version(shop: Shop) -> None:
    buy_pro(shop, "acme")
    dearer = create_price(shop.sdk, 3000)
    changed = shop.admin.call(
        "PATCH",
        PRO,
        json={"stripe_price_id": dearer, "features": {"listings.publish": {"limit": 500}}},
    )
    shop.seed.tenant("realtyos", "globex")
    buy_pro(shop, "globex")

    assert changed["version"] == 2
    assert publish_limit(shop, "acme") == ("pro", 100)
    assert shop.check("exports", "acme")["allowed"] is True
    assert publish_limit(shop, "globex") == ("pro", 500)
    subscribed = shop.tenant("globex")["subscription"]["stripe_price_id"]
    assert subscribed == dearer
