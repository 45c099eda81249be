"""The Python client (sync and async) against a real billplane server: every call, typed answers,
errors as exceptions with the API's code, retries on 5xx only, idempotency keys kept on retry.

Checkout, confirm and portal need Stripe: see test_python_checkout.py.
"""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from billplane_client import (
    AsyncBillplane,
    Billplane,
    Check,
    Entitlements,
    Forbidden,
    InvalidRequest,
    NotFound,
    PaymentRequired,
    ServerError,
    Unauthorized,
    Usage,
    UsageEvent,
)

pytestmark = pytest.mark.e2e

Project = dict[str, str]


def sync_client(url: str, token: str, **options: Any) -> Billplane:
    return Billplane(url, token, cache_ttl=options.pop("cache_ttl", 0), timeout=30, **options)


# --- check --------------------------------------------------------------------------------------


def test_check_answers_a_typed_result_with_the_limit_numbers(
    billplane_url: str, project: Project
) -> None:
    with sync_client(billplane_url, project["token"]) as bp:
        answer = bp.check("acme", "listings.publish")

    assert isinstance(answer, Check)
    assert (answer.allowed, answer.reason, answer.plan) == (True, "ok", "free")
    assert (answer.limit, answer.used, answer.remaining) == (3, 0, 3)
    assert isinstance(answer.resets_at, datetime)
    assert answer.resets_at.tzinfo is not None
    assert answer.from_cache is False


def test_check_gives_the_reason_for_a_refusal(billplane_url: str, project: Project) -> None:
    with sync_client(billplane_url, project["token"]) as bp:
        not_in_plan = bp.check("acme", "exports")
        unknown = bp.check("acme", "teleport")
        too_many = bp.check("acme", "listings.publish", quantity=4)

    assert (not_in_plan.allowed, not_in_plan.reason) == (False, "not_in_plan")
    assert (unknown.allowed, unknown.reason) == (False, "unknown_feature")
    assert unknown.message is not None
    assert "No feature" in unknown.message
    assert (too_many.allowed, too_many.reason) == (False, "limit_reached")


