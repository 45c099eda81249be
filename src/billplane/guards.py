"""What stands before every route: a size limit on request bodies, and the headers that tell
browsers how to treat billplane's pages.

Both are plain ASGI middleware, outside anything that reads a body or checks a token.
"""

from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billplane.http import error_body
from billplane.settings import KIB, MIB, Settings

# Paths whose bodies are the API's: JSON (a usage batch is the largest) or Stripe's events.
API_PATHS = ("/v1/", "/admin/api/", "/webhooks/")


class BodyTooLarge(StarletteHTTPException):
    """A body that grew past its limit while it streamed in (no Content-Length said so first)."""

    def __init__(self, limit: int, path: str) -> None:
        super().__init__(413, too_large(limit, path))


def too_large(limit: int, path: str) -> str:
    advice = " Send the events in smaller batches." if path.startswith("/v1/usage/batch") else ""
    return f"The request body is larger than {_size(limit)}, the most this path accepts.{advice}"


def _size(limit: int) -> str:
    if limit % MIB == 0:
        return f"{limit // MIB} MiB"
    return f"{limit // KIB} KiB" if limit % KIB == 0 else f"{limit} bytes"


class BodyLimits:
    """Refuses a request body over its path's limit with 413, having read at most the limit.

    A Content-Length over the limit is refused at once, before the app (or a token check) runs.
    A body without one (chunked) is counted as it streams in: the chunk that passes the limit
    raises `BodyTooLarge` to whatever is reading, which the error handlers answer in the
    envelope (so does this middleware, should it reach here unanswered). Either way the answer
    says `Connection: close`, so the server stops reading a body nobody wants instead of
    draining it.
    """

    def __init__(self, app: ASGIApp, *, api: int, forms: int) -> None:
        self.app = app
        self.api = api
        self.forms = forms

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.api if scope["path"].startswith(API_PATHS) else self.forms
        declared, chunked = _framing(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit, scope["path"])
            return
        if declared is not None and not chunked:
            # The server delivers exactly Content-Length bytes (its HTTP parser frames the
            # body): nothing to count, and the hot path keeps its speed.
            await self.app(scope, receive, send)
            return
        received = 0
        tripped = False

        async def counted() -> Message:
            nonlocal received, tripped
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    tripped = True
                    raise BodyTooLarge(limit, scope["path"])
            return message

        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if tripped:
                    message = {**message, "headers": [*message.get("headers", []), CLOSE]}
            await send(message)

        try:
            await self.app(scope, counted, sending)
        except BodyTooLarge:
            # Raised where no handler answers it (outside the routes): answer it here.
            if started:
                raise
            await _refuse(send, limit, scope["path"])


CLOSE = (b"connection", b"close")


def _framing(scope: Scope) -> tuple[int | None, bool]:
    """The body's Content-Length, if any, and whether it is sent chunked."""
    declared: int | None = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                chunked = True  # the server refuses a malformed one; count the body anyway
        elif name == b"transfer-encoding":
            chunked = True
    return declared, chunked


async def _refuse(send: Send, limit: int, path: str) -> None:
    body = orjson.dumps(error_body("payload_too_large", too_large(limit, path)))
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        CLOSE,
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def render_body_too_large(_request: Request, exc: Exception) -> JSONResponse:
    """For an app whose other errors are HTML pages (the dashboard): a 413 is the envelope."""
    detail = exc.detail if isinstance(exc, StarletteHTTPException) else str(exc)
    return JSONResponse(error_body("payload_too_large", str(detail)), status_code=413)


# Nothing of billplane may be framed by another site (clickjacking), sniffed as another type, or
# leak its URLs to another site. The dashboard sets a stricter policy of its own, kept as it is.
SECURITY_HEADERS = [
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]
# A year, as browsers' preload lists ask; only ever sent when billplane is served over https.
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class SecurityHeaders:
    """Adds `SECURITY_HEADERS` (and HSTS when the public URL is https) to every answer but the
    client API's: apps, not browsers, read those, and the hot path stays as lean as it was."""

    SKIPPED = ("/v1/",)

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.headers = [*SECURITY_HEADERS, *([HSTS] if settings.served_over_https else [])]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.SKIPPED):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": _added(message.get("headers", []), self.headers)}
            await send(message)

        await self.app(scope, receive, with_headers)


def _added(headers: Any, extra: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`headers` with each of `extra` whose name they do not carry already."""
    present = {name.lower() for name, _ in headers}
    return [*headers, *(header for header in extra if header[0] not in present)]
