"""Concurrent client calls against a real server (a base URL: one server, or a load balancer in
front of several), for the tests that prove exactly-once and never-over: tests/usage/
test_concurrency.py, tests/test_scale_out.py."""

import asyncio
import secrets

import httpx

from conftest import ADMIN_TOKEN


def seed(base_url: str, limit: int, key: str | None = None) -> tuple[str, str]:
    """A fresh project (`key`, or a random one) whose default plan allows `limit` units;
    returns (token, tenant)."""
    key = key or f"p{secrets.token_hex(4)}"
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as admin:
        project = admin.post("/admin/api/projects", json={"key": key, "name": key})
        assert project.status_code == 201, project.text
        for path, body in _setup_steps(limit):
            response = admin.post(f"/admin/api/projects/{key}/{path}", json=body)
            assert response.status_code == 201, response.text
    return project.json()["token"], "acme"


def _setup_steps(limit: int) -> list[tuple[str, dict[str, object]]]:
    return [
        ("features", {"key": "reports", "name": "Reports", "type": "limit"}),
        (
            "plans",
            {
                "key": "free",
                "name": "Free",
                "is_default": True,
                "features": {"reports": {"limit": limit, "reset": "never"}},
            },
        ),
        ("tenants", {"key": "acme"}),
    ]


async def fire(base_url: str, token: str, bodies: list[dict[str, object]]) -> list[httpx.Response]:
    """Every body posted to /v1/usage at once, each on its own connection, released together."""
    return await fire_calls(base_url, token, [("/v1/usage", body) for body in bodies])


async def fire_calls(
    base_url: str, token: str, calls: list[tuple[str, dict[str, object]]]
) -> list[httpx.Response]:
    """Every (path, body) posted at once, each on its own connection, released together."""
    limits = httpx.Limits(max_connections=len(calls), max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=base_url,
        limits=limits,
        timeout=120,
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        start = asyncio.Event()

        async def one(path: str, body: dict[str, object]) -> httpx.Response:
            await start.wait()
            return await client.post(path, json=body)

        tasks = [asyncio.create_task(one(path, body)) for path, body in calls]
        await asyncio.sleep(0.2)  # every task is parked at the gate before any request leaves
        start.set()
        return await asyncio.gather(*tasks)


def used(base_url: str, token: str, tenant: str) -> int:
    answer = httpx.post(
        f"{base_url}/v1/check",
        json={"tenant": tenant, "feature": "reports"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200, answer.text
    return int(answer.json()["used"])
