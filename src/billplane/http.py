"""What every HTTP edge shares: per-request transactions, the clock, callers, and error rendering.

The request owns the transaction: an endpoint opens it with `tx.read()`/`tx.write()` and it is
committed when the block ends, rolled back when it raises (see `Transactions`).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, cast

import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from billplane.clock import Clock
from billplane.db import Database, Transactions
from billplane.errors import BillplaneError, Unauthorized
from billplane.logs import billplane_logger, mark_logged
from billplane.operators import service as operators
from billplane.outage import (
    CANDIDATES,
    MESSAGE,
    PREPARED_STATEMENT_LOST,
    RETRY_AFTER_SECONDS,
    describe,
    is_outage,
    prepared_statement_lost,
)
from billplane.schemas import ErrorOut
from billplane.settings import Settings
from billplane.stripe.gateway import StripeGateway

log = billplane_logger()


# The dependencies below are `async def` on purpose: FastAPI runs a plain `def` dependency in its
# threadpool, a hop per dependency per request that cost more than the check itself.
async def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_now(request: Request) -> datetime:
    now: datetime = request.app.state.clock()
    return now


async def get_transactions(request: Request) -> Transactions:
    return Transactions(request.app.state.db)


Tx = Annotated[Transactions, Depends(get_transactions)]
Now = Annotated[datetime, Depends(get_now)]
CurrentSettings = Annotated[Settings, Depends(get_settings)]


async def get_stripe(request: Request) -> StripeGateway:
    """The app's Stripe gateway: one per process, built from the settings."""
    state = request.app.state
    gateway: StripeGateway | None = getattr(state, "stripe", None)
    if gateway is None:
        gateway = state.stripe = StripeGateway.from_settings(state.settings)
    return gateway


async def get_clock(request: Request) -> Clock:
    """The clock itself, for edges that read the time more than once (before and after
    asking Stripe)."""
    clock: Clock = request.app.state.clock
    return clock


async def get_served_settings(request: Request) -> Settings:
    """The settings as this request sees them: without BILLPLANE_PUBLIC_URL, the public URL is
    the one the request came to (`make run PORT=8100`, a LAN address), so that snippets, the
    webhook URL and the Stripe report name the server actually answering. For the dashboard and
    the admin reports only: the hot path keeps `CurrentSettings` (no copy per request)."""
    settings: Settings = request.app.state.settings
    if settings.public_url_set:
        return settings
    served = str(request.base_url).rstrip("/")
    return settings.model_copy(update={"billplane_public_url": served})


ServedSettings = Annotated[Settings, Depends(get_served_settings)]
Stripe = Annotated[StripeGateway, Depends(get_stripe)]
AppClock = Annotated[Clock, Depends(get_clock)]


ADMIN_SCHEME = "AdminToken"
client_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ProjectToken",
    description="A project token, or a tenant-scoped token (`bp_...`).",
)
admin_bearer = HTTPBearer(
    auto_error=False, scheme_name=ADMIN_SCHEME, description="BILLPLANE_ADMIN_TOKEN."
)


async def client_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(client_bearer)],
) -> str | None:
    """The bearer token as sent; it is looked up inside the endpoint's own transaction."""
    return credentials.credentials if credentials else None


ClientToken = Annotated[str | None, Depends(client_token)]


@dataclass(frozen=True, slots=True)
class ClientCall:
    """What a client API endpoint on the hot path needs, read straight off the request.

    FastAPI resolves each dependency on every request, and the five a check used to declare
    cost it as much as its own rules: a hot endpoint declares only `Tx` (tests replace it) and
    builds this. Its routes name the bearer scheme in the OpenAPI document themselves
    (`CLIENT_SECURITY`), as the `ClientToken` dependency would.
    """

    token: str | None
    tx: Transactions
    now: datetime
    settings: Settings


def client_call(request: Request, tx: Transactions) -> ClientCall:
    state = request.app.state
    return ClientCall(bearer_token(request), tx, state.clock(), state.settings)


