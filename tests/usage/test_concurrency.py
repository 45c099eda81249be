"""Exactly once, never over: many concurrent requests against a real 2-worker server.

Correctness must come from the database (one conditional UPDATE per count, a unique key per
event), never from a lock inside one process: two worker processes share nothing else.
"""

import asyncio
import itertools
import os
import secrets
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

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


def test_refusals_reach_the_log_in_the_background(server: str) -> None:
    """Every 402 of a race and every refused check is kept, written by each worker's writer
    within about a second, not by the refused request itself."""
    project = f"r{secrets.token_hex(4)}"
    token, tenant = seed(server, LIMIT, key=project)
    bodies = [
        {"tenant": tenant, "feature": "reports", "idempotency_key": f"k{i}", "enforce": True}
        for i in range(LIMIT + 30)
    ]
    statuses = Counter(r.status_code for r in asyncio.run(fire(server, token, bodies)))
    assert statuses == {201: LIMIT, 402: 30}, statuses
    check = {"tenant": tenant, "feature": "reports", "quantity": 1}
    for _ in range(5):
        answer = httpx.post(
            f"{server}/v1/check", json=check, headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.json()["reason"] == "limit_reached"
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    path = f"{server}/admin/api/projects/{project}/refusals?tenant={tenant}&limit=100"
    deadline, logged = time.monotonic() + 10, []
    while time.monotonic() < deadline:
        logged = httpx.get(path, headers=admin).json()["data"]
        if len(logged) >= 35:
            break
        time.sleep(0.2)
    assert Counter((r["source"], r["reason"]) for r in logged) == {
        ("usage", "limit_reached"): 30,
        ("check", "limit_reached"): 5,
    }
    assert {(r["used"], r["limit"]) for r in logged} == {(LIMIT, LIMIT)}


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


def _workers_of(base_url: str) -> list[int]:
    """The pids of the worker processes of the `billplane serve` listening at `base_url`."""
    port = base_url.rsplit(":", 1)[1]
    processes = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            argv = (stat.parent / "cmdline").read_bytes().split(b"\0")
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        processes[int(stat.parent.name)] = (argv, parent)
    masters = {
        pid
        for pid, (argv, _) in processes.items()
        if any(arg.endswith(b"billplane") for arg in argv)
        and b"--port" in argv
        and argv[argv.index(b"--port") + 1] == port.encode()
    }
    # uvicorn spawns its workers (multiprocessing's "spawn"), beside a resource tracker.
    return [
        pid
        for pid, (argv, parent) in processes.items()
        if parent in masters and any(b"spawn_main" in arg for arg in argv)
    ]


async def _load_while_killing(
    base_url: str, token: str, tenant: str, kills: int
) -> tuple[dict[str, int], list[str], list[list[int]]]:
    """Enforced usage from 16 clients, each key new; once the workers answer, both get SIGKILL
    (uvicorn's master starts new ones), `kills` times. Returns each answered key's status, the
    keys whose answer was lost with a killed worker, and the workers killed each time."""
    answered: dict[str, int] = {}
    lost: list[str] = []
    killed: list[list[int]] = []
    keys = itertools.count()
    stop = asyncio.Event()
    async with httpx.AsyncClient(
        base_url=base_url, timeout=60, headers={"Authorization": f"Bearer {token}"}
    ) as client:

        async def send_until_stopped() -> None:
            while not stop.is_set():
                key = f"crash-{next(keys)}"
                body = {"tenant": tenant, "feature": "reports", "idempotency_key": key}
                try:
                    response = await client.post("/v1/usage", json={**body, "enforce": True})
                except httpx.TransportError:
                    lost.append(key)
                else:
                    answered[key] = response.status_code

        async def served(more: int) -> None:
            wanted, deadline = len(answered) + more, time.monotonic() + 60
            while len(answered) < wanted:
                assert time.monotonic() < deadline, "the server did not serve again in 60 s"
                await asyncio.sleep(0.05)

        senders = [asyncio.create_task(send_until_stopped()) for _ in range(16)]
        for _ in range(kills):
            await served(100)  # under load: the (new) workers answer
            workers = _workers_of(base_url)
            for pid in workers:
                os.kill(pid, signal.SIGKILL)
            killed.append(workers)
        await served(100)
        stop.set()
        await asyncio.gather(*senders)
    return answered, lost, killed


def test_killed_workers_lose_no_acknowledged_usage(server: str) -> None:
    """Crash safety: every usage answered is counted, and every key
    whose answer died with its worker was counted once or not at all, so a retry settles it."""
    token, tenant = seed(server, 2**31 - 1)
    answered, lost, killed = asyncio.run(_load_while_killing(server, token, tenant, kills=2))

    assert [len(workers) for workers in killed] == [2, 2], killed
    assert not set(killed[0]) & set(killed[1]), "the second kill found the same workers"
    assert Counter(answered.values()) == {201: len(answered)}, Counter(answered.values())
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {token}"}) as client:
        for key in lost:
            body = {"tenant": tenant, "feature": "reports", "idempotency_key": key}
            retried = client.post("/v1/usage", json={**body, "enforce": True})
            # 201: the first attempt died before its commit; 200: it committed, answer lost.
            assert retried.status_code in (200, 201), retried.text
    assert used(server, token, tenant) == len(answered) + len(lost)
