"""Refunds of top-ups: a refunded charge (`charge.refunded`, signed as Stripe signs it) takes
back the unspent share of the top-up's credits exactly once, whatever the order and repeats of
the events, and records what was spent already; the billing history shows each top-up."""

from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from billplane.models import CreditTopup
from conftest import Clock
from ledgers import ledger_balance
from stripe_shop import CANCEL_URL, SUCCESS_URL, Shop, create_price

HISTORY = "/admin/api/projects/realtyos/tenants/acme/invoices"


def _sell(shop: Shop, credits: int = 500, amount: int = 900) -> str:
    """A pack of `credits` for `amount` cents, and `ai.chat` costing 1 credit; the price id."""
    shop.admin.feature("realtyos", "ai.chat", "metered")
    features = {"listings.publish": {"limit": 3, "reset": "month"}, "ai.chat": True}
    shop.admin.call("PATCH", "/admin/api/projects/realtyos/plans/free", json={"features": features})
    price = create_price(shop.sdk, amount, interval=None, name=f"{credits} credits")
    pool = {"key": "credits", "name": "Credits", "packs": {price: credits}, "costs": {"ai.chat": 1}}
    shop.admin.call("POST", "/admin/api/projects/realtyos/credit-pools", 201, json=pool)
    return price


def _buy(shop: Shop, price: str) -> tuple[str, str]:
    """A top-up opened and paid in Stripe (no event delivered yet): (session id, payment)."""
    body = {"tenant": "acme", "price": price, "success_url": SUCCESS_URL, "cancel_url": CANCEL_URL}
    opened = shop.api.post("/v1/topups", body)
    assert opened.status_code == 200, opened.text
    paid = shop.double.complete_checkout(opened.json()["id"])
    return str(paid["id"]), str(paid["payment_intent"])


def _refund(shop: Shop, payment_intent: str, amount: int | None = None) -> None:
    params: dict[str, Any] = {"payment_intent": payment_intent}
    if amount is not None:
        params["amount"] = amount
    shop.sdk.v1.refunds.create(params=params)  # type: ignore[arg-type]


def _deliver(shop: Shop, event_type: str, which: int | None = None) -> None:
    events = shop.double.events(event_type)
    for event in events if which is None else [events[which]]:
        answer = shop.deliver(event)
        assert answer.status_code == 200, answer.text


def _spend(shop: Shop, quantity: int) -> None:
    body = {"tenant": "acme", "feature": "ai.chat", "quantity": quantity, "enforce": True}
    used = shop.api.post("/v1/usage", body | {"idempotency_key": f"spend-{quantity}"})
    assert used.status_code == 201, used.text


def _pool(shop: Shop) -> Any:
    answer = shop.api.get("/v1/tenants/acme/balances")
    assert answer.status_code == 200, answer.text
    (pool,) = answer.json()["pools"]
    return pool


def _kinds(shop: Shop, kind: str) -> list[Any]:
    return [e for e in _pool(shop)["ledger"] if e["kind"] == kind]


def _topup(shop: Shop) -> Any:
    (topup,) = shop.admin.call("GET", HISTORY)["topups"]
    return topup


def test_a_wholly_refunded_top_up_takes_its_credits_back(
    shop: Shop, session: Session, clock: Clock
) -> None:
    checkout_id, payment = _buy(shop, _sell(shop))
    _deliver(shop, "checkout.session.completed")
    assert _pool(shop)["balance"] == 500

    _refund(shop, payment)
    _deliver(shop, "charge.refunded")

    assert _pool(shop)["balance"] == 0
    (refund,) = _kinds(shop, "refund")
    assert (refund["amount"], refund["unrecovered"]) == (-500, 0)
    assert refund["idempotency_key"] == f"refund:{checkout_id}:900"
    assert ledger_balance(session, clock()) == 0
    assert _topup(shop)["status"] == "refunded"


