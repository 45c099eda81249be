"""What every request leaves for the operator: its id (`X-Request-Id`, in and out), its latency in
`/metrics` per route template and status, and, when asked, one log line.

One pure-ASGI middleware, outside every other (so it times, and tags, the 500s Starlette answers
too). It is on the client API's hot path, so a request costs a header scan, an id from a counter,
two clock reads and one histogram observation through a child bound once per (route, method,
status); the log line only when asked (`--access-log`).
"""

import itertools
import logging
import re
import secrets
from collections.abc import Callable
from time import perf_counter

from fastapi import FastAPI
from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billplane import metrics
from billplane.logs import REQUEST_ID

log = logging.getLogger("billplane.requests")

REQUEST_ID_HEADER = b"x-request-id"
# A client's id is kept if it is short and plain (a UUID, a trace id); anything else could forge
# log lines or bloat them, and is replaced by one of ours.
SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
UNMATCHED = "unmatched"  # a path no route serves: one label, whatever was asked
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

Observe = Callable[[float], None]


class Telemetry:
    """Tags, times and (with `log_requests`) logs every HTTP request of `app`."""

    def __init__(self, app: ASGIApp, *, log_requests: bool) -> None:
        self.app = app
        self.log_requests = log_requests
        # (route's id, method, status) -> the histogram child's `observe`. Routes live as long
        # as the app, so their ids are stable keys; the template is worked out once per route.
        self._observers: dict[tuple[int, str, int], Observe] = {}
        # Ids unique across processes and servers without a random draw per request: a random
        # prefix per process, then a count.
        prefix = secrets.token_hex(6)
        self._new_id = (f"{prefix}-{n:x}".encode() for n in itertools.count(1)).__next__

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _given_id(scope["headers"]) or self._new_id()
        tag = (REQUEST_ID_HEADER, request_id)
        status = 500  # unless an answer starts: an exception no handler turned into one

        async def tagged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), tag]
            await send(message)

        context = REQUEST_ID.set(request_id.decode())
        root_path = scope.get("root_path", "")
        start = perf_counter()
        try:
            await self.app(scope, receive, tagged)
        finally:
            seconds = perf_counter() - start
            route: BaseRoute | None = scope.get("route")
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            key = (id(route), method, status)
            observe = self._observers.get(key)
            if observe is None:
                observe = self._bind(key, _template(route, scope, root_path))
            observe(seconds)
            if self.log_requests:
                _log_request(method, _template(route, scope, root_path), status, seconds)
            REQUEST_ID.reset(context)

    def _bind(self, key: tuple[int, str, int], template: str) -> Observe:
        _, method, status = key
        child = metrics.REQUEST_SECONDS.labels(method, template, str(status))
        observe = self._observers[key] = child.observe
        return observe


def _given_id(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            return value if SANE_REQUEST_ID.fullmatch(value) else None
    return None


def _template(route: BaseRoute | None, scope: Scope, root_path: str) -> str:
    """The route as declared (`/v1/tenants/{tenant}/entitlements`), never the path asked: one
    label per route, whatever tenants or ids the paths carry."""
    path = getattr(route, "path", None)
    if path is None:
        return UNMATCHED
    # A route inside a mounted app (the dashboard) is declared relative to its mount, whose
    # prefix the mount added to the root path.
    prefix = scope.get("root_path", "")[len(root_path) :]
    return f"{prefix}{path}/{{path}}" if isinstance(route, Mount) else f"{prefix}{path}"


def _log_request(method: str, route: str, status: int, seconds: float) -> None:
    milliseconds = round(seconds * 1000, 1)
    fields = {"method": method, "route": route, "status": status, "duration_ms": milliseconds}
    log.info("%s %s %d %.1f ms", method, route, status, milliseconds, extra=fields)


def observe_requests(app: FastAPI) -> None:
    """Put `Telemetry` outside every middleware of `app`, Starlette's own error middleware
    included; `add_middleware` would put it inside that one, missing the 500s it answers."""
    build = app.build_middleware_stack

    def build_observed() -> ASGIApp:
        settings = app.state.settings
        return Telemetry(build(), log_requests=settings.billplane_access_log)

    app.build_middleware_stack = build_observed  # type: ignore[method-assign]
