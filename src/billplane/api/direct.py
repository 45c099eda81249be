"""The client API's three hottest routes served without FastAPI's per-request machinery.

FastAPI serves a route by matching the path against every route, solving the endpoint's
dependencies, reading the body through its model of the parameters and wrapping the call in two
exit stacks: on `/v1/check` that cost about as much as the check itself. Here `POST /v1/check`,
`POST /v1/usage` and `GET /v1/tenants/{tenant}/entitlements` go straight to the endpoint
functions FastAPI would call, with the body validated by the same pydantic model, from inside
the same middlewares and exception handlers (so errors keep their envelope and `/metrics` its
route labels).

Only the plain case is served here: a JSON body the model accepts, no query string, an
`Idempotency-Key` of allowed length. Anything else is handed, body replayed, to FastAPI's router,
which answers it exactly as before. The FastAPI routes stay what the OpenAPI document describes.
"""

import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billplane.api import entitlements, usage
from billplane.db import Transactions
from billplane.entitlements.schemas import CheckIn
from billplane.http import get_transactions
from billplane.schemas import TenantKey
from billplane.usage.schemas import UsageIn

# Returns the response, or None when the request is not the plain case (served by FastAPI).
Serve = Callable[[Request, bytes, Transactions], Awaitable[Response | None]]

ENTITLEMENTS = re.compile(r"/v1/tenants/([^/]+)/entitlements")
TENANT_KEY: TypeAdapter[str] = TypeAdapter(TenantKey)
IDEMPOTENCY_KEY = b"idempotency-key"
IDEMPOTENCY_KEY_LENGTH = 255  # as `usage.record_usage` declares the header


def _body(model: type[BaseModel], raw: bytes) -> Any:
    """The body as FastAPI would validate it (the JSON document's values, in Python mode), or
    None when it would refuse it: FastAPI then words the refusal."""
    try:
        return model.model_validate(orjson.loads(raw))
    except (orjson.JSONDecodeError, ValidationError):
        return None


async def _check(request: Request, raw: bytes, tx: Transactions) -> Response | None:
    body = _body(CheckIn, raw)
    return None if body is None else await entitlements.check(body, request, tx)


async def _usage(request: Request, raw: bytes, tx: Transactions) -> Response | None:
    key = next((v for k, v in request.scope["headers"] if k == IDEMPOTENCY_KEY), None)
    if key is not None and len(key) > IDEMPOTENCY_KEY_LENGTH:
        return None
    body = _body(UsageIn, raw)
    if body is None:
        return None
    header_key = None if key is None else key.decode("latin-1")
    return await usage.record_usage(body, request, tx, header_key)


async def _entitlements(request: Request, _raw: bytes, tx: Transactions) -> Response | None:
    tenant = request.path_params["tenant"]
    try:
        TENANT_KEY.validate_python(tenant)
    except ValidationError:
        return None
    return await entitlements.entitlements(tenant, request, tx)


class HotRoutes:
    """Serves the plain case of the hot routes; hands everything else to `router`."""

    def __init__(self, app: FastAPI, router: ASGIApp) -> None:
        self.app = app
        self.router = router
        hot = (*entitlements.router.routes, *usage.router.routes)
        routes = {(r.path, m): r for r in hot if isinstance(r, APIRoute) for m in r.methods or ()}
        self._check = routes["/v1/check", "POST"], _check
        self._usage = routes["/v1/usage", "POST"], _usage
        self._entitlements = routes["/v1/tenants/{tenant}/entitlements", "GET"], _entitlements

    def _served(self, scope: Scope) -> tuple[APIRoute, Serve] | None:
        if scope["type"] != "http" or scope["query_string"] or scope.get("root_path"):
            return None
        method, path = scope["method"], scope["path"]
        if method == "POST":
            if path == "/v1/check":
                return self._check
            if path == "/v1/usage":
                return self._usage
        elif method == "GET" and path.startswith("/v1/tenants/"):
            matched = ENTITLEMENTS.fullmatch(path)
            if matched:
                scope["path_params"] = {"tenant": matched[1]}
                return self._entitlements
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        served = self._served(scope)
        if served is None:
            await self.router(scope, receive, send)
            return
        route, serve = served
        raw = await _read_body(receive) if scope["method"] == "POST" else b""
        scope["route"] = route  # what `telemetry` labels the request with, as FastAPI sets it
        request = Request(scope, receive, send)
        response = await serve(request, raw, self._transactions())
        if response is None:
            scope.pop("path_params", None)
            await self.router(scope, _replay(raw, receive), send)
            return
        await response(scope, receive, send)

    def _transactions(self) -> Transactions:
        # Tests give the app their own (a savepoint per test) as FastAPI's dependency override.
        provide = self.app.dependency_overrides.get(get_transactions)
        tx: Transactions = provide() if provide else Transactions(self.app.state.db)
        return tx


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client left, as Starlette says it
            raise ClientDisconnect
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(raw: bytes, receive: Receive) -> Receive:
    """`receive`, giving the body already read once more first."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": raw, "more_body": False}

    return replayed


def serve_hot_routes(app: FastAPI) -> None:
    """Put `HotRoutes` in front of `app`'s router, inside every middleware and exception
    handler (the router is the innermost layer of the stack FastAPI builds)."""
    build = app.build_middleware_stack

    def build_with_hot_routes() -> ASGIApp:
        stack = build()
        layer: Any = stack
        while getattr(layer, "app", None) is not app.router:
            layer = getattr(layer, "app", None)
            if layer is None:
                raise RuntimeError("no middleware of the stack wraps the router")
        layer.app = HotRoutes(app, app.router)
        return stack

    app.build_middleware_stack = build_with_hot_routes  # type: ignore[method-assign]