def test_partial_refunds_take_back_their_share_rounded_down_on_the_running_total(
    shop: Shop, session: Session, clock: Clock
) -> None:
    # 500 credits for 9.00: 1.00 refunded is 55.5 credits, 3.00 in all is 166.6.
    _, payment = _buy(shop, _sell(shop, credits=500, amount=900))
    _deliver(shop, "checkout.session.completed")

    _refund(shop, payment, 100)
    _deliver(shop, "charge.refunded", -1)
    assert _pool(shop)["balance"] == 500 - 55
    assert _topup(shop)["status"] == "partially_refunded"

    _refund(shop, payment, 200)
    _deliver(shop, "charge.refunded", -1)
    assert _pool(shop)["balance"] == 500 - 166  # not 500 - 55 - 111 rounded twice apart
    assert [e["amount"] for e in _kinds(shop, "refund")] == [-111, -55]

    _refund(shop, payment)  # the rest: every credit goes back
    _deliver(shop, "charge.refunded", -1)
    assert _pool(shop)["balance"] == 0
    assert sum(e["amount"] for e in _kinds(shop, "refund")) == -500
    assert ledger_balance(session, clock()) == 0
    topup = _topup(shop)
    assert (topup["status"], topup["amount_refunded"], topup["credits_refunded"]) == (
        "refunded",
        900,
        500,
    )


def test_a_refund_after_spending_removes_only_the_unspent_part_and_records_the_rest(
    shop: Shop, session: Session, clock: Clock
) -> None:
    _, payment = _buy(shop, _sell(shop))
    _deliver(shop, "checkout.session.completed")
    _spend(shop, 450)

    _refund(shop, payment)
    _deliver(shop, "charge.refunded")

    pool = _pool(shop)
    (refund,) = _kinds(shop, "refund")
    assert pool["balance"] == 0
    assert (refund["amount"], refund["unrecovered"]) == (-50, 450)
    assert "450 credits were spent already" in refund["reason"]
    assert [e["amount"] for e in _kinds(shop, "deduction")] == [-450]  # the use stands
    topup = _topup(shop)
    assert (topup["credits_refunded"], topup["credits_unrecovered"]) == (500, 450)
    assert ledger_balance(session, clock()) == 0


def test_repeated_refund_events_take_credits_back_once(
    shop: Shop, session: Session, clock: Clock
) -> None:
    checkout_id, payment = _buy(shop, _sell(shop))
    _refund(shop, payment, 450)  # half: 250 credits

    for _ in range(2):
        _deliver(shop, "checkout.session.completed")
        _deliver(shop, "charge.refunded")
    (event,) = shop.double.events("charge.refunded")
    shop.deliver(event)
    confirmed = shop.api.post(f"/v1/checkout/{checkout_id}/confirm", {})
    assert confirmed.status_code == 200, confirmed.text

    assert _pool(shop)["balance"] == 250
    assert [e["amount"] for e in _kinds(shop, "topup")] == [500]
    assert [e["amount"] for e in _kinds(shop, "refund")] == [-250]
    assert ledger_balance(session, clock()) == 250


def test_a_refund_arriving_before_the_completed_checkout_is_not_lost(
    shop: Shop, session: Session, clock: Clock
) -> None:
    checkout_id, payment = _buy(shop, _sell(shop))
    _refund(shop, payment, 450)

    _deliver(shop, "charge.refunded")  # first: it lands the top-up, then takes half back
    assert _pool(shop)["balance"] == 250
    _deliver(shop, "checkout.session.completed")  # then: nothing more lands
    confirmed = shop.api.post(f"/v1/checkout/{checkout_id}/confirm", {})
    assert confirmed.status_code == 200, confirmed.text

    assert _pool(shop)["balance"] == 250
    assert [e["amount"] for e in _kinds(shop, "topup")] == [500]
    assert [e["amount"] for e in _kinds(shop, "refund")] == [-250]
    assert _topup(shop)["status"] == "partially_refunded"
    assert ledger_balance(session, clock()) == 250