def test_from_env_reads_the_url_and_the_token(
    billplane_url: str, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BILLPLANE_URL", billplane_url)
    monkeypatch.setenv("BILLPLANE_TOKEN", project["token"])
    with Billplane.from_env(cache_ttl=0) as bp:
        answer = bp.check("acme", "ai.tokens")
    monkeypatch.delenv("BILLPLANE_TOKEN")

    assert (answer.allowed, answer.plan) == (True, "free")
    with pytest.raises(ValueError, match="BILLPLANE_TOKEN"):
        Billplane.from_env()


# --- usage --------------------------------------------------------------------------------------


def test_usage_without_a_key_gets_a_generated_one(billplane_url: str, project: Project) -> None:
    with sync_client(billplane_url, project["token"]) as bp:
        first = bp.record_usage("acme", "listings.publish")
        second = bp.record_usage("acme", "listings.publish")

    assert isinstance(first, Usage)
    assert first.recorded
    assert not first.duplicate
    assert first.idempotency_key != second.idempotency_key
    assert first.idempotency_key.startswith("bpc-")
    assert (second.used, second.limit, second.remaining) == (2, 3, 1)


def test_usage_with_the_same_key_counts_once(billplane_url: str, project: Project) -> None:
    with sync_client(billplane_url, project["token"]) as bp:
        first = bp.record_usage("acme", "ai.tokens", 250, idempotency_key="run-1")
        again = bp.record_usage("acme", "ai.tokens", 250, idempotency_key="run-1")
        used = bp.check("acme", "ai.tokens").used

    assert (first.duplicate, again.duplicate) == (False, True)
    assert first.current is None
    assert again.current is not None
    assert again.current.used == first.used
    assert again.used == 250
    assert used == 250


def test_usage_with_a_timestamp_is_accepted(billplane_url: str, project: Project) -> None:
    moment = datetime.now(UTC)
    with sync_client(billplane_url, project["token"]) as bp:
        usage = bp.record_usage("acme", "ai.tokens", 5, timestamp=moment)
        with pytest.raises(ValueError, match="timezone-aware"):
            bp.record_usage("acme", "ai.tokens", timestamp=moment.replace(tzinfo=None))

    assert usage.recorded
    assert usage.used == 5


def test_enforced_usage_over_the_limit_raises_payment_required(
    billplane_url: str, project: Project
) -> None:
    with sync_client(billplane_url, project["token"]) as bp:
        bp.record_usage("acme", "listings.publish", 3, enforce=True)
        with pytest.raises(PaymentRequired) as refused:
            bp.record_usage("acme", "listings.publish", enforce=True)
        used = bp.check("acme", "listings.publish").used

    assert (refused.value.status, refused.value.code) == (402, "limit_reached")
    assert refused.value.message
    assert used == 3


def test_batch_answers_each_event_in_order(billplane_url: str, project: Project) -> None:
    with sync_client(billplane_url, project["token"]) as bp:
        results = bp.record_usage_batch(
            [
                UsageEvent("acme", "listings.publish"),
                {"tenant": "acme", "feature": "teleport", "idempotency_key": "b-2"},
                UsageEvent("globex", "ai.tokens", 7, idempotency_key="b-3"),
            ]
        )
        used = bp.check("acme", "listings.publish").used

    assert [r.status for r in results] == [201, 404, 201]
    assert results[0].ok
    assert results[0].usage is not None
    assert results[0].usage.idempotency_key.startswith("bpc-")
    assert isinstance(results[1].error, NotFound)
    assert not results[1].ok
    assert results[1].error.code == "unknown_feature"
    assert results[2].usage is not None
    assert results[2].usage.used == 7
    assert used == 1


# --- entitlements -------------------------------------------------------------------------------


def test_entitlements_list_every_feature_typed(billplane_url: str, project: Project) -> None:
    with sync_client(billplane_url, project["token"]) as bp:
        bp.record_usage("acme", "listings.publish")
        entitlements = bp.entitlements("acme")

    assert isinstance(entitlements, Entitlements)
    assert (entitlements.tenant, entitlements.plan, entitlements.subscription) == (
        "acme",
        "free",
        None,
    )
    assert set(entitlements.features) == {"exports", "listings.publish", "ai.tokens"}
    publish = entitlements.features["listings.publish"]
    assert (publish.type, publish.allowed, publish.used, publish.remaining) == ("limit", True, 1, 2)
    assert entitlements.features["exports"].reason == "not_in_plan"


# --- errors -------------------------------------------------------------------------------------


def test_errors_carry_the_api_code_status_and_message(billplane_url: str, project: Project) -> None:
    with sync_client(billplane_url, project["token"]) as bp:
        with pytest.raises(NotFound) as unknown_tenant:
            bp.check("nobody", "exports")
        with pytest.raises(InvalidRequest) as bad_quantity:
            bp.record_usage("acme", "ai.tokens", 0)
    with sync_client(billplane_url, project["tenant_token"]) as scoped:
        with pytest.raises(Forbidden) as other_tenant:
            scoped.entitlements("globex")
        assert scoped.check("acme", "exports").reason == "not_in_plan"

    assert (unknown_tenant.value.status, unknown_tenant.value.code) == (404, "tenant_not_found")
    assert bad_quantity.value.status == 422
    assert bad_quantity.value.code == "validation_error"
    assert bad_quantity.value.details.get("param") == "quantity"
    assert (other_tenant.value.status, other_tenant.value.code) == (403, "forbidden")


def test_a_4xx_is_not_retried(
    billplane_url: str, recorder: httpx.BaseTransport, sent: list[httpx.Request]
) -> None:
    with (
        Billplane(billplane_url, "bp_not_a_token", retries=3, transport=recorder) as bp,
        pytest.raises(Unauthorized) as refused,
    ):
        bp.check("acme", "exports")

    assert (refused.value.status, refused.value.code) == (401, "unauthorized")
    assert len(sent) == 1


def test_a_lost_answer_is_retried_with_the_same_idempotency_key(
    project: Project, flaky_proxy: Any
) -> None:
    """billplane counted the event but the answer came back as a 502: the retry must send the
    same key, so billplane answers it as a duplicate and nothing is counted twice."""
    with (
        flaky_proxy(failures=1, forward_failures=True) as proxy,
        Billplane(proxy.url, project["token"], cache_ttl=0, backoff=0.01) as bp,
    ):
        usage = bp.record_usage("acme", "listings.publish")
        used = bp.check("acme", "listings.publish").used

    first, retry = (httpx.Response(200, content=b).json() for b in proxy.bodies[:2])
    assert first["idempotency_key"] == retry["idempotency_key"] == usage.idempotency_key
    assert usage.duplicate is True
    assert used == 1


def test_a_5xx_on_every_attempt_raises_a_server_error(project: Project, flaky_proxy: Any) -> None:
    with (
        flaky_proxy(failures=100, forward_failures=False) as proxy,
        Billplane(proxy.url, project["token"], retries=2, backoff=0.01) as bp,
        pytest.raises(ServerError) as failed,
    ):
        bp.entitlements("acme")

    assert (failed.value.status, failed.value.code) == (502, "http_502")
    assert len(proxy.bodies) == 3


# --- the entitlements cache ---------------------------------------------------------------------


def test_a_burst_of_checks_costs_one_request(
    billplane_url: str, project: Project, recorder: httpx.BaseTransport, sent: list[httpx.Request]
) -> None:
    questions = [("listings.publish", 1), ("listings.publish", 4), ("exports", 1), ("ai.tokens", 9)]
    questions += [("teleport", 1)]
    with (
        Billplane(billplane_url, project["token"], cache_ttl=60, transport=recorder) as cached,
        sync_client(billplane_url, project["token"]) as direct,
    ):
        burst = [cached.check("acme", f, quantity=q) for f, q in questions * 5]
        truth = [direct.check("acme", f, quantity=q) for f, q in questions]

    assert [r.url.path for r in sent] == ["/v1/tenants/acme/entitlements"]
    # The cached answers are the server's own, quantity by quantity; only the server words
    # the sentence of an unknown key (it knows the project's key and every feature's).
    assert [replace(b, from_cache=False) for b in burst] == [
        replace(t, message=None) for t in truth
    ] * 5
    assert truth[-1].message is not None
    assert burst[4].message is None
    assert [b.from_cache for b in burst] == [False] + [True] * (len(burst) - 1)


def test_usage_through_the_same_client_invalidates_the_cache(
    billplane_url: str, project: Project, recorder: httpx.BaseTransport, sent: list[httpx.Request]
) -> None:
    with Billplane(billplane_url, project["token"], cache_ttl=60, transport=recorder) as bp:
        before = bp.check("acme", "listings.publish")
        bp.record_usage("acme", "listings.publish", 2)
        after = bp.check("acme", "listings.publish")
        untouched = bp.check("acme", "exports")

    assert (before.used, after.used, after.remaining) == (0, 2, 1)
    assert [r.url.path for r in sent] == [
        "/v1/tenants/acme/entitlements",
        "/v1/usage",
        "/v1/tenants/acme/entitlements",
    ]
    assert untouched.from_cache


def test_the_cache_expires_after_its_ttl(billplane_url: str, project: Project, clock: Any) -> None:
    with (
        Billplane(billplane_url, project["token"], cache_ttl=10, clock=clock) as bp,
        sync_client(billplane_url, project["token"]) as elsewhere,
    ):
        bp.check("acme", "listings.publish")
        elsewhere.record_usage("acme", "listings.publish")  # another process, say
        clock.advance(9)
        stale = bp.check("acme", "listings.publish")
        clock.advance(2)
        fresh = bp.check("acme", "listings.publish")

    assert (stale.used, stale.from_cache) == (0, True)
    assert (fresh.used, fresh.from_cache) == (1, False)


def test_concurrent_checks_of_a_cold_cache_share_one_request(
    billplane_url: str, project: Project, recorder: httpx.BaseTransport, sent: list[httpx.Request]
) -> None:
    with Billplane(billplane_url, project["token"], cache_ttl=60, transport=recorder) as bp:

        def ask(_: int) -> bool:
            return bp.check("acme", "listings.publish").allowed

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(ask, range(16)))

    assert answers == [True] * 16
    assert len(sent) == 1


