"""The Python client's outbox against a real billplane that goes away and comes back: usage
recorded meanwhile waits in a SQLite file, counts against the limit in checks, and is replayed
oldest first with its own idempotency key once billplane answers; what billplane refuses for
good is kept aside with the reason. The server sits behind a TCP stand-in that can refuse
connections (as a stopped server does) without restarting it; test_usage_never_dropped.py stops
and restarts the server itself, across a restart of the client's process.
"""

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from billplane_client import (
    AsyncBillplane,
    Billplane,
    BillplaneUnreachable,
    Flushed,
    OutagePolicy,
    Outbox,
    Unauthorized,
    UsageEvent,
    records_usage,
)

from conftest import ADMIN_TOKEN, fresh_database
from servers import running_server
from tcp_proxy import Proxy, proxy_to

pytestmark = pytest.mark.e2e

Project = dict[str, str]

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Away:
    """A real billplane (`direct`) and the address clients use (`url`), which `down()` makes
    refuse every connection until `up()`."""

    direct: str
    url: str
    proxy: Proxy
    answering: bool = True

    def down(self) -> None:
        self.proxy.down()
        self.answering = False

    def up(self) -> None:
        if not self.answering:
            self.proxy.up()
            self.answering = True


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Away]:
    with (
        fresh_database("sqlite", tmp_path_factory.mktemp("outbox")) as url,
        running_server(url, ADMIN_TOKEN) as direct,
        proxy_to(int(direct.rsplit(":", 1)[1])) as proxy,
    ):
        yield Away(direct, f"http://127.0.0.1:{proxy.port}", proxy)


@pytest.fixture
def away(server: Away) -> Iterator[Away]:
    """The server as clients see it, answering again once the test is over."""
    yield server
    server.up()


@pytest.fixture
def project(server: Away, seed: Any) -> Project:
    seeded: Project = seed(server.direct)
    return seeded


def client(away: Away, token: str, path: Path, clock: Any, **options: Any) -> Billplane:
    options = {"cache_ttl": 60, "retries": 0, "timeout": 10, "clock": clock, **options}
    return Billplane(away.url, token, outbox=path, **options)


def counted(away: Away, project: Project, tenant: str = "acme") -> dict[str, int | None]:
    with Billplane(away.direct, project["token"], cache_ttl=0, outbox=False) as bp:
        return {key: f.used for key, f in bp.entitlements(tenant).features.items()}


def batches(sent: list[httpx.Request]) -> list[list[str]]:
    """The idempotency keys of each batch a client sent, in order."""
    return [
        [event["idempotency_key"] for event in json.loads(request.content)["events"]]
        for request in sent
        if request.url.path == "/v1/usage/batch"
    ]


# --- while billplane is away --------------------------------------------------------------------


def test_usage_recorded_while_billplane_is_away_waits_and_counts_against_the_limit(
    away: Away, project: Project, tmp_path: Path, clock: Any
) -> None:
    with client(away, project["token"], tmp_path / "outbox.sqlite3", clock) as bp:
        assert bp.check("acme", "listings.publish").remaining == 3  # the cache is warm
        away.down()
        first = bp.record_usage("acme", "listings.publish", idempotency_key="listing-1")
        second = bp.record_usage("acme", "listings.publish", idempotency_key="listing-2")
        one_more = bp.check("acme", "listings.publish")
        two_more = bp.check("acme", "listings.publish", quantity=2)
        waiting = [e.idempotency_key for e in bp.outbox.pending()] if bp.outbox else []

    assert (first.queued, first.recorded, first.used) == (True, False, None)
    assert (second.idempotency_key, second.queued) == ("listing-2", True)
    assert waiting == ["listing-1", "listing-2"]
    # The cached entitlements said 0 used: the two waiting events count against the limit of 3.
    assert (one_more.allowed, one_more.used, one_more.remaining) == (True, 2, 1)
    assert (two_more.allowed, two_more.reason) == (False, "limit_reached")
    away.up()
    assert counted(away, project)["listings.publish"] == 0  # billplane has not seen them yet


