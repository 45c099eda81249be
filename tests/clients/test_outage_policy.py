"""The outage policy against a real server that goes away: a server is started, the clients'
caches are warmed, the server is stopped; then checks are answered from the cache while it is
fresh, and by each feature's fail-open or fail-closed choice once it is not. A port nobody ever
listened on, and one that accepts but never answers, are billplane unreachable from the start.
"""

import asyncio
import logging
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from billplane_client import (
    AsyncBillplane,
    Billplane,
    BillplaneUnreachable,
    OutagePolicy,
    UsageEvent,
    records_usage,
)

from conftest import ADMIN_TOKEN, fresh_database
from servers import free_port, running_server

pytestmark = pytest.mark.e2e

TTL = 30.0
FAST: dict[str, Any] = {"backoff": 0.01, "timeout": 10}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class StoppedServer:
    """Clients whose caches were warmed for `acme` (never for `globex`) before the server
    was stopped. Each client has its own clock, so no test's time travel reaches another."""

    url: str
    fails_open: Billplane
    fails_closed: Billplane
    expiring: Billplane
    expiring_clock: Clock
    async_client: AsyncBillplane
    loop: asyncio.AbstractEventLoop


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory, seed: Any) -> Iterator[StoppedServer]:
    loop = asyncio.new_event_loop()
    with ExitStack() as cleanup:
        cleanup.callback(loop.close)
        url = cleanup.enter_context(fresh_database("sqlite", tmp_path_factory.mktemp("outage")))
        with running_server(url, ADMIN_TOKEN) as base_url:
            world = _warm(base_url, seed(base_url)["token"], loop, cleanup)
        # The server is stopped from here on; the clients keep what they cached.
        yield world


def _warm(
    base_url: str, token: str, loop: asyncio.AbstractEventLoop, cleanup: ExitStack
) -> StoppedServer:
    def client(policy: OutagePolicy, clock: Clock | None = None, **options: Any) -> Billplane:
        bp = Billplane(
            base_url, token, cache_ttl=TTL, outage=policy, clock=clock or Clock(), **FAST, **options
        )
        cleanup.callback(bp.close)
        assert bp.check("acme", "listings.publish").from_cache is False
        return bp

    async_client = AsyncBillplane(
        base_url,
        token,
        cache_ttl=TTL,
        clock=Clock(),
        outage=OutagePolicy(default="closed", features={"exports": "open"}),
        **FAST,
    )
    cleanup.callback(lambda: loop.run_until_complete(async_client.aclose()))
    loop.run_until_complete(async_client.check("acme", "exports"))
    expiring_clock = Clock()
    return StoppedServer(
        url=base_url,
        fails_open=client(OutagePolicy(default="open")),
        # Without an outbox: usage billplane cannot be told about raises (see test_outbox.py).
        fails_closed=client(
            OutagePolicy(default="closed", features={"ai.tokens": "open"}), outbox=False
        ),
        expiring=client(OutagePolicy(default="closed"), expiring_clock),
        expiring_clock=expiring_clock,
        async_client=async_client,
        loop=loop,
    )


# --- a server that was up, then stopped ---------------------------------------------------------


def test_the_warm_cache_answers_with_real_answers_while_the_server_is_stopped(
    stopped: StoppedServer,
) -> None:
    for bp in (stopped.fails_open, stopped.fails_closed):
        publish = bp.check("acme", "listings.publish", quantity=2)
        exports = bp.check("acme", "exports")

        assert (publish.allowed, publish.reason, publish.remaining) == (True, "ok", 3)
        assert publish.from_cache
        # Not the outage policy's answer: fail-open or not, the plan does not include exports.
        assert (exports.allowed, exports.reason) == (False, "not_in_plan")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{stopped.url}/healthz")


def test_fail_open_allows_what_the_cache_cannot_answer(stopped: StoppedServer) -> None:
    answer = stopped.fails_open.check("globex", "exports")

    assert (answer.allowed, answer.reason) == (True, "billplane_unreachable")
    assert (answer.tenant, answer.feature, answer.plan) == ("globex", "exports", None)


def test_fail_closed_refuses_except_for_features_that_fail_open(stopped: StoppedServer) -> None:
    closed = stopped.fails_closed.check("globex", "listings.publish")
    open_feature = stopped.fails_closed.check("globex", "ai.tokens")
    per_call = stopped.fails_closed.check("globex", "listings.publish", on_outage="open")

    assert (closed.allowed, closed.reason) == (False, "billplane_unreachable")
    assert (open_feature.allowed, open_feature.reason) == (True, "billplane_unreachable")
    assert per_call.allowed is True


def test_once_the_cache_expires_the_policy_answers(stopped: StoppedServer) -> None:
    stopped.expiring_clock.now += TTL - 1
    cached = stopped.expiring.check("acme", "listings.publish")
    stopped.expiring_clock.now += 2
    expired = stopped.expiring.check("acme", "listings.publish")

    assert (cached.allowed, cached.reason) == (True, "ok")
    assert (expired.allowed, expired.reason) == (False, "billplane_unreachable")


