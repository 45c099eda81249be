"""Credits in one process, on both engines: pools and prices, allowances and grants, the
deduction order, overage, and the ledger that every balance is the sum of."""

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from billplane.entitlements import service as entitlements
from billplane.errors import PaymentRequired
from billplane.hotpath import Sql
from billplane.usage import service as usage_service
from conftest import Clock, Setup
from credits.conftest import (
    POOLS,
    allowance,
    assert_balance,
    balances,
    check,
    grant,
    usage,
)


def test_a_pool_prices_counted_features(credits: Setup) -> None:
    (pool,) = credits.admin.call("GET", POOLS)["data"]
    assert pool == {
        "key": "credits",
        "name": "Credits",
        "costs": {"ai.chat": 1, "ai.image": 5},
        "packs": {},
        "allowances": {},
    }
    changed = credits.admin.call(
        "PATCH", f"{POOLS}/credits", json={"costs": {"ai.image": 4, "ai.chat": None}}
    )
    assert changed["costs"] == {"ai.image": 4}


@pytest.mark.parametrize(
    ("costs", "status", "code"),
    [
        ({"exports": 1}, 400, "invalid_request"),  # an on/off feature has no quantity
        ({"nope": 1}, 404, "feature_not_found"),
        ({"ai.chat": 0}, 422, "validation_error"),
    ],
)
def test_a_bad_price_is_refused_and_no_pool_is_made(
    realtyos: Setup, costs: dict[str, int], status: int, code: str
) -> None:
    realtyos.admin.feature("realtyos", "ai.chat", "metered")
    body = {"key": "other", "name": "Other", "costs": costs}
    refused = realtyos.admin.call("POST", POOLS, status, json=body)
    assert refused["error"]["code"] == code
    assert realtyos.admin.call("GET", POOLS)["data"] == []


def test_a_feature_has_one_price(credits: Setup) -> None:
    body = {"key": "gems", "name": "Gems", "costs": {"ai.chat": 2}}
    refused = credits.admin.call("POST", POOLS, 409, json=body)
    assert refused["error"]["code"] == "already_exists"


def test_check_of_a_priced_feature_answers_cost_and_balance(credits: Setup) -> None:
    grant(credits, 10)
    answer = check(credits, feature="ai.image", quantity=2)
    assert (answer["allowed"], answer["reason"]) == (True, "ok")
    assert (answer["pool"], answer["cost"], answer["balance"]) == ("credits", 10, 10)
    over = check(credits, feature="ai.image", quantity=3)
    assert (over["allowed"], over["reason"], over["cost"]) == (False, "insufficient_credits", 15)


def test_check_and_usage_of_a_feature_without_a_price_are_unchanged(credits: Setup) -> None:
    grant(credits, 10)
    answer = check(credits, feature="ai.tokens")
    assert set(answer) == {
        "allowed", "reason", "tenant", "feature", "plan", "subscription_status",
        "limit", "used", "remaining", "resets_at",
    }  # fmt: skip
    recorded = usage(credits, "t1", 201, feature="ai.tokens")
    assert not {"pool", "cost", "balance", "overage"} & set(recorded)


def test_enforced_usage_takes_its_cost_once(credits: Setup, session: Session, clock: Clock) -> None:
    grant(credits, 12)
    first = usage(credits, "img-1", 201, feature="ai.image", quantity=2)
    assert (first["cost"], first["balance"], first["overage"], first["used"]) == (10, 2, 0, 2)
    repeat = usage(credits, "img-1", 200, feature="ai.image", quantity=2)
    assert repeat["duplicate"] is True
    assert repeat["balance"] == 2
    assert_balance(credits, session, clock, 2)


def test_a_priced_usage_past_its_limit_or_reusing_a_key_takes_no_credits(
    credits: Setup, session: Session, clock: Clock
) -> None:
    """A credit-priced usage refused by its usage limit, or by a key used before for another
    quantity, takes no credits and writes no ledger row; a true repeat is charged once."""
    credits.admin.call("PATCH", f"{POOLS}/credits", json={"costs": {"listings.publish": 2}})
    grant(credits, 100)
    first = usage(credits, "p1", 201, feature="listings.publish", quantity=3)
    assert (first["cost"], first["balance"], first["used"]) == (6, 94, 3)
    over = usage(credits, "p2", 402, feature="listings.publish")
    assert over["error"]["code"] == "limit_reached"
    reused = usage(credits, "p1", 409, feature="listings.publish", quantity=1)
    assert reused["error"]["code"] == "idempotency_key_reused"
    repeat = usage(credits, "p1", 200, feature="listings.publish", quantity=3)
    assert (repeat["duplicate"], repeat["balance"]) == (True, 94)
    assert check(credits, feature="listings.publish")["used"] == 3
    assert _ledger_kinds(session) == ["grant", "deduction"]
    assert_balance(credits, session, clock, 94)