def bearer_token(request: Request) -> str | None:
    """The token of `Authorization: Bearer <token>`, read as `client_bearer` reads it."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials if credentials and scheme.lower() == "bearer" else None


CLIENT_SECURITY: dict[str, Any] = {"security": [{client_bearer.scheme_name: []}]}


def require_admin(
    request: Request,
    settings: CurrentSettings,
    tx: Tx,
    now: Now,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(admin_bearer)],
) -> str:
    """The admin API answers only to `BILLPLANE_ADMIN_TOKEN`; returns the actor name."""
    expected = settings.billplane_admin_token
    if expected is None:
        raise Unauthorized("The admin API is off: set BILLPLANE_ADMIN_TOKEN to turn it on.")
    given = credentials.credentials if credentials else ""
    if not admin_token_given(request, tx, now, given, expected):
        raise Unauthorized("Send the admin token as 'Authorization: Bearer <token>'.")
    return "admin"


def admin_token_given(
    request: Request, tx: Transactions, now: datetime, given: str, expected: str | None
) -> bool:
    """Whether `given` is the admin token. A client that sent too many wrong ones lately is
    refused (`TooManyAttempts`, 429) before its token is even compared; each wrong one is
    noted (see `operators.service`). For the admin API and the dashboard's login alike.

    No token at all is no guess: refused at once, neither throttled nor counted."""
    if not given:
        return False
    client = client_address(request)
    with tx.read() as session:
        operators.refuse_if_throttled(session, client, now)
    if operators.is_admin_token(given, expected):
        return True
    with tx.write() as session:
        operators.note_failure(session, client, now)
    return False


def client_address(request: Request) -> str:
    """Who is calling: the peer's address, or the one a trusted proxy forwarded (uvicorn
    rewrites it only for BILLPLANE_TRUSTED_PROXIES; see `billplane serve`)."""
    return request.client.host if request.client else "unknown"


Admin = Annotated[str, Depends(require_admin)]

# A catalogue change previewed, not made (see `entitlements.preview`).
DryRun = Annotated[
    bool,
    Query(description="Change nothing: answer what the change would do to each tenant."),
]


def json_response(
    body: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A body the endpoint built itself, as the response model would serialise it (UTC as Z):
    the hot path skips FastAPI's re-validation of what it just built."""
    content = orjson.dumps(body, option=orjson.OPT_UTC_Z)
    return Response(
        content, status_code=status_code, headers=headers, media_type="application/json"
    )


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


# Each renderer is registered for one exception class (see `install_error_handlers`), which
# Starlette's handler type cannot say: hence the casts.
def _render_domain_error(_request: Request, exc: Exception) -> JSONResponse:
    exc = cast(BillplaneError, exc)
    body = error_body(exc.code, exc.message, **exc.extra)
    return JSONResponse(body, status_code=exc.status, headers=exc.headers())


INVALID_JSON = "The request body is not valid JSON."


class JsonBodies:
    """A body the API gets as a form, as plain text or with no Content-Type is read as JSON.

    `curl -d '{...}'` sends `application/x-www-form-urlencoded`, a fetch of a string sends
    `text/plain`, and some clients send no Content-Type at all: the body they carry is still the
    JSON the API expects. If it is not JSON after all, the 400 names the header it came with.
    Other types (XML, multipart) are refused as before. Only the API's paths are touched: the
    dashboard's forms and Stripe's webhook (which reads raw bytes) are not.
    """

    READ_AS_JSON = (b"application/x-www-form-urlencoded", b"text/plain")
    API = ("/v1/", "/admin/api/")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] != "GET"
            and scope["path"].startswith(self.API)
        ):
            headers: list[tuple[bytes, bytes]] = scope["headers"]
            sent_as = next((v for k, v in headers if k == b"content-type"), None)
            if sent_as is None or sent_as.lower().startswith(self.READ_AS_JSON):
                kept = [(k, v) for k, v in headers if k != b"content-type"]
                # In this scope, not a copy: the router writes the matched route into the scope
                # it is given, and `telemetry` (outside) reads it from the same one.
                scope["headers"] = [*kept, (b"content-type", b"application/json")]
                scope[SENT_AS] = (sent_as or b"").decode("latin-1").split(";")[0].strip()
        await self.app(scope, receive, send)


SENT_AS = "billplane.sent_as"  # the Content-Type a body read as JSON came with


