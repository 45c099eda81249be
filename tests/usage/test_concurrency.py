"""Exactly once, never over: many concurrent requests against a real 2-worker server.

Correctness must come from the database (one conditional UPDATE per count, a unique key per
event), never from a lock inside one process: two worker processes share nothing else.
"""

import asyncio
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from conftest import ADMIN_TOKEN, fresh_database
from races import fire, seed, used
from servers import running_server

# Several multi-worker servers: one at a time on PostgreSQL (`make test` runs two processes).
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("many_connections")]

CONCURRENCY = 240
LIMIT = 20


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with (
        fresh_database(request.param, tmp_path_factory.mktemp("e2e")) as url,
        running_server(url, ADMIN_TOKEN, workers=2) as base_url,
    ):
        yield base_url


def test_enforced_usage_under_concurrency_never_passes_the_limit(server: str) -> None:
    token, tenant = seed(server, LIMIT)
    bodies = [
        {"tenant": tenant, "feature": "reports", "idempotency_key": f"k{i}", "enforce": True}
        for i in range(CONCURRENCY)
    ]
    responses = asyncio.run(fire(server, token, bodies))

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: LIMIT, 402: CONCURRENCY - LIMIT}, statuses
    refused = next(r for r in responses if r.status_code == 402).json()
    assert refused["error"]["code"] == "limit_reached"
    assert used(server, token, tenant) == LIMIT


def test_same_idempotency_key_under_concurrency_counts_once(server: str) -> None:
    token, tenant = seed(server, 1000)
    body = {"tenant": tenant, "feature": "reports", "idempotency_key": "once", "quantity": 3}
    responses = asyncio.run(fire(server, token, [body] * 100))

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 200: 99}, statuses
    assert {r.json()["used"] for r in responses} == {3}
    assert all(r.json()["duplicate"] for r in responses if r.status_code == 200)
    assert used(server, token, tenant) == 3


def test_partial_room_admits_only_what_fits(server: str) -> None:
    """Quantities of 3 against 20 units: exactly six fit, whatever the interleaving."""
    token, tenant = seed(server, LIMIT)
    bodies = [
        {
            "tenant": tenant,
            "feature": "reports",
            "idempotency_key": f"q{i}",
            "quantity": 3,
            "enforce": True,
        }
        for i in range(200)
    ]
    responses = asyncio.run(fire(server, token, bodies))

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 6, 402: 194}, statuses
    assert used(server, token, tenant) == 18


async def _fire_batches(
    base_url: str, token: str, batches: list[list[dict[str, object]]]
) -> list[httpx.Response]:
    async with httpx.AsyncClient(
        base_url=base_url, timeout=120, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        return await asyncio.gather(
            *(client.post("/v1/usage/batch", json={"events": events}) for events in batches)
        )


def test_concurrent_batches_admit_exactly_what_fits_and_count_a_shared_key_once(
    server: str,
) -> None:
    """Eight batches at once, each crossing the limit on its own and all naming one key."""
    token, tenant = seed(server, 50)
    event = {"tenant": tenant, "feature": "reports", "enforce": True}
    batches = [
        [{**event, "idempotency_key": "shared"}]
        + [{**event, "idempotency_key": f"b{b}-{i}"} for i in range(20)]
        for b in range(8)
    ]
    responses = asyncio.run(_fire_batches(server, token, batches))

    assert [r.status_code for r in responses] == [200] * 8
    results = [item for r in responses for item in r.json()["data"]]
    statuses = Counter(item["status"] for item in results)
    assert statuses[201] == 50, statuses
    assert set(statuses) <= {200, 201, 402}, statuses
    refusals = {item["error"]["code"] for item in results if item["status"] == 402}
    assert refusals == {"limit_reached"}
    shared = Counter(r.json()["data"][0]["status"] for r in responses)
    assert shared[201] <= 1, shared
    assert used(server, token, tenant) == 50
