"""Four workers, one change: every worker obeys it on its very next request.

Workers keep each project's plans between requests (entitlements/catalogue.py), so a change made
through one worker must reach the other three at once. Each test here first has every worker
answer the old way (so each holds what it may keep), makes one change through the API or a Stripe
webhook, then has every worker answer again: every answer after the change, including each
worker's first, must obey it. A real server with 4 workers, on SQLite and PostgreSQL; the worker
that answered is told by our request ids' per-process prefix.
"""

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from stripe_lifecycle import Project, Stack, served_stack

# A 4-worker server's pools: one at a time on PostgreSQL beside the other many-worker tests.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("many_connections")]

WORKERS = 4
ROUND = 12  # concurrent requests per round, each on a connection of its own


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("workers")
    with served_stack(request.param, workdir, workers=WORKERS) as stack:
        # The server is up once one worker answers; the others may still be importing the app.
        every_worker(stack, lambda client: client.get("/healthz"), within=120)
        yield stack


Ask = Callable[[httpx.AsyncClient], Any]  # one request, as a coroutine


def every_worker(stack: Stack, ask: Ask, within: float = 60) -> list[httpx.Response]:
    """Rounds of the same request, each on a fresh connection (so the kernel hands them to any
    worker), until all four workers answered; every answer, in the order they came."""
    return asyncio.run(_rounds(stack.base_url, ask, time.monotonic() + within))


async def _rounds(base_url: str, ask: Ask, deadline: float) -> list[httpx.Response]:
    limits = httpx.Limits(max_keepalive_connections=0)
    answers: list[httpx.Response] = []
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
        while len({_worker(a) for a in answers}) < WORKERS:
            seen = {_worker(a) for a in answers}
            assert time.monotonic() < deadline, f"only workers {seen} answered"
            answers += await asyncio.gather(*(ask(client) for _ in range(ROUND)))
    return answers


def _worker(answer: httpx.Response) -> str:
    return answer.headers["x-request-id"].split("-")[0]


def check(headers: dict[str, str], feature: str = "exports") -> Ask:
    """acme's check of `feature`, asked with the token in `headers`."""
    body = {"tenant": "acme", "feature": feature}
    return lambda client: client.post("/v1/check", json=body, headers=headers)


def answers(stack: Stack, ask: Ask) -> set[tuple[int, Any, Any, Any]]:
    """What every worker answered: (status, plan, allowed, reason) of each answer."""
    seen = set()
    for answer in every_worker(stack, ask):
        body = answer.json()
        seen.add((answer.status_code, body.get("plan"), body.get("allowed"), body.get("reason")))
    return seen


def test_a_plan_edit_is_obeyed_by_every_worker_and_its_dry_run_by_none(stack: Stack) -> None:
    project = Project(stack)
    before = {(200, "free", False, "not_in_plan")}
    assert answers(stack, check(project.client_headers)) == before

    plan = f"/admin/api/projects/{project.key}/plans/free"
    grants = {"features": {"exports": True}}
    preview = stack.admin.patch(plan, json=grants, params={"dry_run": "true"})
    assert preview.status_code == 200, preview.text
    assert (
        answers(stack, check(project.client_headers)) == before
    )  # a preview changes nothing, anywhere

    assert stack.admin.patch(plan, json=grants).status_code == 200
    assert answers(stack, check(project.client_headers)) == {(200, "free", True, "ok")}


def test_another_default_plan_is_obeyed_by_every_worker(stack: Stack) -> None:
    project = Project(stack)
    assert answers(stack, check(project.client_headers)) == {(200, "free", False, "not_in_plan")}

    plans = f"/admin/api/projects/{project.key}/plans"
    made = stack.admin.patch(f"{plans}/pro", json={"is_default": True})
    assert made.status_code == 200, made.text
    assert answers(stack, check(project.client_headers)) == {(200, "pro", True, "ok")}

    back = stack.admin.patch(f"{plans}/free", json={"is_default": True})
    assert back.status_code == 200, back.text
    assert answers(stack, check(project.client_headers)) == {(200, "free", False, "not_in_plan")}


def test_an_override_is_obeyed_by_every_worker(stack: Stack) -> None:
    project = Project(stack)
    assert answers(stack, check(project.client_headers)) == {(200, "free", False, "not_in_plan")}

    tenant = f"/admin/api/projects/{project.key}/tenants/acme"
    patched = stack.admin.patch(tenant, json={"overrides": {"exports": True}})
    assert patched.status_code == 200, patched.text
    assert answers(stack, check(project.client_headers)) == {(200, "free", True, "ok")}


def test_a_feature_added_is_obeyed_by_every_worker(stack: Stack) -> None:
    project = Project(stack)
    assert answers(stack, check(project.client_headers, "reports")) == {
        (200, "free", False, "unknown_feature")
    }

    features = f"/admin/api/projects/{project.key}/features"
    reports = {"key": "reports", "name": "Reports", "type": "limit"}
    assert stack.admin.post(features, json=reports).status_code == 201
    assert answers(stack, check(project.client_headers, "reports")) == {
        (200, "free", False, "not_in_plan")
    }

    plan = f"/admin/api/projects/{project.key}/plans/free"
    granted = stack.admin.patch(plan, json={"features": {"reports": {"limit": 3}}})
    assert granted.status_code == 200, granted.text
    assert answers(stack, check(project.client_headers, "reports")) == {(200, "free", True, "ok")}


def test_a_token_revoked_or_rotated_is_refused_by_every_worker(stack: Stack) -> None:
    project = Project(stack)
    tokens = f"/admin/api/projects/{project.key}/tokens"
    issued = stack.admin.post(tokens, json={"name": "copy"}).json()
    first = {"Authorization": f"Bearer {issued['token']}"}
    assert answers(stack, check(first)) == {(200, "free", False, "not_in_plan")}

    rotated = stack.admin.post(f"/admin/api/tokens/{issued['id']}/rotate")
    assert rotated.status_code == 200, rotated.text
    assert {status for status, *_ in answers(stack, check(first))} == {401}
    second = {"Authorization": f"Bearer {rotated.json()['token']}"}
    assert answers(stack, check(second)) == {(200, "free", False, "not_in_plan")}

    revoked = stack.admin.delete(f"/admin/api/tokens/{rotated.json()['id']}")
    assert revoked.status_code == 200, revoked.text
    assert {status for status, *_ in answers(stack, check(second))} == {401}


def test_a_subscription_changed_by_webhook_is_obeyed_by_every_worker(stack: Stack) -> None:
    project = Project(stack)
    assert answers(stack, check(project.client_headers)) == {(200, "free", False, "not_in_plan")}

    subscription = project.subscribe("acme")  # the double's webhooks land before it returns
    assert answers(stack, check(project.client_headers)) == {(200, "pro", True, "ok")}

    stack.double.cancel(subscription)
    assert answers(stack, check(project.client_headers)) == {(200, "free", False, "not_in_plan")}