def _invalid_json(request: Request) -> JSONResponse:
    sent_as = request.scope.get(SENT_AS)
    message = INVALID_JSON
    if sent_as is not None:
        said = f"was sent as {sent_as}" if sent_as else "came without a Content-Type"
        message += f" It {said}; the API reads JSON only: send Content-Type: application/json."
    return JSONResponse(error_body("invalid_json", message), status_code=400)


def _render_validation_error(request: Request, exc: Exception) -> JSONResponse:
    exc = cast(RequestValidationError, exc)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return _invalid_json(request)
    # `loc` starts with where the value came from (body, query, path); the rest is the field.
    return JSONResponse(validation_error(errors, skip=1, body=exc.body), status_code=422)


def validation_error(errors: Sequence[Any], *, skip: int = 0, body: Any = None) -> dict[str, Any]:
    """The envelope for the most specific of pydantic's errors, naming the offending field.

    A value that may take several shapes (a grant is `true` or `{"limit": N}`) gets one error
    per shape; the deepest is the one that says what to fix, e.g. that the limit is too large.
    """
    if not errors:
        return error_body("validation_error", "Invalid request.", param=None)
    chosen = max(errors, key=lambda error: len(error["loc"]))
    loc = list(chosen["loc"])
    path = _field_path(loc[skip:], body) if body is not None else [str(p) for p in loc[skip:]]
    param = ".".join(path) or ".".join(str(p) for p in loc)
    message = f"{param}: {chosen['msg']}" if param else str(chosen["msg"])
    return error_body("validation_error", message, param=param or None)


def _field_path(loc: list[Any], body: Any) -> list[str]:
    """`loc` as the caller wrote it: without pydantic's names for the shapes of a union."""
    path: list[str] = []
    here = body
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(here, dict) and (part in here or last):
            here = here.get(part)
        elif isinstance(here, list) and isinstance(part, int) and 0 <= part < len(here):
            here = here[part]
        else:
            continue  # a union member's name, not a field of the request
        path.append(str(part))
    return path


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
_HTTP_MESSAGES = {404: "No such route."}


