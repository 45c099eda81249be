"""Top-ups: credits bought in a payment-mode Checkout of the Stripe double land exactly once,
whether the webhook, the confirm call or both arrive, in any order, repeated."""

from typing import Any

from sqlalchemy.orm import Session

from conftest import Clock
from ledgers import ledger_balance
from stripe_shop import CANCEL_URL, SUCCESS_URL, Shop, create_price


def _sell(shop: Shop, credits: int = 500) -> str:
    """A one-time price the project sells as a top-up of `credits`; the price id."""
    price = create_price(shop.sdk, 900, interval=None, name=f"{credits} credits")
    pool = {"key": "credits", "name": "Credits", "packs": {price: credits}}
    shop.admin.call("POST", "/admin/api/projects/realtyos/credit-pools", 201, json=pool)
    return price


def _buy(shop: Shop, price: str) -> Any:
    body = {"tenant": "acme", "price": price, "success_url": SUCCESS_URL, "cancel_url": CANCEL_URL}
    opened = shop.api.post("/v1/topups", body)
    assert opened.status_code == 200, opened.text
    return opened.json()


def _balance(shop: Shop) -> int:
    (pool,) = shop.api.get("/v1/tenants/acme/balances").json()["pools"]
    return int(pool["balance"])


def _topups(shop: Shop) -> list[Any]:
    (pool,) = shop.api.get("/v1/tenants/acme/balances").json()["pools"]
    return [e for e in pool["ledger"] if e["kind"] == "topup"]


def test_a_top_up_opens_a_payment_checkout_of_its_price(shop: Shop) -> None:
    price = _sell(shop)
    opened = _buy(shop, price)
    assert (opened["pool"], opened["credits"]) == ("credits", 500)
    session = shop.sdk.v1.checkout.sessions.retrieve(opened["id"])
    assert session.mode == "payment"
    assert session.to_dict()["metadata"]["billplane_topup_price"] == price
    assert _balance(shop) == 0  # nothing until it is paid


def test_confirm_and_webhooks_land_the_credits_once(
    shop: Shop, session: Session, clock: Clock
) -> None:
    price = _sell(shop)
    opened = _buy(shop, price)
    shop.double.complete_checkout(opened["id"])
    for _ in range(2):
        confirmed = shop.api.post(f"/v1/checkout/{opened['id']}/confirm", {})
        assert confirmed.status_code == 200, confirmed.text
    shop.deliver_all()
    shop.deliver_all()  # Stripe repeats deliveries
    assert _balance(shop) == 500
    assert [e["amount"] for e in _topups(shop)] == [500]
    assert ledger_balance(session, clock()) == 500


def test_the_webhook_first_then_confirm_lands_them_once(
    shop: Shop, session: Session, clock: Clock
) -> None:
    price = _sell(shop)
    opened = _buy(shop, price)
    shop.double.complete_checkout(opened["id"])
    shop.deliver_all({"checkout.session.completed"})
    assert _balance(shop) == 500
    confirmed = shop.api.post(f"/v1/checkout/{opened['id']}/confirm", {})
    assert confirmed.status_code == 200, confirmed.text
    assert [e["amount"] for e in _topups(shop)] == [500]
    assert ledger_balance(session, clock()) == 500


def test_an_unpaid_top_up_lands_nothing_and_an_unknown_price_is_refused(shop: Shop) -> None:
    price = _sell(shop)
    opened = _buy(shop, price)
    unpaid = shop.api.post(f"/v1/checkout/{opened['id']}/confirm", {})
    assert unpaid.json()["error"]["code"] == "checkout_not_complete"
    body = {"tenant": "acme", "price": "price_nope", "success_url": SUCCESS_URL}
    refused = shop.api.post("/v1/topups", body | {"cancel_url": CANCEL_URL})
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "pool_not_found"
    assert _balance(shop) == 0
