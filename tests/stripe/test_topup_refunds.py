"""Refunds of top-ups: a refunded charge (`charge.refunded`, signed as Stripe signs it) takes
back the unspent share of the top-up's credits exactly once, whatever the order and repeats of
the events, and records what was spent already; the billing history shows each top-up."""

from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from billplane.models import CreditTopup
from conftest import Clock
from credits.conftest import reserve, settle
from ledgers import ledger_balance
from stripe_shop import CANCEL_URL, SUCCESS_URL, Shop, create_price

TENANT = "/admin/api/projects/realtyos/tenants/acme"
HISTORY = f"{TENANT}/invoices"


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


def _bought(shop: Shop, credits: int = 500, amount: int = 900) -> tuple[str, str]:
    """A pack sold, bought and its credits landed (`checkout.session.completed` delivered):
    (session id, payment)."""
    bought = _buy(shop, _sell(shop, credits, amount))
    _deliver(shop, "checkout.session.completed")
    return bought


def _refund(shop: Shop, payment_intent: str, amount: int | None = None) -> None:
    params: dict[str, Any] = {"payment_intent": payment_intent}
    if amount is not None:
        params["amount"] = amount
    shop.sdk.v1.refunds.create(params=params)  # type: ignore[arg-type]


def _refunded(shop: Shop, payment_intent: str, amount: int | None = None) -> None:
    """A refund made in Stripe, and its `charge.refunded` delivered."""
    _refund(shop, payment_intent, amount)
    _deliver(shop, "charge.refunded", -1)


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
    checkout_id, payment = _bought(shop)
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
    _, payment = _bought(shop, credits=500, amount=900)

    _refunded(shop, payment, 100)
    assert _pool(shop)["balance"] == 500 - 55
    assert _topup(shop)["status"] == "partially_refunded"

    _refunded(shop, payment, 200)
    assert _pool(shop)["balance"] == 500 - 166  # not 500 - 55 - 111 rounded twice apart
    assert [e["amount"] for e in _kinds(shop, "refund")] == [-111, -55]

    _refunded(shop, payment)  # the rest: every credit goes back
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
    _, payment = _bought(shop)
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
    _, payment = _bought(shop)
    _refund(shop, payment, 300)
    _refund(shop, payment, 300)

    _deliver(shop, "charge.refunded", 1)  # the newer: 6.00 of 9.00 refunded
    _deliver(shop, "charge.refunded", 0)  # the older, late

    assert _pool(shop)["balance"] == 500 - 333
    assert [e["amount"] for e in _kinds(shop, "refund")] == [-333]
    assert ledger_balance(session, clock()) == 500 - 333


def _hold(shop: Shop, quantity: int, key: str = "r1", **extra: Any) -> str:
    """Credits of `ai.chat` (1 each) held by a reservation; its id."""
    body: dict[str, Any] = {"feature": "ai.chat", "quantity": quantity} | extra
    return str(reserve(shop, key, **body)["id"])


def _refund_rows(shop: Shop) -> list[tuple[int, int, str]]:
    """The `refund` ledger rows, oldest first: (amount, unrecovered, idempotency key)."""
    rows = reversed(_kinds(shop, "refund"))
    return [(e["amount"], e["unrecovered"], e["idempotency_key"]) for e in rows]


def test_credits_held_when_their_top_up_is_refunded_are_taken_back_on_release(
    shop: Shop, session: Session, clock: Clock
) -> None:
    checkout_id, payment = _bought(shop)
    held = _hold(shop, 500)
    _refund(shop, payment)
    _deliver(shop, "charge.refunded")
    assert _topup(shop)["credits_unrecovered"] == 500  # all held: nothing to remove yet

    released = settle(shop, held, "release")

    assert released["balance"] == 0  # the money went back: the credits do not
    key = f"refund:{checkout_id}:900"
    assert _refund_rows(shop) == [(0, 500, key), (-500, -500, key)]
    assert [e["amount"] for e in _kinds(shop, "release")] == [500]  # the release stands
    topup = _topup(shop)
    assert (topup["credits_refunded"], topup["credits_unrecovered"]) == (500, 0)
    assert ledger_balance(session, clock()) == 0


def test_a_release_retried_takes_back_once(shop: Shop, session: Session, clock: Clock) -> None:
    _, payment = _bought(shop)
    held = _hold(shop, 500)
    _refund(shop, payment)
    _deliver(shop, "charge.refunded")

    first = settle(shop, held, "release")
    assert settle(shop, held, "release") == first
    _deliver(shop, "charge.refunded")  # the refund again: nothing more either

    assert [amount for amount, _, _ in _refund_rows(shop)] == [0, -500]
    assert _topup(shop)["credits_unrecovered"] == 0
    assert ledger_balance(session, clock()) == 0


