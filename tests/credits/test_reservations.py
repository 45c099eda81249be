"""Reservations for long actions: a hold, settled by finalize or release (each idempotent), or
released by itself once expired; the ledger adds up after each."""

from datetime import timedelta

from sqlalchemy.orm import Session

from conftest import Clock, Setup
from credits.conftest import assert_balance, balances, grant, reserve, settle, usage


def test_a_reservation_holds_its_cost_once(credits: Setup, session: Session, clock: Clock) -> None:
    grant(credits, 50)
    held = reserve(credits, "r1")
    assert (held["status"], held["amount"], held["balance"]) == ("held", 20, 30)
    assert held["id"].startswith("rsv_")
    again = reserve(credits, "r1", 200)
    assert (again["id"], again["amount"], again["balance"]) == (held["id"], 20, 30)
    assert_balance(credits, session, clock, 30)


def test_a_reservation_that_does_not_fit_holds_nothing(
    credits: Setup, session: Session, clock: Clock
) -> None:
    grant(credits, 19)
    refused = reserve(credits, "r1", 402)
    assert refused["error"]["code"] == "insufficient_credits"
    assert [e["kind"] for e in balances(credits)["ledger"]] == ["grant"]
    assert_balance(credits, session, clock, 19)


def test_finalizing_for_less_gives_the_rest_back_and_is_idempotent(
    credits: Setup, session: Session, clock: Clock
) -> None:
    grant(credits, 50)
    held = reserve(credits, "r1")
    done = settle(credits, held["id"], "finalize", quantity=2)
    assert (done["status"], done["final_amount"], done["balance"]) == ("finalized", 10, 40)
    assert settle(credits, held["id"], "finalize", quantity=2) == done
    other = settle(credits, held["id"], "finalize", 409, quantity=3)
    assert other["error"]["code"] == "reservation_settled"
    assert settle(credits, held["id"], "release", 409)["error"]["code"] == "reservation_settled"
    assert_balance(credits, session, clock, 40)


def test_finalizing_for_more_takes_the_difference_if_it_fits(
    credits: Setup, session: Session, clock: Clock
) -> None:
    grant(credits, 50)
    held = reserve(credits, "r1")  # 20 held
    refused = settle(credits, held["id"], "finalize", 402, quantity=11)  # 55 > 50
    assert refused["error"]["code"] == "insufficient_credits"
    assert_balance(credits, session, clock, 30)  # still held
    done = settle(credits, held["id"], "finalize", quantity=6)
    assert (done["final_amount"], done["balance"]) == (30, 20)
    assert_balance(credits, session, clock, 20)


def test_a_release_gives_back_to_the_buckets_the_credits_came_from(
    credits: Setup, session: Session, clock: Clock
) -> None:
    sooner = grant(credits, 10, expires_at=(clock() + timedelta(days=3)).isoformat())
    never = grant(credits, 40)
    held = reserve(credits, "r1")  # 10 from the sooner bucket, 10 from the other
    remaining = {b["id"]: b["remaining"] for b in balances(credits)["buckets"]}
    assert remaining == {sooner["bucket"]: 0, never["bucket"]: 30}
    released = settle(credits, held["id"], "release")
    assert (released["status"], released["balance"]) == ("released", 50)
    assert settle(credits, held["id"], "release") == released
    remaining = {b["id"]: b["remaining"] for b in balances(credits)["buckets"]}
    assert remaining == {sooner["bucket"]: 10, never["bucket"]: 40}
    assert_balance(credits, session, clock, 50)


def test_an_expired_reservation_releases_itself(
    credits: Setup, session: Session, clock: Clock
) -> None:
    grant(credits, 20)
    held = reserve(credits, "r1", expires_in=60)
    usage(credits, "c1", 402)  # all 20 held
    clock.advance(minutes=2)
    usage(credits, "c2", 201, quantity=20)  # the hold went back when credits fell short
    late = settle(credits, held["id"], "finalize", 409, quantity=1)
    assert late["error"]["code"] == "reservation_expired"
    assert settle(credits, held["id"], "release")["status"] == "expired"
    assert_balance(credits, session, clock, 0)


def test_a_feature_without_a_price_or_an_unknown_reservation_is_refused(credits: Setup) -> None:
    grant(credits, 20)
    free = reserve(credits, "r1", 400, feature="ai.tokens")
    assert free["error"]["param"] == "feature"
    unknown = settle(credits, "rsv_nothing", "release", 404)
    assert unknown["error"]["code"] == "reservation_not_found"


def test_the_balances_show_an_expired_hold_given_back(
    credits: Setup, session: Session, clock: Clock
) -> None:
    grant(credits, 20)
    held = reserve(credits, "r1", expires_in=60)
    assert balances(credits)["balance"] == 0
    clock.advance(minutes=2)
    pool = balances(credits)
    assert pool["balance"] == 20
    assert [(e["kind"], e["amount"]) for e in pool["ledger"]] == [
        ("release", 20),
        ("reservation", -20),
        ("grant", 20),
    ]
    assert settle(credits, held["id"], "release")["status"] == "expired"
    assert_balance(credits, session, clock, 20)