def test_a_repeat_whose_cost_still_fits_is_charged_once(
    credits: Setup, session: Session, clock: Clock
) -> None:
    """A repeat the read cannot tell (the balance and the limit have room for it) reaches the
    write, which finds the key taken: answered as the repeat, nothing more taken."""
    grant(credits, 100)
    first = usage(credits, "img-1", 201, feature="ai.image", quantity=2)
    assert (first["cost"], first["balance"]) == (10, 90)
    repeat = usage(credits, "img-1", 200, feature="ai.image", quantity=2)
    assert (repeat["duplicate"], repeat["balance"], repeat["used"]) == (True, 90, 2)
    assert _ledger_kinds(session) == ["grant", "deduction"]
    assert_balance(credits, session, clock, 90)


def test_a_usage_whose_limit_filled_after_its_read_takes_no_credits(
    credits: Setup, session: Session, clock: Clock
) -> None:
    """Read while its limit had room, written after another use filled it: refused by the
    limit in the write, no credit taken."""
    credits.admin.call("PATCH", f"{POOLS}/credits", json={"costs": {"listings.publish": 2}})
    grant(credits, 100)
    sql = Sql(session.connection().connection.cursor(), session.get_bind().dialect)
    now = clock()
    found = entitlements.lookup(sql, credits.token, "acme", "listings.publish", now)
    request = usage_service.UsageRequest("listings.publish", 1, "late", enforce=True)
    late = usage_service.prepare(sql, found, request, now, grace_days=3)
    assert isinstance(late, usage_service.Write)
    usage(credits, "fills", 201, feature="listings.publish", quantity=3)  # the limit is 3
    with session.begin_nested():
        refused = usage_service.record(sql, late)
    assert isinstance(refused, PaymentRequired)
    assert refused.code == "limit_reached"
    assert _ledger_kinds(session) == ["grant", "deduction"]
    assert check(credits, feature="listings.publish")["used"] == 3
    assert_balance(credits, session, clock, 94)


def test_usage_that_does_not_fit_is_refused_and_writes_nothing(
    credits: Setup, session: Session, clock: Clock
) -> None:
    grant(credits, 4)
    refused = usage(credits, "img-1", 402, feature="ai.image")
    assert refused["error"]["code"] == "insufficient_credits"
    assert (refused["error"]["cost"], refused["error"]["balance"]) == (5, 4)
    assert check(credits, feature="ai.image")["used"] == 0
    kinds = session.execute(text("SELECT kind FROM credit_ledger")).scalars().all()
    assert kinds == ["grant"]
    assert_balance(credits, session, clock, 4)


def test_soonest_expiring_credits_go_first_and_one_use_may_span_buckets(
    credits: Setup, session: Session, clock: Clock
) -> None:
    later = grant(credits, 3, expires_at=(clock() + timedelta(days=10)).isoformat())
    never = grant(credits, 10)
    sooner = grant(credits, 2, expires_at=(clock() + timedelta(days=5)).isoformat())
    usage(credits, "c1", 201, quantity=4)

    pool = balances(credits)
    assert [(b["id"], b["remaining"]) for b in pool["buckets"]] == [
        (sooner["bucket"], 0),
        (later["bucket"], 1),
        (never["bucket"], 10),
    ]
    taken = [(e["bucket"], e["amount"]) for e in pool["ledger"] if e["kind"] == "deduction"]
    assert sorted(taken) == sorted([(sooner["bucket"], -2), (later["bucket"], -2)])
    assert_balance(credits, session, clock, 11)