# --- the async client ---------------------------------------------------------------------------


def test_async_client_makes_every_call(billplane_url: str, project: Project) -> None:
    async def scenario() -> tuple[Any, ...]:
        async with AsyncBillplane(billplane_url, project["token"], cache_ttl=0, timeout=30) as bp:
            check = await bp.check("acme", "listings.publish", quantity=2)
            usage = await bp.record_usage("acme", "listings.publish", 2)
            again = await bp.record_usage(
                "acme", "listings.publish", 2, idempotency_key=usage.idempotency_key
            )
            batch = await bp.record_usage_batch([UsageEvent("acme", "ai.tokens", 3)])
            entitlements = await bp.entitlements("acme")
            with pytest.raises(PaymentRequired) as refused:
                await bp.record_usage("acme", "listings.publish", 2, enforce=True)
            return check, usage, again, batch, entitlements, refused.value

    check, usage, again, batch, entitlements, refused = asyncio.run(scenario())

    assert (check.allowed, check.remaining) == (True, 3)
    assert usage.recorded
    assert usage.idempotency_key.startswith("bpc-")
    assert again.duplicate
    assert again.used == 2
    assert batch[0].ok
    assert batch[0].usage.used == 3
    assert entitlements.features["listings.publish"].used == 2
    assert (refused.status, refused.code) == (402, "limit_reached")


