"""Checks answered from billplane's signed snapshots while billplane is stopped, by both clients.

One real billplane (with BILLPLANE_SECRET_KEY) serves the module: the Python clients and a Node
process (clients/js/e2e/offline.test.mjs) fetch snapshots, record usage and meet spoilt snapshots
— tampered, another tenant's, signed by a key billplane never published (through a proxy that
spoils them on the way), another project's, or read by a clock past their `exp`. Then billplane
is stopped, and every test here runs against a billplane that no longer answers.
"""

import asyncio
import base64
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from billplane_client import (
    AsyncBillplane,
    Billplane,
    Check,
    PaymentRequired,
    SnapshotRefused,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.requests import Request
from starlette.responses import Response

from conftest import ADMIN_TOKEN, fresh_database
from node_tests import NodeRun
from servers import running_server
from stripe_double import BackgroundServer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
JS_TEST = ROOT / "clients" / "js" / "e2e" / "offline.test.mjs"
SECRET_KEY = "offline-tests-" + "k" * 32
HOUR = 3600.0


class WallClock:
    def __init__(self, ahead: float = 0.0) -> None:
        self.ahead = ahead

    def __call__(self) -> float:
        return time.time() + self.ahead


@dataclass
class Spoiler:
    """A proxy in front of billplane that spoils signed snapshots on the way, by the first part
    of the path: `/tampered` rewrites a limit (the signature kept), `/other-tenant` answers
    acme's for globex and globex's for acme, `/forged-key` signs it again with a key billplane
    never published. Anything else passes unchanged."""

    upstream: str
    forger: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        mode, _, path = request.url.path.lstrip("/").partition("/")
        if mode == "other-tenant":
            swapped = {"acme": "globex", "globex": "acme"}
            path = "/".join(swapped.get(part, part) for part in path.split("/"))
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with httpx.AsyncClient(base_url=self.upstream, timeout=30) as upstream:
            reply = await upstream.request(
                request.method, f"/{path}", content=await request.body(), headers=headers
            )
        body, kind = reply.content, reply.headers.get("content-type", "application/json")
        if kind.startswith("application/jwt"):
            body = self._spoilt(mode, reply.text).encode()
        await Response(body, reply.status_code, media_type=kind)(scope, receive, send)

    def _spoilt(self, mode: str, token: str) -> str:
        header, payload, signature = token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        if mode == "tampered":
            claims["features"] = [{**f, "limit": 300} for f in claims["features"]]
            forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
            return f"{header}.{forged.decode()}.{signature}"
        if mode == "forged-key":
            return jwt.encode(claims, self.forger, algorithm="EdDSA", headers={"kid": "forged"})
        return token


@dataclass
class Stopped:
    """What the clients saw while billplane answered; billplane is stopped by now."""

    url: str
    good: Billplane
    ageing: Billplane
    ageing_clock: WallClock
    refusing: dict[str, Billplane]
    refusals: dict[str, str]
    async_client: AsyncBillplane
    loop: asyncio.AbstractEventLoop
    node: NodeRun


def _client(url: str, token: str, project: str, **options: Any) -> Billplane:
    options = {"cache_ttl": 0, "retries": 0, "timeout": 10, "outbox": ":memory:", **options}
    return Billplane(url, token, project=project, **options)


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory, seed: Any) -> Iterator[Stopped]:
    tmp = tmp_path_factory.mktemp("offline")
    loop = asyncio.new_event_loop()
    with ExitStack() as cleanup:
        cleanup.callback(loop.close)
        database = cleanup.enter_context(fresh_database("sqlite", tmp))
        serving = ExitStack()
        url = serving.enter_context(
            running_server(database, ADMIN_TOKEN, extra_env={"BILLPLANE_SECRET_KEY": SECRET_KEY})
        )
        proxy = BackgroundServer(Spoiler(url), name="snapshot-spoiler")
        spoiler = proxy.start()
        serving.callback(proxy.stop)
        with serving:
            project, other = seed(url), seed(url)
            node = _start_node(url, spoiler, project, other, tmp)
            cleanup.callback(node.kill)  # (a no-op once it has ended)
            world = _warm(url, spoiler, project, other, loop, cleanup)
            _wait_for(tmp / "ready", node)
        # billplane (and the proxy) stopped: the Node process goes on, then the tests run.
        (tmp / "stopped").write_text("stopped")
        output = node.communicate(timeout=60)[0]
        world["node"] = NodeRun.of(node.returncode, output)
        yield Stopped(url=url, loop=loop, **world)


def _warm(
    url: str,
    spoiler: str,
    project: dict[str, str],
    other: dict[str, str],
    loop: asyncio.AbstractEventLoop,
    cleanup: ExitStack,
) -> dict[str, Any]:
    token, key = project["token"], project["key"]
    good = cleanup.enter_context(_client(url, token, key))
    assert good.check("acme", "listings.publish").remaining == 3
    good.record_usage("acme", "listings.publish", idempotency_key="py-1")
    ageing_clock = WallClock()
    ageing = cleanup.enter_context(_client(url, token, key, wall_clock=ageing_clock))
    ageing.check("acme", "listings.publish")
    refusing = {
        "tampered": _client(f"{spoiler}/tampered", token, key),
        "wrong tenant": _client(f"{spoiler}/other-tenant", token, key),
        "unknown kid": _client(f"{spoiler}/forged-key", token, key),
        "wrong audience": _client(url, other["token"], key),  # another project's snapshot
        "expired": _client(url, token, key, wall_clock=WallClock(ahead=2 * HOUR)),
    }
    refusals = {}
    for name, bp in refusing.items():
        cleanup.enter_context(bp)
        with pytest.raises(SnapshotRefused) as refused:
            bp.entitlements("acme")
        refusals[name] = refused.value.code
        bp.check("acme", "listings.publish")  # refused again: nothing is kept
    async_client = AsyncBillplane(
        url, token, project=key, cache_ttl=0, retries=0, outbox=":memory:", timeout=10
    )
    cleanup.callback(lambda: loop.run_until_complete(async_client.aclose()))
    loop.run_until_complete(async_client.check("acme", "ai.tokens"))
    return {
        "good": good,
        "ageing": ageing,
        "ageing_clock": ageing_clock,
        "refusing": refusing,
        "refusals": refusals,
        "async_client": async_client,
    }