def test_the_ledger_shows_the_newest_rows_chained_to_their_bucket_or_not(
    credits: Setup, session: Session, clock: Clock
) -> None:
    """A usage's cost taken whole out of one bucket is chained to that bucket, out of the
    tenant's index; a cost spread over two buckets and a grant are not. The ledger shown is the
    tenant's newest rows of either kind all the same, and a repeat that reached the write (its
    take given back) leaves the chain as it was."""
    soon = grant(credits, 30, expires_at=(clock() + timedelta(days=5)).isoformat())
    rest = grant(credits, 1000)
    for n in range(28):
        usage(credits, f"a{n}", 201)  # out of `soon`, chained
    usage(credits, "a0", 200)  # a repeat the read cannot tell: taken, then given back
    usage(credits, "span", 201, feature="ai.image")  # 5: the last 2 of `soon`, 3 of `rest`
    for n in range(30):
        usage(credits, f"b{n}", 201)  # out of `rest`, chained
    grant(credits, 7)
    usage(credits, "c", 201)

    shown = balances(credits)["ledger"]
    every = session.execute(
        text("SELECT id, kind, amount, bucket_id, previous_id FROM credit_ledger ORDER BY id DESC")
    ).all()
    assert len(shown) == 50 < len(every) == 3 + 28 + 2 + 30 + 1
    assert [(e["id"], e["kind"], e["amount"], e["bucket"]) for e in shown] == [
        (id_, kind, amount, bucket) for id_, kind, amount, bucket, _ in every[:50]
    ]
    chained = Counter(bucket for _, _, _, bucket, previous in every if previous is not None)
    assert chained == {soon["bucket"]: 28, rest["bucket"]: 31}
    unchained = Counter(
        (kind, bucket) for _, kind, _, bucket, previous in every if previous is None
    )
    grants = [soon["bucket"], rest["bucket"], shown[1]["bucket"]]  # shown[1]: the last grant
    spread = [soon["bucket"], rest["bucket"]]  # the image's cost, over two buckets
    assert unchained == Counter([("grant", b) for b in grants] + [("deduction", b) for b in spread])
    assert_balance(credits, session, clock, 30 + 1000 + 7 - 28 - 5 - 30 - 1)


def test_expired_credits_are_not_spent(credits: Setup, session: Session, clock: Clock) -> None:
    grant(credits, 5, expires_at=(clock() + timedelta(days=1)).isoformat())
    grant(credits, 2)
    clock.advance(days=2)
    assert check(credits, quantity=3)["reason"] == "insufficient_credits"
    usage(credits, "c1", 201, quantity=2)
    expired = [e for e in balances(credits)["ledger"] if e["kind"] == "expiry"]
    assert [e["amount"] for e in expired] == [-5]
    assert_balance(credits, session, clock, 0)


def test_a_plans_allowance_comes_each_month(credits: Setup, session: Session, clock: Clock) -> None:
    allowance(credits, grant=100, reset="month")
    assert check(credits)["balance"] == 100
    usage(credits, "c1", 201, quantity=60)
    assert_balance(credits, session, clock, 40)
    clock.advance(days=10)  # 2026-12-01: a new month, nothing rolls over
    assert check(credits)["balance"] == 100
    assert_balance(credits, session, clock, 100)
    kinds = [e["kind"] for e in balances(credits)["ledger"]]
    assert kinds == ["expiry", "allowance", "deduction", "allowance"]  # newest first


def test_unused_allowance_rolls_over_up_to_the_cap(
    credits: Setup, session: Session, clock: Clock
) -> None:
    allowance(credits, grant=100, reset="month", rollover=30)
    usage(credits, "c1", 201, quantity=40)  # 60 unused: 30 roll over
    clock.advance(days=10)
    assert check(credits)["balance"] == 130
    usage(credits, "c2", 201, quantity=1)
    assert_balance(credits, session, clock, 129)
    moves = [(e["kind"], e["amount"]) for e in balances(credits)["ledger"]][:4]
    assert moves == [("deduction", -1), ("rollover", 30), ("expiry", -60), ("allowance", 100)]


def test_a_rollover_above_the_allowance_is_refused(credits: Setup) -> None:
    refused = allowance(credits, 400, grant=10, reset="month", rollover=11)
    assert refused["error"]["param"] == "rollover"
    assert credits.admin.call("GET", POOLS)["data"][0]["allowances"] == {}


def test_without_overage_a_use_past_the_balance_is_refused(credits: Setup) -> None:
    allowance(credits, grant=3, reset="month")
    assert usage(credits, "c1", 402, quantity=4)["error"]["code"] == "insufficient_credits"


