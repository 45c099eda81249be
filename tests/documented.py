"""Every answer the API gives in a test is one its OpenAPI document lists for that operation.

The `client` fixture puts `Answers` around the app: it notes the method, path and status of each
API call, and when the test ends `undocumented` compares them with `/openapi.json`. So each of
the suite's calls (a 404 for a missing tenant, a 409 for a reused key, a 503 without Stripe...)
proves the document, and a new error an endpoint starts to give fails the test that provokes it
until the route documents it.
"""

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_PREFIXES = ("/v1/", "/admin/api/")


@dataclass
class Answers:
    """ASGI middleware: the (method, path, status) of every API answer, in order."""

    app: ASGIApp
    seen: list[tuple[str, str, int]] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIXES):
            await self.app(scope, receive, send)
            return

        async def noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.seen.append((scope["method"], scope["path"], message["status"]))
            await send(message)

        await self.app(scope, receive, noting)


def undocumented(app: FastAPI, seen: list[tuple[str, str, int]]) -> list[str]:
    """The answers whose status the operation's documented responses do not list.

    A path no route serves (a 404 "No such route") or a method the path does not have (405) is
    not an operation's answer, and a 500 is a bug the test itself reports.
    """
    if not seen:
        return []
    operations = _operations(_frozen(app))
    missing = []
    for method, path, status in seen:
        if status >= 500 and status != 503:
            continue
        documented = _documented(operations, method, path)
        if documented is not None and str(status) not in documented:
            missing.append(f"{method} {path} answered {status}; documented: {sorted(documented)}")
    return sorted(set(missing))


Frozen = tuple[tuple[str, str, tuple[str, ...]], ...]
# Building the OpenAPI document costs a few hundred ms; every test's app has the same routes,
# so it is built once per set of routes (path, methods, endpoint and the statuses each declares).
_documents: dict[tuple[Any, ...], Frozen] = {}


def _frozen(app: FastAPI) -> Frozen:
    routes = tuple(
        (
            getattr(route, "path", ""),
            tuple(sorted(getattr(route, "methods", None) or ())),
            _name(getattr(route, "endpoint", None)),
            tuple(sorted(map(str, getattr(route, "responses", None) or {}))),
        )
        for route in app.routes
    )
    if routes not in _documents:
        schema: dict[str, Any] = app.openapi()
        _documents[routes] = tuple(
            (method.upper(), path, tuple(operation.get("responses", {})))
            for path, operations in schema["paths"].items()
            for method, operation in operations.items()
        )
    return _documents[routes]


def _name(endpoint: Any) -> str:
    """The endpoint's code, by name: `create_app` makes some of them anew for each app."""
    return f"{getattr(endpoint, '__module__', '')}.{getattr(endpoint, '__qualname__', '')}"


@cache
def _operations(
    frozen: tuple[tuple[str, str, tuple[str, ...]], ...],
) -> list[tuple[str, re.Pattern[str], int, set[str]]]:
    found = []
    for method, path, statuses in frozen:
        pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")
        found.append((method, pattern, path.count("{"), set(statuses)))
    # A literal segment wins over a parameter (`/usage/batch` over `/usage/{x}`, say).
    found.sort(key=lambda operation: operation[2])
    return found


def _documented(
    operations: list[tuple[str, re.Pattern[str], int, set[str]]], method: str, path: str
) -> set[str] | None:
    for op_method, pattern, _, statuses in operations:
        if op_method == method and pattern.match(path):
            return statuses
    return None