def _start_node(
    url: str, spoiler: str, project: dict[str, str], other: dict[str, str], tmp: Path
) -> "subprocess.Popen[str]":
    node = shutil.which("node")
    assert node, "node (v20+) is needed to test the JS client"
    env = {
        **os.environ,
        "BILLPLANE_URL": url,
        "BILLPLANE_SPOILER": spoiler,
        "BILLPLANE_PROJECT": project["key"],
        "BILLPLANE_TOKEN": project["token"],
        "BILLPLANE_OTHER_TOKEN": other["token"],
        "BILLPLANE_READY_FILE": str(tmp / "ready"),
        "BILLPLANE_STOPPED_FILE": str(tmp / "stopped"),
    }
    return subprocess.Popen(
        [node, "--test", "--test-reporter=tap", str(JS_TEST)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for(ready: Path, node: "subprocess.Popen[str]") -> None:
    deadline = time.monotonic() + 60
    while not ready.exists():
        if node.poll() is not None or time.monotonic() > deadline:
            node.kill()
            raise AssertionError(f"the Node client never got ready:\n{node.communicate()[0]}")
        time.sleep(0.02)


def _answer(check: Check) -> tuple[Any, ...]:
    return (check.allowed, check.reason, check.used, check.remaining, check.offline)


# --- Python -------------------------------------------------------------------------------------


def test_snapshots_that_do_not_hold_are_refused_with_their_reason(stopped: Stopped) -> None:
    assert stopped.refusals == {
        "tampered": "snapshot_bad_signature",
        "wrong tenant": "snapshot_wrong_tenant",
        "unknown kid": "snapshot_unknown_kid",
        "wrong audience": "snapshot_wrong_audience",
        "expired": "snapshot_expired",
    }
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{stopped.url}/healthz")


def test_a_valid_snapshot_answers_while_billplane_is_stopped_never_past_its_limit(
    stopped: Stopped,
) -> None:
    bp = stopped.good
    first = bp.check("acme", "listings.publish")  # 1 recorded online after the snapshot was cut
    queued = bp.record_usage("acme", "listings.publish", idempotency_key="py-2")
    second = bp.check("acme", "listings.publish")
    bp.record_usage("acme", "listings.publish", idempotency_key="py-3")
    full = bp.check("acme", "listings.publish")
    with pytest.raises(PaymentRequired) as refused:
        bp.record_usage("acme", "listings.publish", enforce=True)
    exports = bp.check("acme", "exports")

    assert _answer(first) == (True, "ok", 1, 2, True)
    assert queued.queued is True
    assert _answer(second) == (True, "ok", 2, 1, True)
    assert _answer(full) == (False, "limit_reached", 3, 0, True)
    assert (refused.value.code, refused.value.details["offline"]) == ("limit_reached", True)
    assert (exports.allowed, exports.reason, exports.offline) == (False, "not_in_plan", True)
    assert [e.idempotency_key for e in bp.outbox.pending()] == ["py-2", "py-3"]  # type: ignore[union-attr]


def test_without_a_valid_snapshot_the_outage_policy_answers(stopped: Stopped) -> None:
    no_snapshot = stopped.good.check("globex", "listings.publish")
    refused = {
        name: stopped.refusing[name].check("acme", "listings.publish") for name in stopped.refusing
    }
    fresh = stopped.ageing.check("acme", "listings.publish")
    stopped.ageing_clock.ahead = 2 * HOUR  # past the snapshot's exp
    expired = stopped.ageing.check("acme", "listings.publish")

    assert (no_snapshot.allowed, no_snapshot.reason) == (False, "billplane_unreachable")
    assert {name: (c.allowed, c.reason) for name, c in refused.items()} == dict.fromkeys(
        refused, (False, "billplane_unreachable")
    )
    assert (fresh.allowed, fresh.offline) == (True, True)
    assert (expired.allowed, expired.reason, expired.offline) == (
        False,
        "billplane_unreachable",
        False,
    )


def test_the_async_client_answers_from_its_snapshot(stopped: Stopped) -> None:
    async def scenario() -> tuple[Check, Check]:
        bp = stopped.async_client
        await bp.record_usage("acme", "ai.tokens", 40)
        return await bp.check("acme", "ai.tokens"), await bp.check("globex", "ai.tokens")

    known, unknown = stopped.loop.run_until_complete(scenario())

    assert (known.allowed, known.reason, known.offline) == (True, "ok", True)
    assert known.used == 40  # the metered count goes on, from the snapshot's
    assert (unknown.allowed, unknown.reason) == (False, "billplane_unreachable")


# --- JavaScript ---------------------------------------------------------------------------------


def test_the_js_client_answers_from_snapshots_and_refuses_spoilt_ones(stopped: Stopped) -> None:
    written = {
        "snapshots that do not hold are refused with their reason",
        "a valid snapshot answers while billplane is stopped, never past its limit",
        "without a valid snapshot the outage policy answers",
    }
    assert stopped.node.returncode == 0, stopped.node.output
    assert stopped.node.outcomes == dict.fromkeys(written, "ok"), stopped.node.output