def test_an_older_refund_arriving_after_a_newer_one_changes_nothing(
    shop: Shop, session: Session, clock: Clock
) -> None:
    _, payment = _buy(shop, _sell(shop))
    _deliver(shop, "checkout.session.completed")
    _refund(shop, payment, 300)
    _refund(shop, payment, 300)

    _deliver(shop, "charge.refunded", 1)  # the newer: 6.00 of 9.00 refunded
    _deliver(shop, "charge.refunded", 0)  # the older, late

    assert _pool(shop)["balance"] == 500 - 333
    assert [e["amount"] for e in _kinds(shop, "refund")] == [-333]
    assert ledger_balance(session, clock()) == 500 - 333


def test_the_billing_history_lists_top_ups_beside_invoices(shop: Shop) -> None:
    price = _sell(shop)
    subscription = shop.subscribe()
    assert subscription
    checkout_id, payment = _buy(shop, price)
    shop.deliver_all()
    history = shop.admin.call("GET", HISTORY)

    assert [i["status"] for i in history["data"]] == ["paid"]  # the invoice, as before
    assert history["has_more"] is False
    (topup,) = history["topups"]
    assert topup["id"] == checkout_id
    assert topup["payment_intent"] == payment
    assert (topup["pool"], topup["credits"], topup["price"]) == ("credits", 500, price)
    assert (topup["amount_paid"], topup["currency"], topup["status"]) == (900, "usd", "paid")
    assert (topup["amount_refunded"], topup["credits_refunded"]) == (0, 0)
    assert topup["created"]


def test_a_refund_of_a_charge_billplane_did_not_sell_is_ignored(shop: Shop) -> None:
    customer = shop.sdk.v1.customers.create(params={"email": "someone@else.test"})
    price = create_price(shop.sdk, 700, interval=None, name="Not ours")
    opened = shop.sdk.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "customer": customer.id,
            "line_items": [{"price": price, "quantity": 1}],
            "success_url": SUCCESS_URL,
        }
    )
    paid = shop.double.complete_checkout(opened.id)
    _refund(shop, str(paid["payment_intent"]))

    (event,) = shop.double.events("charge.refunded")
    answer = shop.deliver(event)

    assert answer.status_code == 200, answer.text
    (stored,) = shop.events(type="charge.refunded")
    assert stored["outcome"] == "ignored"


def test_a_top_up_landed_before_top_ups_had_rows_is_still_refunded(
    shop: Shop, session: Session, clock: Clock
) -> None:
    """A top-up landed by an older billplane has its bucket only: its refund adopts it."""
    _, payment = _buy(shop, _sell(shop))
    _deliver(shop, "checkout.session.completed")
    session.execute(delete(CreditTopup))

    _refund(shop, payment, 450)
    _deliver(shop, "charge.refunded")

    assert _pool(shop)["balance"] == 250
    assert [e["amount"] for e in _kinds(shop, "refund")] == [-250]
    assert _topup(shop)["status"] == "partially_refunded"
    assert ledger_balance(session, clock()) == 250


def test_sync_lands_a_top_up_and_applies_its_refund_when_their_webhooks_never_came(
    shop: Shop, session: Session, clock: Clock
) -> None:
    checkout_id, payment = _buy(shop, _sell(shop))
    _refund(shop, payment, 300)  # no event delivered at all

    report = shop.admin.call("POST", "/admin/api/stripe/sync")

    assert report["topups"] == 1
    assert [c["action"] for c in report["changes"]] == ["topup.land", "topup.refund"]
    assert _pool(shop)["balance"] == 500 - 166
    assert shop.admin.call("POST", "/admin/api/stripe/sync")["changes"] == []  # nothing left
    _deliver(shop, "checkout.session.completed")  # the webhooks, late: nothing more
    _deliver(shop, "charge.refunded")
    assert [e["amount"] for e in _kinds(shop, "refund")] == [-166]
    assert _topup(shop)["id"] == checkout_id
    assert ledger_balance(session, clock()) == 500 - 166
