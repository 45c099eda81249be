"""Database faults under enforced usage load, against a real 2-worker server on PostgreSQL:
backends ended again and again, then the database going away and coming back (a restart).

What must hold: every answer is a success or a 503 `database_unavailable` (never a 500); every
usage acknowledged is counted, exactly once; a key answered 503 can be sent again and is then
acknowledged; and the server needs no help to recover — what is sent once the database is back
succeeds.
"""

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from conftest import ADMIN_TOKEN, PG_URL, fresh_database
from races import seed, used
from servers import running_server
from tcp_proxy import Proxy, proxy_to

# Multi-worker servers and a burst of connections: one at a time on PostgreSQL.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("many_connections")]

CALLS = 400
CONCURRENCY = 16


@dataclass
class Served:
    base_url: str
    database_url: str  # as the server reaches it
    direct_url: str  # the same database, reached directly (the test's own reads and kills)
    proxy: Proxy


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A 2-worker server on a fresh database, reached through a proxy the test can take down."""
    with fresh_database("postgresql", tmp_path_factory.mktemp("faults")) as url:
        postgres = urlsplit(url)
        with proxy_to(postgres.port or 5432) as proxy:
            proxied = url.replace(f":{postgres.port}/", f":{proxy.port}/")
            with running_server(proxied, ADMIN_TOKEN, workers=2) as base_url:
                yield Served(base_url, proxied, url, proxy)


@dataclass
class Answer:
    key: str
    status: int
    sent_at: float


async def _load(
    base_url: str, token: str, keys: list[str], admin_path: str, during: float = 0
) -> list[Answer]:
    """Each key's enforced usage, `CONCURRENCY` at a time, with an admin read (the ORM's path)
    after every tenth; spread over at least `during` seconds."""
    queue = list(reversed(keys))
    answers: list[Answer] = []
    pause = during * CONCURRENCY / len(keys)
    client_headers = {"Authorization": f"Bearer {token}"}
    admin_headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:

        async def worker() -> None:
            while queue:
                key = queue.pop()
                body = {"tenant": "acme", "feature": "reports", "idempotency_key": key}
                sent_at = time.monotonic()
                answer = await client.post(
                    "/v1/usage", json={**body, "enforce": True}, headers=client_headers
                )
                answers.append(Answer(key, answer.status_code, sent_at))
                if answer.status_code == 503:
                    assert answer.json()["error"]["code"] == "database_unavailable"
                    assert answer.headers["Retry-After"] == "1"
                if len(answers) % 10 == 0:
                    sent_at = time.monotonic()
                    read = await client.get(admin_path, headers=admin_headers)
                    answers.append(Answer("admin", read.status_code, sent_at))
                await asyncio.sleep(pause)

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return answers


def _retry(base_url: str, token: str, answers: list[Answer]) -> Counter[int]:
    """Send each key answered 503 once more, as a client honouring Retry-After would."""
    refused = [a.key for a in answers if a.status == 503 and a.key != "admin"]
    again = asyncio.run(_load(base_url, token, refused, "/healthz")) if refused else []
    return Counter(a.status for a in again if a.key != "admin")


def _assert_every_key_counted_once(served: Served, token: str, keys: list[str]) -> None:
    assert used(served.base_url, token, "acme") == len(keys)
    with psycopg.connect(served.direct_url) as conn:
        recorded = conn.execute(
            "SELECT idempotency_key FROM usage_events WHERE idempotency_key = ANY(%s)", (keys,)
        ).fetchall()
    assert sorted(k for (k,) in recorded) == sorted(keys)


@contextmanager
def ending_backends(database_url: str, every: float) -> Iterator[list[int]]:
    """`pg_terminate_backend` on every connection to the database, each `every` seconds, while
    the block runs; yields the running count of backends ended."""
    ended = [0]
    stop = threading.Event()
    database = database_url.rsplit("/", 1)[1]

    def end_them() -> None:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            while not stop.wait(every):
                ended[0] += len(
                    admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = %s AND pid <> pg_backend_pid()",
                        (database,),
                    ).fetchall()
                )

    killer = threading.Thread(target=end_them)
    killer.start()
    try:
        yield ended
    finally:
        stop.set()
        killer.join()
    time.sleep(0.2)  # the last backends ended finish going away


def test_backends_ended_under_load_lose_no_acknowledged_usage(served: Served) -> None:
    token, _ = seed(served.base_url, 1_000_000)
    keys = [f"ended-{i}" for i in range(CALLS)]
    admin_path = "/admin/api/projects"
    with ending_backends(served.direct_url, every=0.1) as ended:
        answers = asyncio.run(_load(served.base_url, token, keys, admin_path, during=3))

    statuses = Counter(a.status for a in answers)
    assert set(statuses) <= {200, 201, 503}, statuses
    assert ended[0] >= 10, ended  # the faults did land, again and again
    # Sent again once the backends are left alone, each key is acknowledged at once.
    assert set(_retry(served.base_url, token, answers)) <= {200, 201}
    _assert_every_key_counted_once(served, token, keys)


def test_a_database_that_goes_away_and_comes_back_loses_nothing(served: Served) -> None:
    token, _ = seed(served.base_url, 1_000_000)
    keys = [f"restart-{i}" for i in range(CALLS)]
    back_at: list[float] = []

    def restart() -> None:
        time.sleep(0.8)
        served.proxy.down()
        time.sleep(1.0)
        served.proxy.up()
        back_at.append(time.monotonic())

    restarting = threading.Thread(target=restart)
    restarting.start()
    answers = asyncio.run(_load(served.base_url, token, keys, "/admin/api/projects", during=3))
    restarting.join()

    statuses = Counter(a.status for a in answers)
    assert set(statuses) <= {200, 201, 503}, statuses
    assert statuses[503] > 0, "the load never met the outage"
    after = Counter(a.status for a in answers if a.sent_at > back_at[0])
    assert after, "nothing was sent once the database was back"
    assert set(after) <= {200, 201}, after  # recovered by itself, at once
    assert set(_retry(served.base_url, token, answers)) <= {200, 201}
    _assert_every_key_counted_once(served, token, keys)
