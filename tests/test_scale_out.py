"""Scale-out, proven here: two billplane servers (two `billplane serve` processes on ports of
their own, as two machines would run them) behind HAProxy balancing round-robin, both on one
PostgreSQL database reached through PgBouncer in transaction pooling mode — the topology the
README's "Running in production" describes.

Through the balancer: the enforced race admits exactly the limit, and Stripe's lifecycle
delivered shuffled and repeated ends as Stripe says. Server by server: a token revoked through
one is refused by the other on the very next request. And the senders of webhooks to apps, one
in each server, send each event of the outbox once, in each tenant's order, claiming through
PgBouncer's transaction pooling.
"""

import asyncio
import random
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from app_receiver import receiving
from balancers import HAPROXY, PGBOUNCER, running_haproxy, running_pgbouncer
from conftest import ADMIN_TOKEN, fresh_database
from races import fire, seed, used
from servers import running_server
from stripe_double import running_double
from stripe_lifecycle import Project, Stack, assert_final, lifecycle, sdk_of
from stripe_shop import API_KEY, WEBHOOK_SECRET

pytestmark = [
    pytest.mark.e2e,
    # Two servers, PgBouncer and HAProxy, and a 200-connection burst: one at a time.
    pytest.mark.xdist_group("many_connections"),
    pytest.mark.skipif(
        not PGBOUNCER, reason="needs Debian's pgbouncer (apt-get install pgbouncer)"
    ),
    pytest.mark.skipif(not HAPROXY, reason="needs Debian's haproxy (apt-get install haproxy)"),
]

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Topology:
    balancer: str  # HAProxy's base URL
    servers: list[str]  # each billplane server's own
    stack: Stack  # the Stripe double and the lifecycle's view, through the balancer


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    workdir = tmp_path_factory.mktemp("scale-out")
    with ExitStack() as stack:
        direct = stack.enter_context(fresh_database("postgresql", workdir))
        pooled = stack.enter_context(running_pgbouncer(direct, workdir))
        double = stack.enter_context(
            running_double(webhook_url=None, webhook_secret=WEBHOOK_SECRET)
        )
        env = {
            # PgBouncer before 1.21 cannot keep prepared statements in transaction mode.
            "BILLPLANE_DB_PREPARED_STATEMENTS": "false",
            "STRIPE_SECRET_KEY": API_KEY,
            "STRIPE_API_BASE": double.base_url,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
        # Started side by side, as two machines would be: each takes seconds to import.
        with ThreadPoolExecutor(max_workers=2) as starting:
            servers = list(
                starting.map(
                    stack.enter_context,
                    [running_server(pooled, ADMIN_TOKEN, extra_env=env) for _ in range(2)],
                )
            )
        balancer = stack.enter_context(running_haproxy(servers, workdir))
        admin = stack.enter_context(httpx.Client(base_url=balancer, headers=ADMIN, timeout=60))
        double.set_webhook(f"{balancer}/webhooks/stripe", WEBHOOK_SECRET)
        yield Topology(balancer, servers, Stack(balancer, double, sdk_of(double), admin))


def _served_by(responses: list[httpx.Response]) -> Counter[str]:
    return Counter(r.headers["X-Served-By"] for r in responses)


def test_the_200_way_race_through_the_balancer_admits_exactly_the_limit(
    topology: Topology,
) -> None:
    limit = 20
    token, tenant = seed(topology.balancer, limit)
    bodies = [
        {"tenant": tenant, "feature": "reports", "idempotency_key": f"k{i}", "enforce": True}
        for i in range(200)
    ]
    responses = asyncio.run(fire(topology.balancer, token, bodies))

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: limit, 402: 200 - limit}, statuses
    assert set(_served_by(responses)) == {"s0", "s1"}, _served_by(responses)
    assert used(topology.balancer, token, tenant) == limit
    for server in topology.servers:  # each sees the same count
        assert used(server, token, tenant) == limit


