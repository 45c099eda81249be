"""The client API's three hottest routes served without FastAPI's per-request machinery.

FastAPI serves a route through a dozen layers (its own and billplane's middlewares, exception
handling, an exit stack), then matches the path against every route, solves the endpoint's
dependencies, reads the body through its model of the parameters and wraps the call in two
more exit stacks: on `/v1/check` that cost more than the check itself. Here `POST /v1/check`,
`POST /v1/usage` and `GET /v1/tenants/{tenant}/entitlements` go straight to the endpoint
functions FastAPI would call, with the body validated by the same pydantic model, right inside
the layers every answer needs: the request's id and latency (`telemetry`) and the last resort
for a bug (Starlette's 500). Their errors are rendered by the app's own exception handlers, so
they keep their envelope, and `/metrics` its route labels.

Only the plain case is served here: a body sent as JSON with its length, within the API's
limit, that the model accepts; no query string; an `Idempotency-Key` of allowed length. Anything
else is handed, body replayed, to the rest of the stack, which answers it exactly as before (the
413, the form-encoded body read as JSON, the 422). The FastAPI routes stay what the OpenAPI
document describes.
"""

import inspect
import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.middleware.errors import ServerErrorMiddleware
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
    """Serves the plain case of the hot routes; hands everything else to `router` (the rest of
    the stack: middlewares, exception handling and FastAPI's router)."""

    def __init__(self, app: FastAPI, router: ASGIApp) -> None:
        self.app = app
        self.router = router
        self.limit: int = app.state.settings.billplane_max_body_bytes
        # The app's handlers of what endpoints raise (a 401, a 404, a 402, an outage); anything
        # else is a bug, for Starlette's 500 outside.
        self.handlers = {
            kind: handler
            for kind, handler in app.exception_handlers.items()
            if isinstance(kind, type) and kind is not Exception
        }
        hot = (*entitlements.router.routes, *usage.router.routes)
        routes = {(r.path, m): r for r in hot if isinstance(r, APIRoute) for m in r.methods or ()}
        self._check = routes["/v1/check", "POST"], _check
        self._usage = routes["/v1/usage", "POST"], _usage
        self._entitlements = routes["/v1/tenants/{tenant}/entitlements", "GET"], _entitlements

    def _served(self, scope: Scope) -> tuple[APIRoute, Serve] | None:
        if scope["type"] != "http" or scope["query_string"] or scope.get("root_path"):
            return None
        method, path = scope["method"], scope["path"]
        if method == "POST" and self._plain_body(scope["headers"]):
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

    def _plain_body(self, headers: list[tuple[bytes, bytes]]) -> bool:
        """Sent as JSON with a Content-Length within the limit, not chunked: `guards.BodyLimits`
        and `http.JsonBodies` (passed by) would let it through as it is."""
        length = None
        json = False
        for name, value in headers:
            if name == b"content-length":
                if length is not None or not value.isdigit():
                    return False
                length = int(value)
            elif name == b"content-type":
                if json or value.split(b";")[0].strip().lower() != b"application/json":
                    return False
                json = True
            elif name == b"transfer-encoding":
                return False
        return json and length is not None and length <= self.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        served = self._served(scope)
        if served is None:
            await self.router(scope, receive, send)
            return
        route, serve = served
        raw = await _read_body(receive) if scope["method"] == "POST" else b""
        scope["route"] = route  # what `telemetry` labels the request with, as FastAPI sets it
        request = Request(scope, receive, send)
        try:
            response = await serve(request, raw, self._transactions())
        except Exception as exc:
            response = await self._rendered(request, exc)
        if response is None:
            scope.pop("path_params", None)
            await self.router(scope, _replay(raw, receive), send)
            return
        await response(scope, receive, send)

    async def _rendered(self, request: Request, exc: Exception) -> Response:
        """`exc` answered by the app's handler of its kind, as Starlette's exception middleware
        would; re-raised when there is none."""
        for kind in type(exc).__mro__:
            handler = self.handlers.get(kind)
            if handler is not None:
                answered = handler(request, exc)
                return await answered if inspect.isawaitable(answered) else answered
        raise exc

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
    """Put `HotRoutes` just inside Starlette's last-resort error middleware of `app`'s stack
    (itself inside `telemetry`), in front of every other layer."""
    build = app.build_middleware_stack

    def build_with_hot_routes() -> ASGIApp:
        stack = build()
        layer: Any = stack
        while not isinstance(layer, ServerErrorMiddleware):
            layer = getattr(layer, "app", None)
            if layer is None:
                raise RuntimeError("the stack has no ServerErrorMiddleware")
        layer.app = HotRoutes(app, layer.app)
        return stack

    app.build_middleware_stack = build_with_hot_routes  # type: ignore[method-assign]
