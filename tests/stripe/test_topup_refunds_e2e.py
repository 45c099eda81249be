"""Refunds of top-ups over real HTTP: the Stripe double signs and posts its events to a real
2-worker billplane server, shuffled and repeated, or while the tenant spends the credits; the
credits taken back are exact and the ledger adds up, on SQLite and PostgreSQL."""

import asyncio
import secrets
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

import stripe
from billplane.settings import Settings
from conftest import ADMIN_TOKEN
from ledgers import ledger_balance
from races import fire, fire_calls
from stripe_double import StripeDouble
from stripe_shop import API_KEY, create_price, served_with_double

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("many_connections")]

ORIGIN = "https://app.example.test"


class Stack:
    def __init__(self, base_url: str, database_url: str, double: StripeDouble) -> None:
        self.base_url = base_url
        self.double = double
        self.engine = create_engine(Settings(database_url=database_url).sqlalchemy_url)
        self.sdk = stripe.StripeClient(
            API_KEY, base_addresses={"api": double.base_url}, max_network_retries=0
        )
        self.http = httpx.Client(base_url=base_url, timeout=60)

    def admin(self, path: str, body: Any, expect: int = 201) -> Any:
        answer = self.http.post(
            f"/admin/api{path}", json=body, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        assert answer.status_code == expect, answer.text
        return answer.json()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("refunds")
    with served_with_double(request.param, workdir, workers=2) as (url, base_url, double):
        served = Stack(base_url, url, double)
        yield served
        served.http.close()
        served.engine.dispose()


class Shop:
    """A fresh project selling 500 credits for 9.00; `ai.chat` costs 1 credit."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        key = self.key = f"r{secrets.token_hex(4)}"
        self.token = stack.admin("/projects", {"key": key, "name": key, "origins": [ORIGIN]})[
            "token"
        ]
        stack.admin(
            f"/projects/{key}/features", {"key": "ai.chat", "name": "Chat", "type": "metered"}
        )
        plan = {"key": "free", "name": "Free", "is_default": True, "features": {"ai.chat": True}}
        stack.admin(f"/projects/{key}/plans", plan)
        stack.admin(f"/projects/{key}/tenants", {"key": "acme", "email": "ops@acme.test"})
        self.price = create_price(stack.sdk, 900, interval=None, name="500 credits")
        pool = {"key": "credits", "name": "Credits", "packs": {self.price: 500}}
        stack.admin(f"/projects/{key}/credit-pools", pool | {"costs": {"ai.chat": 1}})

    def client(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        answer = self.stack.http.request(
            method, path, json=body, headers={"Authorization": f"Bearer {self.token}"}
        )
        assert answer.status_code == expect, answer.text
        return answer.json()

    def buy(self) -> str:
        """A top-up paid in Stripe; the double delivers what follows. Its PaymentIntent."""
        body = {"tenant": "acme", "price": self.price, "success_url": f"{ORIGIN}/done"}
        opened = self.client("POST", "/v1/topups", body | {"cancel_url": ORIGIN})
        return str(self.stack.double.complete_checkout(opened["id"])["payment_intent"])

    def pool(self) -> Any:
        (pool,) = self.client("GET", "/v1/tenants/acme/balances")["pools"]
        with self.stack.engine.connect() as conn:
            ledger_balance(conn, datetime.now(UTC))  # every bucket holds the sum of its rows
        assert pool["balance"] == sum(b["remaining"] for b in pool["buckets"])
        return pool


def _rows(pool: Any, kind: str) -> list[Any]:
    return [e for e in pool["ledger"] if e["kind"] == kind]


def test_refunds_delivered_shuffled_and_repeated_take_their_share_back_once(
    stack: Stack,
) -> None:
    shop = Shop(stack)
    stack.double.hold_deliveries()
    try:
        payment = shop.buy()
        stack.sdk.v1.refunds.create(params={"payment_intent": payment, "amount": 300})
        stack.sdk.v1.refunds.create(params={"payment_intent": payment, "amount": 300})
        deliveries = stack.double.deliver(order="shuffled", duplicate=True, seed=13)
    finally:
        stack.double.resume_deliveries()

    assert all(d.ok for d in deliveries), [d for d in deliveries if not d.ok]
    pool = shop.pool()
    assert pool["balance"] == 500 - 333  # 6.00 of 9.00: 333.3 credits, rounded down
    assert [e["amount"] for e in _rows(pool, "topup")] == [500]
    assert sum(e["amount"] for e in _rows(pool, "refund")) == -333


def test_a_refund_racing_the_tenants_uses_removes_exactly_what_is_unspent(stack: Stack) -> None:
    shop = Shop(stack)
    payment = shop.buy()
    stack.double.wait_for_deliveries()
    assert shop.pool()["balance"] == 500

    def uses(first: int, count: int) -> list[dict[str, object]]:
        return [
            {"tenant": "acme", "feature": "ai.chat", "idempotency_key": f"u{i}", "enforce": True}
            for i in range(first, first + count)
        ]

    async def race() -> list[httpx.Response]:
        """200 uses at once, then 300 more with the refund let go among them."""
        spent = await fire(stack.base_url, shop.token, uses(0, 200))
        racing = asyncio.create_task(fire(stack.base_url, shop.token, uses(200, 300)))
        await asyncio.sleep(0.4)  # the second wave is let go at the gate, and under way
        await asyncio.to_thread(stack.sdk.v1.refunds.create, params={"payment_intent": payment})
        return spent + await racing

    responses = asyncio.run(race())
    stack.double.wait_for_deliveries()

    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 402}, statuses
    pool = shop.pool()
    (refund,) = _rows(pool, "refund")
    spent = statuses[201]
    assert pool["balance"] == 0
    # Every credit was either spent or taken back; what was spent is what could not be.
    assert spent - refund["amount"] == 500
    assert refund["unrecovered"] == spent
    assert spent >= 200  # the first wave was spent before the refund could take it


REFUND_TOTALS = text(
    "SELECT -SUM(l.amount), SUM(l.unrecovered), MAX(tu.credits_unrecovered) FROM credit_ledger l"
    " JOIN credit_topups tu ON tu.bucket_id = l.bucket_id"
    " JOIN tenants t ON t.id = l.tenant_id JOIN projects p ON p.id = t.project_id"
    " WHERE p.key = :project AND l.kind = 'refund'"
)


def test_a_refund_racing_releases_of_held_credits_is_not_undone(stack: Stack) -> None:
    """All 500 credits held (50 holds of 10); a full refund arrives while half the holds are
    released, each twice at once; the other half is released after it. Every credit is
    taken back exactly once, whichever came first, and nothing stays unrecovered."""
    shop = Shop(stack)
    payment = shop.buy()
    stack.double.wait_for_deliveries()
    hold = {"tenant": "acme", "feature": "ai.chat", "quantity": 10}
    held = [
        shop.client("POST", "/v1/reservations", hold | {"idempotency_key": f"h{i}"}, 201)["id"]
        for i in range(50)
    ]
    assert shop.pool()["balance"] == 0

    def releases(ids: list[str]) -> list[tuple[str, dict[str, object]]]:
        return [(f"/v1/reservations/{i}/release", {}) for i in ids]

    async def race() -> list[httpx.Response]:
        racing = asyncio.create_task(
            fire_calls(stack.base_url, shop.token, releases(held[:25]) * 2)
        )
        await asyncio.sleep(0.3)  # the releases are let go at the gate, and under way
        await asyncio.to_thread(stack.sdk.v1.refunds.create, params={"payment_intent": payment})
        return await racing

    responses = asyncio.run(race())
    stack.double.wait_for_deliveries()
    late = asyncio.run(fire_calls(stack.base_url, shop.token, releases(held[25:]) * 2))

    assert [r.text for r in responses + late if r.status_code != 200] == []
    assert {r.json()["status"] for r in responses + late} == {"released"}
    pool = shop.pool()  # and the ledger adds up
    assert pool["balance"] == 0
    with stack.engine.connect() as conn:
        taken, unrecovered, on_topup = conn.execute(REFUND_TOTALS, {"project": shop.key}).one()
    assert (taken, unrecovered, on_topup) == (500, 0, 0)
