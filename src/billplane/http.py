"""What every HTTP edge shares: per-request transactions, the clock, callers, and error rendering.

The request owns the transaction: `read_session`/`write_session` commit when the endpoint returns
and roll back when it raises, before the response is sent.
"""

import hmac
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager as ContextManager
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from billplane.db import Database
from billplane.errors import BillplaneError, Unauthorized
from billplane.settings import Settings
from billplane.tokens import service as tokens

log = logging.getLogger("billplane")


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_now(request: Request) -> datetime:
    now: datetime = request.app.state.clock()
    return now


def _session(db: Database, *, write: bool) -> Iterator[Session]:
    with db.session_scope(write=write) as session:
        yield session


def read_session(db: Annotated[Database, Depends(get_db)]) -> Iterator[Session]:
    yield from _session(db, write=False)


def write_session(db: Annotated[Database, Depends(get_db)]) -> Iterator[Session]:
    yield from _session(db, write=True)


def get_transactions(db: Annotated[Database, Depends(get_db)]) -> Callable[[], Any]:
    """Opens further write transactions of a request's own (a batch commits event by event)."""
    return lambda: db.session_scope(write=True)


Transactions = Annotated[Callable[[], ContextManager[Session]], Depends(get_transactions)]
ReadSession = Annotated[Session, Depends(read_session, scope="function")]
WriteSession = Annotated[Session, Depends(write_session, scope="function")]
Now = Annotated[datetime, Depends(get_now)]
CurrentSettings = Annotated[Settings, Depends(get_settings)]
AuthorizationHeader = Annotated[str | None, Header(include_in_schema=False)]


def read_caller(session: ReadSession, authorization: AuthorizationHeader = None) -> tokens.Caller:
    return tokens.authenticate(session, authorization)


def write_caller(session: WriteSession, authorization: AuthorizationHeader = None) -> tokens.Caller:
    return tokens.authenticate(session, authorization)


def require_admin(settings: CurrentSettings, authorization: AuthorizationHeader = None) -> str:
    """The admin API answers only to `BILLPLANE_ADMIN_TOKEN`; returns the actor name."""
    expected = settings.billplane_admin_token
    if expected is None:
        raise Unauthorized("The admin API is off: set BILLPLANE_ADMIN_TOKEN to turn it on.")
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), expected):
        raise Unauthorized("Send the admin token as 'Authorization: Bearer <token>'.")
    return "admin"


ReadCaller = Annotated[tokens.Caller, Depends(read_caller)]
WriteCaller = Annotated[tokens.Caller, Depends(write_caller)]
Admin = Annotated[str, Depends(require_admin)]


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def _render_domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BillplaneError)
    return JSONResponse(error_body(exc.code, exc.message, **exc.extra), status_code=exc.status)


def _render_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return JSONResponse(
            error_body("invalid_json", "The request body is not valid JSON."), status_code=400
        )
    # `loc` starts with where the value came from (body, query, path); the rest is the field.
    return JSONResponse(validation_error(errors, skip=1), status_code=422)


def validation_error(errors: Sequence[Any], *, skip: int = 0) -> dict[str, Any]:
    """The envelope for the first of pydantic's errors, naming the offending field."""
    first = errors[0] if errors else {"loc": (), "msg": "Invalid request."}
    loc = [str(p) for p in first["loc"]]
    param = ".".join(loc[skip:]) or ".".join(loc)
    message = f"{param}: {first['msg']}" if param else str(first["msg"])
    return error_body("validation_error", message, param=param or None)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def _render_http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = "No such route." if exc.status_code == 404 else str(exc.detail)
    return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=exc.headers)


def _render_unexpected(_request: Request, exc: Exception) -> JSONResponse:
    # The exception text may hold anything (even a key); only its type goes to the log.
    log.error("unhandled %s while serving a request", type(exc).__name__)
    return JSONResponse(
        error_body("internal_error", "Something went wrong on billplane's side."),
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(BillplaneError, _render_domain_error)
    app.add_exception_handler(RequestValidationError, _render_validation_error)
    app.add_exception_handler(StarletteHTTPException, _render_http_error)
    app.add_exception_handler(Exception, _render_unexpected)