def _render_http_error(request: Request, exc: Exception) -> JSONResponse:
    exc = cast(StarletteHTTPException, exc)
    # FastAPI answers a body its JSON parser chokes on in other ways than a syntax error (bytes
    # that are not UTF-8, nesting too deep, a number too long) with a bare 400; the API reads
    # only JSON.
    if exc.status_code == 400:
        return _invalid_json(request)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = _HTTP_MESSAGES.get(exc.status_code, str(exc.detail))
    headers = exc.headers
    if exc.status_code == 405 and (allowed := _allowed_methods(request)):
        headers = {**(headers or {}), "Allow": ", ".join(allowed)}
    return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path: Starlette's 405 names only the first route's,
    and one path's GET and POST are two routes."""

    def served(method: str) -> bool:
        probe = {**request.scope, "method": method}
        return any(route.matches(probe)[0] is Match.FULL for route in request.app.router.routes)

    return [m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE") if served(m)]


async def _render_database_error(_request: Request, exc: Exception) -> JSONResponse:
    """A database outage is a 503 the caller may retry; any other database error is a bug,
    left to `_render_unexpected`. Async: the threadpool may be full of requests waiting for a
    pooled connection, and this answer must not queue behind them."""
    if not is_outage(exc):
        if prepared_statement_lost(exc):
            log.error("%s (%s)", PREPARED_STATEMENT_LOST, describe(exc))
        raise exc
    log.warning("database unavailable, answered 503: %s", describe(exc))
    return JSONResponse(
        error_body("database_unavailable", MESSAGE),
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _render_unexpected(_request: Request, exc: Exception) -> JSONResponse:
    # The log filter masks any secret the exception's text or traceback might carry. Starlette
    # raises the exception again once this answer is sent, and uvicorn would log it a second
    # time: marked, its report is dropped (see `logs.ReportedOnce`).
    log.error("unhandled %s while serving a request", type(exc).__name__, exc_info=exc)
    mark_logged(exc)
    return JSONResponse(
        error_body("internal_error", "Something went wrong on billplane's side."),
        status_code=500,
    )


# What each status means on any route; a route says more where it knows more (see `errors`).
ERROR_MEANINGS = {
    400: "The body is not JSON (`invalid_json`), or a value is not acceptable here.",
    401: "No token, or one billplane does not know or has revoked (`unauthorized`).",
    402: "Not allowed: enforcement was asked and the tenant may not use this much.",
    403: "A tenant-scoped token named another tenant (`forbidden`).",
    404: "A record the call names does not exist (`project_not_found`, `tenant_not_found`...).",
    409: "The call conflicts with what is stored.",
    413: "The body is larger than the server accepts (`payload_too_large`; the limit is "
    "BILLPLANE_MAX_BODY_BYTES, 2 MiB by default): refused before it was read.",
    422: "A field is missing or invalid (`validation_error`; `param` names the field).",
    429: "Too many wrong admin tokens from this client in the last minute "
    "(`too_many_attempts`): wait the `Retry-After` seconds.",
    503: "Stripe is not configured (`stripe_not_configured`) or did not answer "
    "(`stripe_unavailable`).",
}


def errors(*statuses: int | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """A route's `responses=`: each status in the error envelope, with what it means there
    (`(409, "...")`) or in general (`ERROR_MEANINGS`).

    401, 422 and the 400 of a body that is not JSON are added to every route they apply to by
    `document_errors`; a route declares the errors of its own rules.
    """
    declared: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        code, meaning = status if isinstance(status, tuple) else (status, ERROR_MEANINGS[status])
        declared[code] = {"model": ErrorOut, "description": meaning}
    return declared


# A create's 409.
KEY_TAKEN = (409, "Its scope already has a record with this key (`already_exists`).")

ERROR_SCHEMA = "#/components/schemas/ErrorOut"


def document_errors(app: FastAPI) -> None:
    """`/openapi.json` shows the errors the API answers, in the envelope it answers them in.

    FastAPI documents a 422 as `{"detail": [...]}`, which billplane never sends. Each operation's
    422 is the envelope instead, and the errors any operation of a kind can answer are added:
    401 with a bearer token, 400, 413 and 422 with a body, 404 with a record in the path, and
    429 with the admin token.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for operations in schema["paths"].values():
                for operation in operations.values():
                    _document_errors(operation)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                components.pop(unused, None)
            envelope = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(envelope.pop("$defs", {}))
            components.setdefault("ErrorOut", envelope)
        return app.openapi_schema  # type: ignore[return-value]  # set by `generate`

    app.openapi = openapi  # type: ignore[method-assign]


def _document_errors(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    generic: list[int] = []
    security = operation.get("security", [])
    if security:
        generic.append(401)
    if any(ADMIN_SCHEME in scheme for scheme in security):
        generic.append(429)
    if "requestBody" in operation:
        generic += [400, 413, 422]
    parameters = operation.get("parameters", [])
    if any(p.get("in") == "path" for p in parameters):
        generic.append(404)
    if parameters:
        generic.append(422)
    for code in generic:
        responses.setdefault(str(code), {"description": ERROR_MEANINGS[code]})
    if operation.get("security") or "503" in responses:  # it reads the database
        _document_outage(responses)
    if "422" in responses:  # FastAPI's own, or one added above
        responses["422"]["description"] = ERROR_MEANINGS[422]
    for status, response in responses.items():
        if status.startswith(("4", "5")):
            response["content"] = {"application/json": {"schema": {"$ref": ERROR_SCHEMA}}}


DATABASE_UNAVAILABLE = (
    "The database is unavailable for a moment (`database_unavailable`): retry after "
    "`Retry-After` seconds; a usage call retried with the same idempotency key counts once."
)


def _document_outage(responses: dict[str, Any]) -> None:
    said = responses.get("503", {}).get("description")
    also = f"{said} Or t{DATABASE_UNAVAILABLE[1:]}" if said else DATABASE_UNAVAILABLE
    responses["503"] = {
        "description": also,
        "headers": {"Retry-After": {"description": "Seconds", "schema": {"type": "integer"}}},
    }


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(BillplaneError, _render_domain_error)
    app.add_exception_handler(RequestValidationError, _render_validation_error)
    app.add_exception_handler(StarletteHTTPException, _render_http_error)
    for database_error in CANDIDATES:
        app.add_exception_handler(database_error, _render_database_error)
    app.add_exception_handler(Exception, _render_unexpected)