def test_overage_the_plan_allows_is_counted_as_metered_usage(
    credits: Setup, session: Session, clock: Clock
) -> None:
    allowance(credits, grant=3, reset="month", overage="ai.overage")
    assert check(credits, quantity=4)["allowed"] is True
    answer = usage(credits, "c1", 201, quantity=5)
    assert (answer["cost"], answer["balance"], answer["overage"]) == (5, 0, 2)
    assert check(credits, feature="ai.overage")["used"] == 2
    assert_balance(credits, session, clock, 0)


def test_usage_without_enforce_is_recorded_past_the_balance(
    credits: Setup, session: Session, clock: Clock
) -> None:
    grant(credits, 1)
    answer = usage(credits, "c1", 201, quantity=3, enforce=False)
    assert (answer["balance"], answer["overage"]) == (0, 2)
    assert_balance(credits, session, clock, 0)


def test_a_grant_is_audited_and_its_key_grants_once(credits: Setup) -> None:
    first = grant(credits, 50, idempotency_key="ticket-1", reason="Outage apology")
    again = grant(credits, 50, 200, idempotency_key="ticket-1", reason="Outage apology")
    assert again == first
    reused = grant(credits, 60, 409, idempotency_key="ticket-1")
    assert reused["error"]["code"] == "idempotency_key_reused"
    entries = credits.admin.call("GET", "/admin/api/audit")["data"]
    grants = [e for e in entries if e["action"] == "credits.grant"]
    assert len(grants) == 1
    assert grants[0]["after"]["reason"] == "Outage apology"
    assert balances(credits)["ledger"][0]["reason"] == "Outage apology"


def test_a_batch_takes_credits_for_priced_events(
    credits: Setup, session: Session, clock: Clock
) -> None:
    grant(credits, 6)
    event = {"tenant": "acme", "enforce": True}
    events = [
        event | {"feature": "ai.image", "idempotency_key": "b1"},
        event | {"feature": "ai.tokens", "idempotency_key": "b2"},
        event | {"feature": "ai.image", "idempotency_key": "b3"},
        event | {"feature": "ai.chat", "idempotency_key": "b4"},
    ]
    response = credits.api.post("/v1/usage/batch", {"events": events})
    assert [r["status"] for r in response.json()["data"]] == [201, 201, 402, 201]
    assert_balance(credits, session, clock, 0)


def test_a_batch_counts_a_priced_use_and_a_direct_use_of_its_overage_feature(
    credits: Setup, session: Session, clock: Clock
) -> None:
    allowance(credits, grant=3, reset="month", overage="ai.overage")
    event = {"tenant": "acme", "enforce": True}
    events = [
        event | {"feature": "ai.overage", "quantity": 2, "idempotency_key": "b1"},
        event | {"feature": "ai.chat", "quantity": 5, "idempotency_key": "b2"},
        event | {"feature": "ai.tokens", "idempotency_key": "b2"},  # the priced use's key
    ]
    response = credits.api.post("/v1/usage/batch", {"events": events})
    assert response.status_code == 200, response.text
    results = response.json()["data"]
    assert [r["status"] for r in results] == [201, 201, 409]
    assert results[2]["error"]["code"] == "idempotency_key_reused"
    assert check(credits, feature="ai.overage")["used"] == 2 + 2  # direct, and past the 3 credits
    assert check(credits, feature="ai.tokens")["used"] == 0
    assert_balance(credits, session, clock, 0)


def test_of_a_plain_and_a_priced_event_under_one_key_the_batchs_first_is_counted(
    credits: Setup, session: Session, clock: Clock
) -> None:
    """Whichever is priced: the first under a key is counted, the other answered as a repeat
    (the same key for another feature: 409), as two usage calls in that order would be."""
    allowance(credits, grant=10, reset="month")
    event = {"tenant": "acme", "enforce": True, "idempotency_key": "same"}
    events = [
        event | {"feature": "ai.tokens", "quantity": 4},
        event | {"feature": "ai.chat", "quantity": 1},  # priced, the plain one's key
    ]
    response = credits.api.post("/v1/usage/batch", {"events": events})
    assert response.status_code == 200, response.text
    results = response.json()["data"]
    assert [r["status"] for r in results] == [201, 409], results
    assert results[1]["error"]["code"] == "idempotency_key_reused"
    assert check(credits, feature="ai.tokens")["used"] == 4
    assert check(credits, feature="ai.chat")["used"] == 0
    assert_balance(credits, session, clock, 10)


def _ledger_kinds(session: Session) -> list[str]:
    """The kinds of the ledger's rows, oldest first."""
    return list(session.execute(text("SELECT kind FROM credit_ledger ORDER BY id")).scalars())