def test_queued_usage_survives_the_client_and_is_replayed_oldest_first_with_its_keys(
    away: Away,
    project: Project,
    tmp_path: Path,
    clock: Any,
    recorder: httpx.BaseTransport,
    sent: list[httpx.Request],
) -> None:
    path = tmp_path / "outbox.sqlite3"
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    # Counted by billplane, but its answer was lost: the client queued it all the same.
    with Billplane(away.direct, project["token"], outbox=False) as direct:
        direct.record_usage("acme", "ai.tokens", 8, idempotency_key="tokens-0")
    Outbox(path).add(UsageEvent("acme", "ai.tokens", 8, "tokens-0"))
    away.down()
    with client(away, project["token"], path, clock) as bp:
        for quantity, key in [(1, "tokens-1"), (2, "tokens-2")]:
            bp.record_usage("acme", "ai.tokens", quantity, idempotency_key=key)
        bp.record_usage("acme", "ai.tokens", 4, idempotency_key="tokens-3", timestamp=two_days_ago)
    away.up()

    # A new client on the same file (a restarted app): its first call replays the outbox.
    with client(away, project["token"], path, clock, transport=recorder) as bp:
        answer = bp.check("acme", "ai.tokens")
        left = bp.outbox.pending() if bp.outbox else None

    assert batches(sent) == [["tokens-0", "tokens-1", "tokens-2", "tokens-3"]]
    assert left == []
    assert answer.used == 15  # 8 + 1 + 2 + 4: the lost answer's event counted once
    assert counted(away, project)["ai.tokens"] == 15
    detail = httpx.get(
        f"{away.direct}/admin/api/projects/{project['key']}/tenants/acme", headers=ADMIN
    ).json()
    [dated] = [e for e in detail["recent_usage"] if e["idempotency_key"] == "tokens-3"]
    # Replayed with the moment it happened, not the moment billplane heard of it.
    assert datetime.fromisoformat(dated["occurred_at"]) == two_days_ago


def test_a_replay_that_finds_billplane_still_away_keeps_every_event(
    away: Away, project: Project, tmp_path: Path, clock: Any
) -> None:
    with client(away, project["token"], tmp_path / "outbox.sqlite3", clock) as bp:
        away.down()
        bp.record_usage("acme", "ai.tokens", 3, idempotency_key="kept-1")
        with pytest.raises(BillplaneUnreachable):
            bp.flush()
        waiting = bp.outbox.count() if bp.outbox else 0
        away.up()
        flushed = bp.flush()

    assert waiting == 1
    assert flushed == Flushed(delivered=1, kept_aside=0, pending=0)
    assert counted(away, project)["ai.tokens"] == 3


def test_usage_goes_straight_to_the_outbox_for_a_while_after_billplane_failed_to_answer(
    away: Away,
    project: Project,
    tmp_path: Path,
    clock: Any,
    recorder: httpx.BaseTransport,
    sent: list[httpx.Request],
) -> None:
    path = tmp_path / "outbox.sqlite3"
    with client(away, project["token"], path, clock, transport=recorder, replay_interval=5) as bp:
        away.down()
        for n in range(10):
            bp.record_usage("acme", "ai.tokens", idempotency_key=f"burst-{n}")
        tried_while_away = len(sent)
        away.up()
        clock.advance(4)
        bp.record_usage("acme", "ai.tokens", idempotency_key="burst-10")  # still taken as away
        clock.advance(2)
        bp.record_usage("acme", "ai.tokens", idempotency_key="burst-11")  # replays, then sends

    assert tried_while_away == 1  # one attempt found billplane away; nine went straight in
    assert batches(sent) == [[f"burst-{n}" for n in range(11)]]
    assert counted(away, project)["ai.tokens"] == 12


# --- refused for good ---------------------------------------------------------------------------


def test_an_event_billplane_refuses_for_good_is_kept_aside_with_the_reason_and_never_resent(
    away: Away,
    project: Project,
    tmp_path: Path,
    clock: Any,
    recorder: httpx.BaseTransport,
    sent: list[httpx.Request],
) -> None:
    with client(away, project["token"], tmp_path / "o.sqlite3", clock, transport=recorder) as bp:
        away.down()
        bp.record_usage("newcomer", "ai.tokens", 5, idempotency_key="early-1")  # no such tenant
        bp.record_usage("acme", "exports", idempotency_key="switch-1")  # an on/off feature
        bp.record_usage("acme", "ai.tokens", 7, idempotency_key="fine-1")
        away.up()
        flushed = bp.flush()
        again = bp.flush()
        aside = bp.outbox.kept_aside() if bp.outbox else []
        # The operator creates the tenant: that event can go; the other is dropped for good.
        httpx.post(
            f"{away.direct}/admin/api/projects/{project['key']}/tenants",
            json={"key": "newcomer"},
            headers=ADMIN,
        ).raise_for_status()
        assert bp.outbox is not None
        retried = bp.outbox.retry("newcomer", "early-1")
        discarded = bp.outbox.discard("acme", "switch-1")
        after_retry = bp.flush()
        left_aside = bp.outbox.kept_aside()

    assert flushed == Flushed(delivered=1, kept_aside=2, pending=0)
    assert again == Flushed(delivered=0, kept_aside=0, pending=0)
    assert len(batches(sent)) == 2  # the first flush, then the retried event alone
    reasons = {a.event.idempotency_key: (a.status, a.code) for a in aside}
    assert reasons == {"early-1": (404, "tenant_not_found"), "switch-1": (400, "invalid_request")}
    assert all(a.message for a in aside)
    assert (retried, discarded) == (True, True)
    assert after_retry == Flushed(delivered=1, kept_aside=0, pending=0)
    assert left_aside == []
    assert counted(away, project)["ai.tokens"] == 7
    assert counted(away, project, "newcomer")["ai.tokens"] == 5