def test_without_an_outbox_other_calls_raise_unreachable_and_usage_keeps_the_cache(
    stopped: StoppedServer,
) -> None:
    bp = stopped.fails_closed
    with pytest.raises(BillplaneUnreachable) as failed:
        bp.record_usage("acme", "listings.publish")
    with pytest.raises(BillplaneUnreachable):
        bp.entitlements("acme")

    assert (failed.value.code, failed.value.status) == ("billplane_unreachable", None)
    # Nothing was counted, so what the cache knows is still true.
    assert bp.check("acme", "listings.publish").from_cache


def test_the_async_client_serves_its_cache_then_its_policy(stopped: StoppedServer) -> None:
    bp = stopped.async_client

    async def scenario() -> list[Any]:
        return [
            await bp.check("acme", "listings.publish"),
            await bp.check("globex", "exports"),
            await bp.check("globex", "listings.publish"),
        ]

    cached, open_feature, closed = stopped.loop.run_until_complete(scenario())

    assert (cached.allowed, cached.reason, cached.from_cache) == (True, "ok", True)
    assert (open_feature.allowed, open_feature.reason) == (True, "billplane_unreachable")
    assert (closed.allowed, closed.reason) == (False, "billplane_unreachable")


# --- never reachable ----------------------------------------------------------------------------


@pytest.fixture
def closed_port() -> str:
    """A local port nothing listens on: connections are refused."""
    return f"http://127.0.0.1:{free_port()}"


def test_a_closed_port_from_the_start_gets_the_policy_answer(
    closed_port: str, recorder: httpx.BaseTransport, sent: list[httpx.Request]
) -> None:
    policy = OutagePolicy(default="closed", features={"ai.tokens": "open"})
    with Billplane(closed_port, "bp_x", outage=policy, transport=recorder, **FAST) as bp:
        closed = bp.check("acme", "listings.publish")
        attempts = len(sent)
        open_feature = bp.check("acme", "ai.tokens")

    assert (closed.allowed, closed.reason) == (False, "billplane_unreachable")
    assert (open_feature.allowed, open_feature.reason) == (True, "billplane_unreachable")
    assert attempts == 3  # the first try and two retries, by default


def test_a_closed_port_makes_every_other_call_raise_unreachable(closed_port: str) -> None:
    with Billplane(closed_port, "bp_x", retries=0, outbox=False) as bp:
        calls: list[Callable[[], object]] = [
            lambda: bp.entitlements("acme"),
            lambda: bp.record_usage("acme", "ai.tokens"),
            lambda: bp.record_usage_batch([UsageEvent("acme", "ai.tokens")]),
            lambda: bp.checkout(
                "acme", "pro", success_url="https://a.test", cancel_url="https://a.test"
            ),
            lambda: bp.confirm_checkout("cs_test_1"),
            lambda: bp.portal("acme", return_url="https://a.test"),
        ]
        for call in calls:
            with pytest.raises(BillplaneUnreachable, match="could not be reached"):
                call()


def test_the_async_client_on_a_closed_port(closed_port: str) -> None:
    async def scenario() -> tuple[Any, Any]:
        policy = OutagePolicy(default="open")
        async with AsyncBillplane(closed_port, "bp_x", outage=policy, outbox=False, **FAST) as bp:
            answer = await bp.check("acme", "exports")
            with pytest.raises(BillplaneUnreachable) as failed:
                await bp.record_usage("acme", "ai.tokens")
            return answer, failed.value

    answer, failed = asyncio.run(scenario())

    assert (answer.allowed, answer.reason) == (True, "billplane_unreachable")
    assert failed.code == "billplane_unreachable"


def test_a_server_that_never_answers_times_out_into_the_policy() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections are accepted by the kernel, never answered
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with Billplane(url, "bp_x", timeout=0.5, retries=0) as bp:
            answer = bp.check("acme", "exports")

    assert (answer.allowed, answer.reason) == (False, "billplane_unreachable")


# --- recording usage after an action, with billplane away ---------------------------------------


def test_records_usage_without_an_outbox_logs_an_outage_by_default(
    closed_port: str, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        Billplane(closed_port, "bp_x", retries=0, outbox=False) as bp,
        caplog.at_level(logging.ERROR, logger="billplane_client"),
        records_usage(bp, "acme", "listings.publish", idempotency_key="l-1") as recorder,
    ):
        pass

    assert recorder.usage is None
    assert "usage not recorded" in caplog.text
    assert "'l-1'" in caplog.text


def test_records_usage_without_an_outbox_can_raise_or_hand_over_an_outage(
    closed_port: str,
) -> None:
    handed: list[UsageEvent] = []
    with Billplane(closed_port, "bp_x", retries=0, outbox=False) as bp:
        with (
            pytest.raises(BillplaneUnreachable),
            records_usage(bp, "acme", "ai.tokens", 5, on_unreachable="raise"),
        ):
            pass
        with records_usage(
            bp, "acme", "ai.tokens", 5, on_unreachable=lambda e, _: handed.append(e)
        ):
            pass

    assert len(handed) == 1
    assert (handed[0].feature, handed[0].quantity) == ("ai.tokens", 5)
    # The key was fixed before sending: replaying this event later cannot count it twice.
    assert handed[0].idempotency_key
    assert handed[0].idempotency_key.startswith("bpc-")
