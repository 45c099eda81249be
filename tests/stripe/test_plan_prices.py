"""Plans know their price: creating or editing a plan looks the price up in Stripe."""

from typing import Any

import pytest

from billplane.stripe.gateway import StripeGateway
from stripe_shop import Shop, closed_port_url, create_price

PLANS = "/admin/api/projects/realtyos/plans"


def _plan(shop: Shop, key: str, price: str, expect: int = 201) -> Any:
    body = {"key": key, "name": key, "stripe_price_id": price}
    return shop.admin.call("POST", PLANS, expect, json=body)


def test_a_plan_shows_what_stripe_says_of_its_price(shop: Shop) -> None:
    price = create_price(shop.sdk, 4900, interval="year")

    stripe = _plan(shop, "team", price)["stripe"]

    assert stripe["checked"] is True
    assert (stripe["found"], stripe["active"], stripe["usable"]) == (True, True, True)
    assert (stripe["amount"], stripe["currency"], stripe["interval"]) == (4900, "usd", "year")
    assert stripe["reason"] is None
    listed = shop.admin.call("GET", PLANS)["data"]
    assert next(p for p in listed if p["key"] == "team")["stripe"] == stripe


def test_a_price_stripe_does_not_have_is_saved_and_reported_missing(shop: Shop) -> None:
    stripe = _plan(shop, "team", "price_nope")["stripe"]

    assert (stripe["checked"], stripe["found"], stripe["usable"]) == (True, False, False)
    assert "price_nope" in stripe["reason"]
    assert "test mode" in stripe["reason"]


def test_an_archived_price_is_reported_inactive(shop: Shop) -> None:
    price = create_price(shop.sdk, 900)
    shop.sdk.v1.prices.update(price, params={"active": False})

    stripe = _plan(shop, "team", price)["stripe"]

    assert (stripe["found"], stripe["active"], stripe["usable"]) == (True, False, False)
    assert "inactive" in stripe["reason"]


def test_a_one_time_price_cannot_back_a_plan(shop: Shop) -> None:
    price = create_price(shop.sdk, 900, interval=None)

    stripe = _plan(shop, "team", price)["stripe"]

    assert stripe["type"] == "one_time"
    assert stripe["usable"] is False
    assert "one-time" in stripe["reason"]


def test_a_price_in_another_currency_than_the_other_plans_is_flagged(shop: Shop) -> None:
    price = create_price(shop.sdk, 1900, currency="eur")

    stripe = _plan(shop, "team", price)["stripe"]

    assert stripe["currency"] == "eur"
    assert stripe["usable"] is False
    assert "EUR" in stripe["reason"]
    assert "USD" in stripe["reason"]


def test_editing_a_plan_looks_its_price_up_again(shop: Shop) -> None:
    shop.sdk.v1.prices.update(shop.pro_price, params={"active": False})

    renamed = shop.admin.call("PATCH", f"{PLANS}/pro", json={"name": "Professional"})

    assert renamed["stripe"]["active"] is False
    new_price = create_price(shop.sdk, 2500)
    repriced = shop.admin.call("PATCH", f"{PLANS}/pro", json={"stripe_price_id": new_price})
    assert (repriced["stripe"]["amount"], repriced["stripe"]["usable"]) == (2500, True)


def test_without_a_secret_key_the_plan_is_saved_unchecked(shop: Shop) -> None:
    unconfigured = shop.client.app.state.settings.model_copy(  # type: ignore[attr-defined]
        update={"stripe_secret_key": None}
    )
    shop.client.app.state.stripe = StripeGateway.from_settings(unconfigured)  # type: ignore[attr-defined]

    created = shop.admin.plan("realtyos", "team", stripe_price_id="price_team")
    edited = shop.admin.call("PATCH", f"{PLANS}/pro", json={"name": "Pro 2"})

    assert created["stripe"] == {"checked": False, "reason": "Stripe is not configured"}
    assert edited["stripe"] == created["stripe"]


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_with_stripe_unreachable_the_plan_is_saved_and_says_why_unchecked(
    shop: Shop, method: str
) -> None:
    shop.client.app.state.stripe = StripeGateway("sk_test_x", closed_port_url())  # type: ignore[attr-defined]

    if method == "POST":
        plan = _plan(shop, "team", "price_team")
    else:
        plan = shop.admin.call("PATCH", f"{PLANS}/pro", json={"name": "Pro 2"})

    assert plan["stripe"]["checked"] is False
    assert "could not be reached" in plan["stripe"]["reason"]
    assert "sk_test_x" not in str(plan)


def test_a_free_plan_has_no_stripe_price_to_check(shop: Shop) -> None:
    assert shop.admin.call("GET", f"{PLANS}/free")["stripe"] is None