def test_a_token_revoked_through_one_server_is_refused_by_the_other_at_once(
    topology: Topology,
) -> None:
    key = f"p{secrets.token_hex(4)}"
    _, tenant = seed(topology.balancer, 10, key=key)
    check = {"tenant": tenant, "feature": "reports"}
    for revoking, asking in (topology.servers, topology.servers[::-1]):
        issued = httpx.post(
            f"{revoking}/admin/api/projects/{key}/tokens", json={"name": "app"}, headers=ADMIN
        )
        assert issued.status_code == 201, issued.text
        app = {"Authorization": f"Bearer {issued.json()['token']}"}
        assert httpx.post(f"{asking}/v1/check", json=check, headers=app).status_code == 200

        revoked = httpx.delete(f"{revoking}/admin/api/tokens/{issued.json()['id']}", headers=ADMIN)
        assert revoked.status_code == 200, revoked.text

        refused = httpx.post(f"{asking}/v1/check", json=check, headers=app)
        assert refused.status_code == 401, refused.text


def test_the_lifecycle_delivered_shuffled_and_twice_across_both_servers_ends_as_stripe_says(
    topology: Topology,
) -> None:
    stack = topology.stack
    project = Project(stack)
    stack.double.hold_deliveries()
    try:
        lifecycle(project)
        pending = stack.double.pending_events()
        deliveries = pending + pending
        random.Random(7).shuffle(deliveries)
        signed = [stack.double.signed(event) for event in deliveries]
        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(pool.map(lambda d: _deliver(topology.balancer, *d), signed))
    finally:
        stack.double.resume_deliveries()  # the held originals arrive too: repeats by now

    assert [a.status_code for a in answers] == [200] * len(signed), [a.text for a in answers]
    assert set(_served_by(answers)) == {"s0", "s1"}, _served_by(answers)
    assert sum(a.json()["duplicate"] for a in answers) >= len(pending)
    assert_final(project)
    events = stack.admin.get("/admin/api/events", params={"limit": 100}).json()["data"]
    mine = {e["id"] for e in pending}
    assert Counter(e["id"] for e in events if e["id"] in mine) == dict.fromkeys(mine, 1)


def _deliver(balancer: str, payload: bytes, signature: str) -> Any:
    headers = {"Stripe-Signature": signature, "Content-Type": "application/json"}
    return httpx.post(f"{balancer}/webhooks/stripe", content=payload, headers=headers, timeout=60)


def test_each_app_webhook_is_sent_once_in_order_by_the_senders_of_both_servers(
    topology: Topology,
) -> None:
    key = f"p{secrets.token_hex(4)}"
    tenants = [f"t{i}" for i in range(4)]
    admin = topology.stack.admin
    with receiving() as receiver:
        assert admin.post("/admin/api/projects", json={"key": key, "name": key}).is_success
        for tenant in tenants:
            assert admin.post(f"/admin/api/projects/{key}/tenants", json={"key": tenant}).is_success
        endpoint = admin.post(
            f"/admin/api/projects/{key}/webhook-endpoints",
            json={"url": receiver.url, "events": ["tenant.entitlements.updated"]},
        )
        assert endpoint.status_code == 201, endpoint.text
        # Archived, restored, archived...: each PATCH alters what the tenant may do.
        patches = [
            (tenant, "archived" if n % 2 == 0 else "active") for n in range(5) for tenant in tenants
        ]
        for tenant, status in patches:
            path = f"/admin/api/projects/{key}/tenants/{tenant}"
            assert admin.patch(path, json={"status": status}).is_success
        deadline = time.monotonic() + 30
        while len(receiver.accepted()) < len(patches) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # a second sender's duplicate, if there were one, would have come by now

    accepted = receiver.accepted()
    assert Counter(Counter(r.headers["webhook-id"] for r in accepted).values()) == {1: len(patches)}
    secret = endpoint.json()["secret"]
    data = [Webhook(secret).verify(r.body, r.headers)["data"] for r in accepted]
    for tenant in tenants:
        told = [(d["sequence"], d["status"]) for d in data if d["tenant"] == tenant]
        assert told == [(n + 1, "archived" if n % 2 == 0 else "active") for n in range(5)]


def test_the_readme_says_what_pgbouncer_needed_here() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    production = readme[readme.index("## Running in production") :]
    assert "pool_mode = transaction" in production
    assert "BILLPLANE_DB_PREPARED_STATEMENTS=false" in production
    assert "1.21" in production  # where PgBouncer keeps prepared statements itself