def test_async_client_raises_the_api_errors(billplane_url: str, project: Project) -> None:
    async def scenario() -> tuple[Exception, Exception]:
        async with AsyncBillplane(billplane_url, "bp_wrong", timeout=30) as wrong:
            with pytest.raises(Unauthorized) as unauthorized:
                await wrong.check("acme", "exports")
        async with AsyncBillplane(billplane_url, project["token"], timeout=30) as bp:
            with pytest.raises(NotFound) as missing:
                await bp.entitlements("nobody")
        return unauthorized.value, missing.value

    unauthorized, missing = asyncio.run(scenario())

    assert isinstance(unauthorized, Unauthorized)
    assert unauthorized.code == "unauthorized"
    assert isinstance(missing, NotFound)
    assert missing.code == "tenant_not_found"


def test_async_burst_of_checks_costs_one_request(
    billplane_url: str,
    project: Project,
    async_recorder: httpx.AsyncBaseTransport,
    sent: list[httpx.Request],
) -> None:
    async def scenario() -> list[Check]:
        async with AsyncBillplane(
            billplane_url, project["token"], cache_ttl=60, transport=async_recorder
        ) as bp:
            checks = [bp.check("acme", f) for f in ("exports", "listings.publish") * 10]
            answers = await asyncio.gather(*checks)
            await bp.record_usage("acme", "listings.publish")
            answers.append(await bp.check("acme", "listings.publish"))
            return answers

    answers = asyncio.run(scenario())

    assert [r.url.path for r in sent].count("/v1/tenants/acme/entitlements") == 2
    assert len(sent) == 3
    assert [a.allowed for a in answers[:2]] == [False, True]
    assert answers[-1].used == 1


def test_async_client_retries_a_lost_answer_with_the_same_key(
    project: Project, flaky_proxy: Any
) -> None:
    async def scenario(url: str) -> Usage:
        async with AsyncBillplane(url, project["token"], backoff=0.01, timeout=30) as bp:
            return await bp.record_usage("acme", "ai.tokens", 11)

    with flaky_proxy(failures=2, forward_failures=True) as proxy:
        usage = asyncio.run(scenario(proxy.url))

    keys = {httpx.Response(200, content=b).json()["idempotency_key"] for b in proxy.bodies}
    assert len(proxy.bodies) == 3
    assert keys == {usage.idempotency_key}
    assert usage.duplicate
    assert usage.used == 11
