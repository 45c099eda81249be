"""The Python client's credits calls (sync and async) against a real billplane server: balances,
reservations held, finalized and released, and the 402 when credits do not cover a hold.

Top-ups need Stripe: see test_python_checkout.py.
"""

import asyncio
from datetime import datetime
from typing import Any

import httpx
import pytest
from billplane_client import (
    AsyncBillplane,
    Balances,
    Billplane,
    Conflict,
    LedgerEntry,
    NotFound,
    PaymentRequired,
    Reservation,
)

from conftest import ADMIN_TOKEN

pytestmark = pytest.mark.e2e

Project = dict[str, str]
TOKEN_COST = 5  # credits one `ai.tokens` costs in the seeded pool


def sell_credits(base_url: str, project: str, *, granted: int) -> None:
    """The project prices `ai.tokens` in a pool `credits`, and acme is granted `granted`."""
    with httpx.Client(
        base_url=f"{base_url}/admin/api/projects/{project}",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30,
    ) as admin:
        pool = {"key": "credits", "name": "Credits", "costs": {"ai.tokens": TOKEN_COST}}
        assert admin.post("/credit-pools", json=pool).status_code == 201
        grant = {"pool": "credits", "amount": granted, "reason": "welcome"}
        answer = admin.post("/tenants/acme/credit-grants", json=grant)
        assert answer.status_code == 201, answer.text


@pytest.fixture
def credited(billplane_url: str, project: Project) -> Project:
    sell_credits(billplane_url, project["key"], granted=50)
    return project


def client(url: str, project: Project) -> Billplane:
    return Billplane(url, project["token"], cache_ttl=0, timeout=30)


def test_balances_are_typed_with_buckets_and_ledger(billplane_url: str, credited: Project) -> None:
    with client(billplane_url, credited) as bp:
        answer = bp.balances("acme")

    assert isinstance(answer, Balances)
    assert answer.tenant == "acme"
    assert answer.balance("credits") == 50
    (bucket,) = answer.pool("credits").buckets
    assert (bucket.source, bucket.granted, bucket.remaining) == ("grant", 50, 50)
    (entry,) = answer.pool("credits").ledger
    assert isinstance(entry, LedgerEntry)
    assert (entry.kind, entry.amount, entry.bucket, entry.reason) == (
        "grant",
        50,
        bucket.id,
        "welcome",
    )
    assert isinstance(entry.created_at, datetime)
    with pytest.raises(KeyError):
        answer.pool("gems")


def test_a_reservation_holds_then_finalizes_for_what_was_used(
    billplane_url: str, credited: Project
) -> None:
    with client(billplane_url, credited) as bp:
        held = bp.reserve("acme", "ai.tokens", 4, idempotency_key="render-1", expires_in=600)
        repeat = bp.reserve("acme", "ai.tokens", 4, idempotency_key="render-1")
        during = bp.balances("acme").balance("credits")
        done = bp.finalize(held.id, 3)
        again = bp.finalize(held.id, 3)
        after = bp.balances("acme").balance("credits")

    assert isinstance(held, Reservation)
    assert held.id.startswith("rsv_")
    assert (held.status, held.pool, held.amount, held.balance) == ("held", "credits", 20, 30)
    assert held.expires_at is not None
    assert repeat.id == held.id
    assert during == 30
    assert (done.status, done.final_quantity, done.final_amount) == ("finalized", 3, 15)
    assert done.balance == 35
    assert again == done
    assert after == 35


def test_a_release_gives_everything_back_and_is_idempotent(
    billplane_url: str, credited: Project
) -> None:
    with client(billplane_url, credited) as bp:
        held = bp.reserve("acme", "ai.tokens", 10)
        released = bp.release(held.id)
        again = bp.release(held.id)
        with pytest.raises(Conflict) as settled:
            bp.finalize(held.id, 1)

    assert (held.amount, held.balance) == (50, 0)
    assert (released.status, released.balance) == ("released", 50)
    assert again.status == "released"
    assert settled.value.code == "reservation_settled"


def test_a_hold_past_the_balance_raises_payment_required_with_the_numbers(
    billplane_url: str, credited: Project
) -> None:
    with client(billplane_url, credited) as bp:
        with pytest.raises(PaymentRequired) as refused:
            bp.reserve("acme", "ai.tokens", 11)
        with pytest.raises(NotFound):
            bp.release("rsv_nosuchreservation")
        balance = bp.balances("acme").balance("credits")

    error = refused.value
    assert (error.status, error.code) == (402, "insufficient_credits")
    assert (error.details["pool"], error.details["cost"], error.details["balance"]) == (
        "credits",
        55,
        50,
    )
    assert balance == 50  # nothing was held


def test_the_async_client_makes_the_same_credit_calls(
    billplane_url: str, credited: Project
) -> None:
    async def scenario() -> tuple[Any, ...]:
        async with AsyncBillplane(billplane_url, credited["token"], cache_ttl=0) as bp:
            held = await bp.reserve("acme", "ai.tokens", 2)
            done = await bp.finalize(held.id, 1)
            other = await bp.reserve("acme", "ai.tokens", 1)
            released = await bp.release(other.id)
            return held, done, released, await bp.balances("acme")

    held, done, released, balances = asyncio.run(scenario())

    assert (held.amount, done.final_amount, released.status) == (10, 5, "released")
    assert balances.balance("credits") == 45


def test_a_refund_row_says_what_it_could_not_remove() -> None:
    row = {"id": 9, "kind": "refund", "amount": -50, "bucket": 3, "unrecovered": 450}
    entry = LedgerEntry.from_json(row | {"idempotency_key": "refund:cs_test_1:900"})

    assert (entry.kind, entry.amount, entry.unrecovered) == ("refund", -50, 450)
