"""The hot routes (`api.direct`) answer exactly as FastAPI's own routes would, and serve the plain
case without FastAPI's router; everything else reaches the router with its body intact."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from billplane.api.direct import HotRoutes

CHECK = {"tenant": "acme", "feature": "listings.publish"}
USAGE = {"tenant": "acme", "feature": "listings.publish", "quantity": 1, "enforce": True}

# (method, path, JSON body, raw bytes or chunks of them, extra headers): each the plain case or
# one it hands on.
CASES: list[tuple[str, str, Any, dict[str, str]]] = [
    ("POST", "/v1/check", CHECK, {}),
    ("POST", "/v1/check", {**CHECK, "quantity": 3, "explain": True}, {}),
    ("POST", "/v1/check", {**CHECK, "feature": "no.such.feature"}, {}),
    ("POST", "/v1/check", {**CHECK, "tenant": "ghost"}, {}),
    ("POST", "/v1/check", CHECK, {"Authorization": "Bearer not-a-token"}),
    ("POST", "/v1/check", {"tenant": "acme"}, {}),
    ("POST", "/v1/check", {**CHECK, "quantity": 0}, {}),
    ("POST", "/v1/check", {**CHECK, "surprise": 1}, {}),
    ("POST", "/v1/check", [CHECK], {}),
    ("POST", "/v1/check", b'{"tenant": "acme",', {}),
    ("POST", "/v1/check", b"", {}),
    (
        "POST",
        "/v1/check",
        b'{"tenant": "acme", "feature": "listings.publish", "quantity": NaN}',
        {},
    ),
    ("POST", "/v1/check", b"tenant=acme", {"Content-Type": "application/x-www-form-urlencoded"}),
    ("POST", "/v1/check", b"<check/>", {"Content-Type": "application/xml"}),
    ("POST", "/v1/check", CHECK, {"Content-Type": "application/json; charset=utf-8"}),
    ("POST", "/v1/check", CHECK, {"Content-Type": "text/plain"}),
    ("POST", "/v1/check", b'{"feature": "' + b"x" * (3 * 1024 * 1024) + b'"}', {}),
    ("POST", "/v1/check", (b'{"tenant": "acme", ', b'"feature": "listings.publish"}'), {}),
    ("POST", "/v1/check?explain=true", CHECK, {}),
    ("PUT", "/v1/check", CHECK, {}),
    ("POST", "/v1/usage", {**USAGE, "enforce": "yes", "idempotency_key": "k-1"}, {}),
    ("POST", "/v1/usage", USAGE, {}),
    ("POST", "/v1/usage", USAGE, {"Idempotency-Key": "k" * 256}),
    ("POST", "/v1/usage", {**USAGE, "tenant": "ghost", "idempotency_key": "k-2"}, {}),
    ("POST", "/v1/usage", {**USAGE, "quantity": 99, "idempotency_key": "k-3"}, {}),
    ("GET", "/v1/tenants/acme/entitlements", None, {}),
    ("GET", "/v1/tenants/acme/entitlements?explain=true", None, {}),
    ("GET", "/v1/tenants/ghost/entitlements", None, {}),
    ("GET", "/v1/tenants/" + "a" * 129 + "/entitlements", None, {}),
    ("GET", "/v1/tenants/acme%20x/entitlements", None, {}),
    ("GET", "/v1/tenants/acme/entitlements/", None, {}),
    ("POST", "/v1/tenants/acme/entitlements", None, {}),
]


def hot_routes(app: FastAPI) -> tuple[Any, HotRoutes]:
    """The built stack's `HotRoutes` and the layer that holds it."""
    holder: Any = app.middleware_stack
    while not isinstance(holder.app, HotRoutes):
        holder = holder.app
    return holder, holder.app


class CountedRouter:
    """The router, counting the requests that reach it."""

    def __init__(self, router: ASGIApp) -> None:
        self.router = router
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append(scope["path"])
        await self.router(scope, receive, send)


@contextmanager
def router_counted(app: FastAPI) -> Iterator[CountedRouter]:
    _, hot = hot_routes(app)
    counted = CountedRouter(hot.router)
    hot.router = counted
    try:
        yield counted
    finally:
        hot.router = counted.router


@contextmanager
def fastapi_alone(app: FastAPI) -> Iterator[None]:
    """The stack without `HotRoutes`: every request goes through FastAPI's router."""
    holder, hot = hot_routes(app)
    holder.app = hot.router
    try:
        yield
    finally:
        holder.app = hot


def answer(client: TestClient, token: str, case: tuple[str, str, Any, dict[str, str]]) -> Any:
    method, path, body, headers = case
    sent = {"Authorization": f"Bearer {token}", **headers}
    if isinstance(body, tuple):  # sent chunked, without a Content-Length
        sent["Content-Type"] = "application/json"
        response = client.request(method, path, content=iter(body), headers=sent)
    elif isinstance(body, bytes):
        response = client.request(method, path, content=body, headers=sent)
    else:
        response = client.request(method, path, json=body, headers=sent)
    kept = {k: v for k, v in response.headers.items() if k not in ("x-request-id", "date")}
    return response.status_code, kept, response.content


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case[0]} {case[1][:48]}")
def test_a_hot_route_answers_as_fastapi_would(client: TestClient, realtyos: Any, case: Any) -> None:
    hot = answer(client, realtyos.token, case)
    with fastapi_alone(client.app):  # type: ignore[arg-type]
        assert answer(client, realtyos.token, case) == hot


def test_the_plain_case_never_reaches_the_router(client: TestClient, realtyos: Any) -> None:
    api = realtyos.api
    with router_counted(client.app) as router:  # type: ignore[arg-type]
        assert api.post("/v1/check", CHECK).json()["allowed"] is True
        used = api.post("/v1/usage", {**USAGE, "idempotency_key": "plain-1"})
        assert (used.status_code, used.json()["used"]) == (201, 1)
        repeated = api.post("/v1/usage", USAGE, headers={"Idempotency-Key": "plain-1"})
        assert (repeated.status_code, repeated.json()["duplicate"]) == (200, True)
        assert api.get("/v1/tenants/acme/entitlements").status_code == 200
    assert router.paths == []


def test_what_is_not_the_plain_case_reaches_the_router_with_its_body(
    client: TestClient, realtyos: Any
) -> None:
    api = realtyos.api
    with router_counted(client.app) as router:  # type: ignore[arg-type]
        refused = api.post("/v1/check", {"tenant": "acme"})
        explained = api.post("/v1/check?explain=true", CHECK)
        recorded = api.post("/v1/usage", {**USAGE, "idempotency_key": "k" * 256})
    assert router.paths == ["/v1/check", "/v1/check", "/v1/usage"]
    assert refused.status_code == 422
    assert refused.json()["error"]["param"] == "feature"
    assert (explained.status_code, explained.json()["allowed"]) == (200, True)
    assert recorded.status_code == 422  # the body arrived: the key is what FastAPI refused


def test_usage_recorded_on_the_hot_route_is_a_repeat_for_fastapi(
    client: TestClient, realtyos: Any
) -> None:
    api = realtyos.api
    first = api.post("/v1/usage", {**USAGE, "idempotency_key": "shared-1"})
    with fastapi_alone(client.app):  # type: ignore[arg-type]
        again = api.post("/v1/usage", {**USAGE, "idempotency_key": "shared-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["idempotent-replayed"] == "true"
    assert {k: v for k, v in again.json().items() if k not in ("duplicate", "current")} == {
        k: v for k, v in first.json().items() if k != "duplicate"
    }