def test_a_refused_token_keeps_the_events_waiting_rather_than_aside(
    away: Away, project: Project, tmp_path: Path, clock: Any
) -> None:
    path = tmp_path / "outbox.sqlite3"
    with client(away, "bp_not_a_real_token", path, clock) as bp:
        away.down()
        bp.record_usage("acme", "ai.tokens", idempotency_key="wrong-token-1")
        away.up()
        with pytest.raises(Unauthorized):
            bp.flush()
        outbox = bp.outbox

    assert outbox is not None
    # The token is wrong, not the event: the right token delivers it.
    assert ([e.idempotency_key for e in outbox.pending()], outbox.kept_aside()) == (
        ["wrong-token-1"],
        [],
    )
    with client(away, project["token"], path, clock) as bp:
        assert bp.flush() == Flushed(delivered=1, kept_aside=0, pending=0)


# --- enforced usage and the helpers -------------------------------------------------------------


def test_enforced_usage_while_away_is_decided_as_an_offline_check(
    away: Away, project: Project, tmp_path: Path, clock: Any
) -> None:
    policy = OutagePolicy(default="closed", features={"ai.tokens": "open"})
    with client(away, project["token"], tmp_path / "o.sqlite3", clock, outage=policy) as bp:
        away.down()
        with pytest.raises(BillplaneUnreachable):
            bp.record_usage("acme", "listings.publish", enforce=True, idempotency_key="closed-1")
        allowed = bp.record_usage("acme", "ai.tokens", 6, enforce=True, idempotency_key="open-1")
        waiting = [e.idempotency_key for e in bp.outbox.pending()] if bp.outbox else []
        away.up()
        bp.flush()

    assert allowed.queued is True
    assert waiting == ["open-1"]  # the refused one was not queued: its action did not happen
    assert counted(away, project) | {"exports": None} == {
        "exports": None,
        "listings.publish": 0,
        "ai.tokens": 6,
    }


def test_records_usage_queues_the_action_when_billplane_is_away(
    away: Away, project: Project, tmp_path: Path, clock: Any
) -> None:
    with client(away, project["token"], tmp_path / "outbox.sqlite3", clock) as bp:
        away.down()
        with records_usage(bp, "acme", "listings.publish", idempotency_key="l-9") as recorder:
            pass
        away.up()
        bp.flush()

    assert recorder.usage is not None
    assert (recorder.usage.queued, recorder.usage.idempotency_key) == (True, "l-9")
    assert counted(away, project)["listings.publish"] == 1


def test_the_async_client_queues_counts_and_flushes(
    away: Away, project: Project, tmp_path: Path, override: Any
) -> None:
    override(away.direct, project["key"], "acme", {"listings.publish": {"limit": 5}})

    async def scenario() -> tuple[Any, ...]:
        async with AsyncBillplane(
            away.url, project["token"], outbox=tmp_path / "o.sqlite3", retries=0, timeout=10
        ) as bp:
            await bp.check("acme", "listings.publish")
            away.down()
            queued = await bp.record_usage("acme", "listings.publish", 2)
            batch = await bp.record_usage_batch([UsageEvent("acme", "listings.publish", 2)])
            check = await bp.check("acme", "listings.publish", quantity=2)
            away.up()
            return queued, batch, check, await bp.flush()

    queued, [batched], check, flushed = asyncio.run(scenario())

    assert queued.queued is True
    assert (batched.status, batched.usage and batched.usage.queued) == (202, True)
    assert (check.allowed, check.used, check.remaining) == (False, 4, 1)
    assert flushed == Flushed(delivered=2, kept_aside=0, pending=0)
    assert counted(away, project)["listings.publish"] == 4
