"""The credits tests' project: realtyos with AI features priced in a pool, and the calls the
tests make of it."""

from typing import Any, Protocol

import pytest
from sqlalchemy.orm import Session

from conftest import Client, Clock, Setup
from ledgers import ledger_balance

POOLS = "/admin/api/projects/realtyos/credit-pools"
GRANTS = "/admin/api/projects/realtyos/tenants/acme/credit-grants"
RESERVATIONS = "/v1/reservations"


class Calling(Protocol):
    """What the client-side helpers call through: a test's set-up (or a Stripe shop)."""

    @property
    def api(self) -> Client: ...


@pytest.fixture
def credits(realtyos: Setup) -> Setup:
    """realtyos with three metered AI features, granted by the free plan, two priced in the
    pool `credits` (chat 1, image 5) and one to count overage in."""
    for key in ("ai.chat", "ai.image", "ai.overage"):
        realtyos.admin.feature("realtyos", key, "metered")
    features = {
        "listings.publish": {"limit": 3, "reset": "month"},
        "ai.tokens": True,
        "ai.chat": True,
        "ai.image": True,
        "ai.overage": True,
    }
    realtyos.admin.call(
        "PATCH", "/admin/api/projects/realtyos/plans/free", json={"features": features}
    )
    body = {"key": "credits", "name": "Credits", "costs": {"ai.chat": 1, "ai.image": 5}}
    realtyos.admin.call("POST", POOLS, 201, json=body)
    return realtyos


def grant(setup: Setup, amount: int, expect: int = 201, **extra: Any) -> Any:
    body = {"pool": "credits", "amount": amount, "reason": "test"} | extra
    return setup.admin.call("POST", GRANTS, expect, json=body)


def usage(setup: Setup, key: str, expect: int, **body: Any) -> Any:
    sent = {"tenant": "acme", "feature": "ai.chat", "idempotency_key": key, "enforce": True}
    response = setup.api.post("/v1/usage", sent | body)
    assert response.status_code == expect, response.text
    return response.json()


def balances(setup: Setup) -> Any:
    response = setup.api.get("/v1/tenants/acme/balances")
    assert response.status_code == 200, response.text
    (pool,) = response.json()["pools"]
    return pool


def check(setup: Setup, **body: Any) -> Any:
    response = setup.api.post("/v1/check", {"tenant": "acme", "feature": "ai.chat"} | body)
    assert response.status_code == 200, response.text
    return response.json()


def assert_balance(setup: Setup, session: Session, clock: Clock, expected: int) -> None:
    """The balance the API answers is `expected` and the sum of the ledger."""
    assert balances(setup)["balance"] == expected
    assert ledger_balance(session, clock()) == expected


def allowance(setup: Setup, expect: int = 200, **body: Any) -> Any:
    path = f"{POOLS}/credits/allowances/free"
    return setup.admin.call("PUT", path, expect, json=body)


def reserve(setup: Calling, key: str, expect: int = 201, **body: Any) -> Any:
    sent = {"tenant": "acme", "feature": "ai.image", "quantity": 4, "idempotency_key": key}
    response = setup.api.post(RESERVATIONS, sent | body)
    assert response.status_code == expect, response.text
    return response.json()


def settle(setup: Calling, reservation: str, how: str, expect: int = 200, **body: Any) -> Any:
    response = setup.api.post(f"{RESERVATIONS}/{reservation}/{how}", body)
    assert response.status_code == expect, response.text
    return response.json()
