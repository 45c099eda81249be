"""Credits exact under concurrency: many enforced uses at once against a real 2-worker server,
on SQLite and PostgreSQL. After each race the ledger must add up (`ledgers.ledger_balance`):
every bucket holds the sum of its rows, none below zero, and the balance the API answers is
the sum of the ledger."""

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from billplane.settings import Settings
from conftest import ADMIN_TOKEN, fresh_database
from ledgers import ledger_balance
from races import fire, fire_calls
from servers import running_server

# Several multi-worker servers: one at a time on PostgreSQL (`make test` runs two processes).
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("many_connections")]

COSTS = {"ai.chat": 1, "ai.think": 3, "ai.image": 5}


class Server:
    def __init__(self, base_url: str, database_url: str) -> None:
        self.base_url = base_url
        self.engine = create_engine(Settings(database_url=database_url).sqlalchemy_url)

    def admin(self, method: str, path: str, body: Any, expect: int) -> Any:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        response = httpx.request(
            method, f"{self.base_url}/admin/api{path}", json=body, headers=headers, timeout=60
        )
        assert response.status_code == expect, response.text
        return response.json()

    def project(self, *, allowance: dict[str, Any] | None = None) -> tuple[str, str]:
        """A new project whose default plan grants the AI features, priced in `credits` (and
        gives `allowance`, if given); returns (project key, token)."""
        key = f"c{secrets.token_hex(4)}"
        token = self.admin("POST", "/projects", {"key": key, "name": key}, 201)["token"]
        for feature in [*COSTS, "ai.overage"]:
            body = {"key": feature, "name": feature, "type": "metered"}
            self.admin("POST", f"/projects/{key}/features", body, 201)
        plan = {"key": "free", "name": "Free", "is_default": True}
        plan["features"] = {f: True for f in [*COSTS, "ai.overage"]}
        self.admin("POST", f"/projects/{key}/plans", plan, 201)
        self.admin("POST", f"/projects/{key}/tenants", {"key": "acme"}, 201)
        pool = {"key": "credits", "name": "Credits", "costs": COSTS}
        self.admin("POST", f"/projects/{key}/credit-pools", pool, 201)
        if allowance is not None:
            path = f"/projects/{key}/credit-pools/credits/allowances/free"
            self.admin("PUT", path, allowance, 200)
        return key, token

    def grant(self, project: str, amount: int, **extra: Any) -> None:
        body = {"pool": "credits", "amount": amount, "reason": "race"} | extra
        self.admin("POST", f"/projects/{project}/tenants/acme/credit-grants", body, 201)

    def balance(self, project: str, token: str) -> int:
        """The balance the API answers, asserted to be the sum of the ledger."""
        response = httpx.get(
            f"{self.base_url}/v1/tenants/acme/balances",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text
        (pool,) = response.json()["pools"]
        with self.engine.connect() as conn:
            # Every tenant's buckets are checked; this tenant's live ones make its balance.
            ledger_balance(conn, datetime.now(UTC))
            summed = conn.execute(
                text(
                    "SELECT COALESCE(SUM(l.amount), 0) FROM credit_ledger l"
                    " JOIN credit_buckets b ON b.id = l.bucket_id"
                    " JOIN tenants t ON t.id = b.tenant_id JOIN projects p ON p.id = t.project_id"
                    " WHERE p.key = :project AND (b.expires_at IS NULL OR b.expires_at > :now)"
                ),
                {"project": project, "now": datetime.now(UTC)},
            ).scalar()
        assert pool["balance"] == summed
        return int(pool["balance"])

    def used(self, token: str, feature: str) -> int:
        answer = httpx.post(
            f"{self.base_url}/v1/check",
            json={"tenant": "acme", "feature": feature},
            headers={"Authorization": f"Bearer {token}"},
        )
        return int(answer.json()["used"])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with (
        fresh_database(request.param, tmp_path_factory.mktemp("credits")) as url,
        running_server(url, ADMIN_TOKEN, workers=2) as base_url,
    ):
        served = Server(base_url, url)
        yield served
        served.engine.dispose()


def race(server: Server, token: str, features: list[str]) -> list[httpx.Response]:
    bodies = [
        {"tenant": "acme", "feature": f, "idempotency_key": f"k{i}", "enforce": True}
        for i, f in enumerate(features)
    ]
    return asyncio.run(fire(server.base_url, token, bodies))


def statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


def test_200_uses_of_cost_1_against_20_credits_admit_exactly_20(server: Server) -> None:
    project, token = server.project()
    server.grant(project, 20)
    responses = race(server, token, ["ai.chat"] * 200)

    assert statuses(responses) == {201: 20, 402: 180}, statuses(responses)
    refused = {r.json()["error"]["code"] for r in responses if r.status_code == 402}
    assert refused == {"insufficient_credits"}
    assert sorted(r.json()["balance"] for r in responses if r.status_code == 201) == list(range(20))
    assert server.balance(project, token) == 0
    assert server.used(token, "ai.chat") == 20


def test_a_periods_allowance_is_made_once_and_spent_exactly(server: Server) -> None:
    """The first uses of a period race to make its allowance bucket: one bucket, one row."""
    project, token = server.project(allowance={"grant": 20, "reset": "month"})
    responses = race(server, token, ["ai.chat"] * 200)

    assert statuses(responses) == {201: 20, 402: 180}, statuses(responses)
    assert server.balance(project, token) == 0
    with server.engine.connect() as conn:
        made = conn.execute(
            text(
                "SELECT COUNT(*) FROM credit_ledger l JOIN tenants t ON t.id = l.tenant_id"
                " JOIN projects p ON p.id = t.project_id"
                " WHERE p.key = :project AND l.kind = 'allowance'"
            ),
            {"project": project},
        ).scalar()
    assert made == 1


def test_mixed_costs_admit_exactly_what_fits(server: Server) -> None:
    project, token = server.project()
    server.grant(project, 50)
    features = ["ai.think", "ai.image"] * 60
    responses = race(server, token, features)

    admitted = [f for f, r in zip(features, responses, strict=True) if r.status_code == 201]
    assert set(statuses(responses)) == {201, 402}
    left = server.balance(project, token)
    assert sum(COSTS[f] for f in admitted) == 50 - left
    # Balances only fall: a refused use of cost 3 saw less than 3, and so does the end.
    assert left < 3


def test_a_use_spanning_several_buckets_is_one_step(server: Server) -> None:
    """Ten buckets of one credit, each expiring at another time; uses of cost 3 take three
    buckets each, all or nothing."""
    project, token = server.project()
    soon = datetime.now(UTC) + timedelta(days=1)
    for day in range(10):
        server.grant(project, 1, expires_at=(soon + timedelta(days=day)).isoformat())
    responses = race(server, token, ["ai.think"] * 60)

    assert statuses(responses) == {201: 3, 402: 57}, statuses(responses)
    assert server.balance(project, token) == 1
    with server.engine.connect() as conn:
        taken = conn.execute(
            text(
                "SELECT l.idempotency_key, SUM(l.amount), COUNT(*) FROM credit_ledger l"
                " JOIN tenants t ON t.id = l.tenant_id JOIN projects p ON p.id = t.project_id"
                " WHERE p.key = :project AND l.kind = 'deduction' GROUP BY l.idempotency_key"
            ),
            {"project": project},
        ).all()
    assert sorted((int(s), int(n)) for _, s, n in taken) == [(-3, 3)] * 3


def test_overage_the_plan_allows_is_counted_exactly(server: Server) -> None:
    allowance = {"grant": 20, "reset": "month", "overage": "ai.overage"}
    project, token = server.project(allowance=allowance)
    responses = race(server, token, ["ai.chat"] * 50)

    assert statuses(responses) == {201: 50}, statuses(responses)
    assert sum(r.json()["overage"] for r in responses) == 30
    assert server.balance(project, token) == 0
    assert server.used(token, "ai.overage") == 30


def test_reservations_and_uses_racing_never_overspend(server: Server) -> None:
    """Holds of 5 and uses of 1 at once against 60 credits: what is held and spent never
    passes 60; once the holds are released, the balance is what the uses left."""
    project, token = server.project()
    server.grant(project, 60)
    calls: list[tuple[str, dict[str, Any]]] = []
    for i in range(60):
        base = {"tenant": "acme", "idempotency_key": f"k{i}"}
        if i % 2:
            calls.append(("/v1/reservations", {**base, "feature": "ai.image", "quantity": 1}))
        else:
            calls.append(("/v1/usage", {**base, "feature": "ai.chat", "enforce": True}))
    calls = calls * 2  # every key twice: a repeat holds or spends nothing more
    responses = asyncio.run(fire_calls(server.base_url, token, calls))

    assert {r.status_code for r in responses} <= {200, 201, 402}
    held = {r.json()["id"] for r in responses if r.status_code in (200, 201) and "id" in r.json()}
    spent = {
        r.json()["idempotency_key"]
        for r in responses
        if r.status_code in (200, 201) and "idempotency_key" in r.json()
    }
    assert 5 * len(held) + len(spent) <= 60
    left = server.balance(project, token)
    assert left == 60 - 5 * len(held) - len(spent)
    refused_uses = [
        r for (path, _), r in zip(calls, responses, strict=True)
        if path == "/v1/usage" and r.status_code == 402
    ]  # fmt: skip
    if refused_uses:  # one use of 1 found nothing left: nor does the end
        assert left == 0
    for reservation in held:
        released = httpx.post(
            f"{server.base_url}/v1/reservations/{reservation}/release",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert released.status_code == 200, released.text
    assert server.balance(project, token) == 60 - len(spent)


def test_batches_with_overage_and_its_metered_feature_racing_single_uses_count_exactly(
    server: Server,
) -> None:
    """Each batch has a credit-priced use falling into overage and a direct use of the
    overage's metered feature; single uses of each race them. On PostgreSQL these
    transactions lock the pool's buckets and the overage's counter, in whichever order their
    events come: none may deadlock (a 503), and every use counts once."""
    allowance = {"grant": 20, "reset": "month", "overage": "ai.overage"}
    project, token = server.project(allowance=allowance)
    event = {"tenant": "acme", "enforce": True}
    calls: list[tuple[str, dict[str, Any]]] = []
    for i in range(30):
        overage = event | {"feature": "ai.overage", "idempotency_key": f"o{i}"}
        chat = event | {"feature": "ai.chat", "idempotency_key": f"c{i}"}
        calls += [
            ("/v1/usage/batch", {"events": [overage, chat] if i % 2 else [chat, overage]}),
            ("/v1/usage", event | {"feature": "ai.chat", "idempotency_key": f"s{i}"}),
            ("/v1/usage", event | {"feature": "ai.overage", "idempotency_key": f"d{i}"}),
        ]
    responses = asyncio.run(fire_calls(server.base_url, token, calls))

    assert [r.text for r in responses if r.status_code not in (200, 201)] == []
    batched = [e["status"] for r in responses if r.status_code == 200 for e in r.json()["data"]]
    assert batched == [201] * 60
    assert server.balance(project, token) == 0
    assert server.used(token, "ai.chat") == 60
    assert server.used(token, "ai.overage") == 60 - 20 + 60  # past the 20 credits, and direct


def test_batches_spending_two_tenants_credits_in_opposite_orders_never_deadlock(
    server: Server,
) -> None:
    """Two tenants' credit-priced uses in one batch, named in either order by racing batches:
    each batch takes the tenants' buckets in one order (by tenant), so PostgreSQL never has to
    break a deadlock between them (its own count of deadlocks stays put), and every use counts
    and costs once."""
    project, token = server.project()
    server.admin("POST", f"/projects/{project}/tenants", {"key": "beta"}, 201)
    for tenant in ("acme", "beta"):
        grant = {"pool": "credits", "amount": 1000, "reason": "race"}
        server.admin("POST", f"/projects/{project}/tenants/{tenant}/credit-grants", grant, 201)
    deadlocks_before = _deadlocks(server)
    calls: list[tuple[str, dict[str, Any]]] = []
    for i in range(80):
        acme = {"tenant": "acme", "feature": "ai.chat", "idempotency_key": f"a{i}"}
        beta = {"tenant": "beta", "feature": "ai.chat", "idempotency_key": f"b{i}"}
        events = [acme, beta] if i % 2 else [beta, acme]
        calls.append(("/v1/usage/batch", {"events": [e | {"enforce": True} for e in events]}))
    responses = asyncio.run(fire_calls(server.base_url, token, calls))

    assert [r.status_code for r in responses] == [200] * len(calls)
    results = [result for r in responses for result in r.json()["data"]]
    assert Counter(result["status"] for result in results) == {201: 160}
    for tenant in ("acme", "beta"):  # 80 uses of cost 1 each
        answer = httpx.get(
            f"{server.base_url}/v1/tenants/{tenant}/balances",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.json()["pools"][0]["balance"] == 1000 - 80
    with server.engine.connect() as conn:
        ledger_balance(conn, datetime.now(UTC))  # every bucket is the sum of its rows
    assert _deadlocks(server) == deadlocks_before


def _deadlocks(server: Server) -> int | None:
    """PostgreSQL's count of deadlocks it broke in this database, once every backend has
    reported (a busy backend reports its statistics at most once a second, an idle one within
    ten); None on SQLite, whose one writer at a time never deadlocks."""
    if server.engine.dialect.name != "postgresql":
        return None
    time.sleep(11)
    query = "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
    with server.engine.connect() as conn:
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        return int(conn.execute(text(query)).scalar_one())