def test_finalizing_a_hold_for_less_takes_back_only_what_returns(
    shop: Shop, session: Session, clock: Clock
) -> None:
    _, payment = _bought(shop)
    held = _hold(shop, 500)
    _refund(shop, payment)
    _deliver(shop, "charge.refunded")

    done = settle(shop, held, "finalize", quantity=200)

    assert (done["final_amount"], done["balance"]) == (200, 0)
    assert [amount for amount, _, _ in _refund_rows(shop)] == [0, -300]
    assert _topup(shop)["credits_unrecovered"] == 200  # the 200 the action used stay spent
    assert ledger_balance(session, clock()) == 0


def test_an_expired_hold_of_a_refunded_top_up_is_taken_back(
    shop: Shop, session: Session, clock: Clock
) -> None:
    _, payment = _bought(shop)
    held = _hold(shop, 500, expires_in=60)
    _refund(shop, payment)
    _deliver(shop, "charge.refunded")
    clock.advance(minutes=2)

    pool = _pool(shop)  # reading the balances releases the expired hold

    assert pool["balance"] == 0
    assert [(e["kind"], e["amount"]) for e in pool["ledger"][:2]] == [
        ("refund", -500),
        ("release", 500),
    ]
    assert settle(shop, held, "release")["status"] == "expired"
    assert _topup(shop)["credits_unrecovered"] == 0
    assert ledger_balance(session, clock()) == 0


def test_a_partially_refunded_top_up_keeps_its_paid_share_of_a_released_hold(
    shop: Shop, session: Session, clock: Clock
) -> None:
    checkout_id, payment = _bought(shop, credits=500, amount=900)
    held = _hold(shop, 500)
    _refunded(shop, payment, 450)  # half: 250 credits claimed, all of them held

    assert settle(shop, held, "release")["balance"] == 250
    key = f"refund:{checkout_id}:450"
    assert _refund_rows(shop) == [(0, 250, key), (-250, -250, key)]
    assert _topup(shop)["credits_unrecovered"] == 0

    _refunded(shop, payment)  # the rest, later: taken out of the bucket as usual
    assert _pool(shop)["balance"] == 0
    assert _refund_rows(shop)[-1] == (-250, 0, f"refund:{checkout_id}:900")
    assert ledger_balance(session, clock()) == 0


def test_held_credits_settle_what_the_oldest_refund_could_not_take_first(
    shop: Shop, session: Session, clock: Clock
) -> None:
    # 500 credits for 9.00, all held: 1.00 refunded claims 55, 3.00 in all 166.
    checkout_id, payment = _bought(shop, credits=500, amount=900)
    held = _hold(shop, 500)
    _refunded(shop, payment, 100)
    _refunded(shop, payment, 200)

    assert settle(shop, held, "release")["balance"] == 500 - 166

    first, second = f"refund:{checkout_id}:100", f"refund:{checkout_id}:300"
    assert sorted(_refund_rows(shop), key=lambda r: r[2]) == [
        (0, 55, first),
        (-55, -55, first),
        (0, 111, second),
        (-111, -111, second),
    ]
    assert ledger_balance(session, clock()) == 500 - 166


def test_only_the_refunded_top_ups_part_of_a_hold_is_taken_back(
    shop: Shop, session: Session, clock: Clock
) -> None:
    """A hold spanning the top-up and a grant: what goes back to the grant stays usable, and
    what was spent for good before the refund stays unrecovered."""
    checkout_id, payment = _bought(shop)
    grant = {"pool": "credits", "amount": 100, "reason": "bonus"}
    shop.admin.call("POST", f"{TENANT}/credit-grants", 201, json=grant)
    _spend(shop, 100)  # from the top-up (the older bucket): 400 left in it
    held = _hold(shop, 450)  # the top-up's 400, then 50 of the grant
    _refund(shop, payment)
    _deliver(shop, "charge.refunded")

    assert settle(shop, held, "release")["balance"] == 100  # the grant's, whole again

    key = f"refund:{checkout_id}:900"
    assert _refund_rows(shop) == [(0, 500, key), (-400, -400, key)]
    assert _topup(shop)["credits_unrecovered"] == 100  # the use before the refund
    assert ledger_balance(session, clock()) == 100


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
    _, payment = _bought(shop)
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
