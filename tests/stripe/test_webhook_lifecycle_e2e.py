"""The subscription lifecycle over real HTTP: the Stripe double signs and posts every event to a
real billplane server, in order, shuffled and repeated, and the tenant ends the same each time.

checkout → active → renewal → payment failed (past_due) → recovered → canceled, for one tenant,
and the same without the cancellation for a second one, their events mixed in one batch.
"""

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from stripe_lifecycle import Project, Stack, assert_final, lifecycle, served_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with served_stack(request.param, tmp_path_factory.mktemp("lifecycle")) as stack:
        yield stack


@pytest.fixture(scope="module")
def in_order(stack: Stack) -> dict[str, Any]:
    """The lifecycle with every event delivered at once, in order, step by step."""
    project = Project(stack)
    double = stack.double
    subscription = project.subscribe("acme")
    assert project.state("acme")["status"] == "active"
    assert project.state("acme")["plan"] == "pro"
    first_end = project.state("acme")["current_period_end"]

    double.renew(subscription)
    renewed = project.state("acme")
    assert renewed["status"] == "active"
    assert renewed["current_period_end"] > first_end

    double.fail_payment(subscription)
    failing = project.state("acme")
    assert (failing["status"], failing["plan"], failing["allowed"]) == ("past_due", "pro", True)

    double.recover(subscription)
    assert project.state("acme")["status"] == "active"

    double.cancel(subscription)
    assert project.state("acme")["plan"] == "free"
    assert all(d.ok for d in double.deliveries), [d for d in double.deliveries if not d.ok]

    # Then the full two-tenant lifecycle on a fresh project, as the reference outcome.
    reference = Project(stack)
    lifecycle(reference)
    return assert_final(reference)


def test_the_lifecycle_delivered_in_order_ends_as_stripe_says(in_order: dict[str, Any]) -> None:
    assert in_order["acme"]["status"] == "canceled"
    assert in_order["globex"]["current_period_end"] is not None


@pytest.mark.parametrize(
    ("order", "duplicate", "seed"),
    [
        ("as_is", True, None),
        ("reversed", False, None),
        ("shuffled", True, 1),
        ("shuffled", True, 2),
        ("shuffled", True, 3),
    ],
)
def test_the_lifecycle_ends_the_same_whatever_the_delivery(
    stack: Stack, in_order: dict[str, Any], order: Any, duplicate: bool, seed: int | None
) -> None:
    project = Project(stack)
    stack.double.hold_deliveries()
    try:
        lifecycle(project)
        held = [e["id"] for e in stack.double.pending_events()]
        deliveries = stack.double.deliver(order=order, duplicate=duplicate, seed=seed)
    finally:
        stack.double.resume_deliveries()

    assert [d.status_code for d in deliveries] == [200] * len(deliveries)
    assert Counter(d.event_id for d in deliveries) == {e: 2 if duplicate else 1 for e in held}
    assert assert_final(project) == in_order


def test_concurrent_deliveries_apply_each_event_once(
    stack: Stack, in_order: dict[str, Any]
) -> None:
    """Stripe may deliver several events about one subscription at the same moment (and
    repeat them): concurrent requests must neither fail nor store anything twice."""
    project = Project(stack)
    stack.double.hold_deliveries()
    try:
        lifecycle(project)
        pending = stack.double.pending_events()
        signed = [stack.double.signed(event) for event in pending + pending]
        with httpx.Client(base_url=stack.base_url, timeout=120) as http:

            def post(delivery: tuple[bytes, str]) -> int:
                payload, header = delivery
                headers = {"Stripe-Signature": header, "Content-Type": "application/json"}
                return http.post("/webhooks/stripe", content=payload, headers=headers).status_code

            with ThreadPoolExecutor(max_workers=12) as pool:
                statuses = list(pool.map(post, signed))
    finally:
        stack.double.resume_deliveries()  # the held originals arrive too: repeats by now

    assert statuses == [200] * len(signed)
    assert assert_final(project) == in_order
    events = stack.admin.get("/admin/api/events", params={"limit": 100}).json()["data"]
    mine = {e["id"] for e in pending}
    assert Counter(e["id"] for e in events if e["id"] in mine) == dict.fromkeys(mine, 1)
