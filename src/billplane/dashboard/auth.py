"""The dashboard's login: a server-side session named by a signed cookie, a per-session CSRF
token on every form, and the same throttle on wrong admin tokens as the admin API.

The cookie is signed with a key derived from BILLPLANE_ADMIN_TOKEN, so changing the admin token
logs every operator out; it names a session row (see `operators.service`), so logging out ends
that session for every copy of the cookie, on any worker.
"""

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from billplane.db import Transactions
from billplane.http import Now, Tx, admin_token_given
from billplane.operators import service as operators
from billplane.settings import Settings

SESSION_COOKIE = "billplane_session"
SESSION_SECONDS = int(operators.SESSION_LIFETIME.total_seconds())
CSRF_FIELD = "csrf"
SESSION_FIELD = "session"  # the session row's secret


class LoginRequired(Exception):
    """A page asked for without a session: the answer is a redirect to the login page."""


class CsrfRejected(Exception):
    """A form posted without this session's CSRF token (or without a session at all)."""


def session_options(settings: Settings) -> dict[str, Any]:
    """SessionMiddleware's settings: HttpOnly always, Secure when served over https."""
    return {
        "secret_key": session_key(settings),
        "session_cookie": SESSION_COOKIE,
        "max_age": SESSION_SECONDS,
        "same_site": "lax",
        "https_only": settings.served_over_https,
    }


def session_key(settings: Settings) -> str:
    admin_token = settings.billplane_admin_token
    if admin_token is None:
        # No admin token: nobody can log in, and no cookie needs to outlive this process.
        return secrets.token_hex(32)
    return hmac.new(
        admin_token.encode(), b"billplane dashboard session", hashlib.sha256
    ).hexdigest()


def csrf_token(request: Request) -> str:
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = request.session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return token


def session_secret(request: Request) -> str | None:
    secret = request.session.get(SESSION_FIELD)
    return secret if isinstance(secret, str) else None


def logged_in(request: Request, tx: Transactions, now: datetime) -> bool:
    """Whether the cookie names a live session (asked of the database once per request)."""
    known: bool | None = getattr(request.state, "operator", None)
    if known is None:
        secret = session_secret(request)
        if secret is None:
            known = False
        else:
            with tx.read() as session:
                known = operators.session_alive(session, secret, now)
        request.state.operator = known
    return known


def seen_logged_in(request: Request) -> bool:
    """What this request already found out (for an error page's links): no database call."""
    return getattr(request.state, "operator", False) is True


def log_in(
    request: Request, tx: Transactions, settings: Settings, given: str, now: datetime
) -> bool:
    """Open a session if `given` is the admin token; raises `TooManyAttempts` for a client that
    guessed wrong too often lately."""
    if not admin_token_given(request, tx, now, given, settings.billplane_admin_token):
        return False
    with tx.write() as session:
        secret = operators.open_session(session, now)
    # A fresh session (and CSRF token) at login: nothing set before it survives (no fixation).
    request.session.clear()
    request.session[SESSION_FIELD] = secret
    request.state.operator = True
    csrf_token(request)
    return True


def log_out(request: Request, tx: Transactions) -> None:
    secret = session_secret(request)
    if secret is not None:
        with tx.write() as session:
            operators.close_session(session, secret)
    request.session.clear()
    request.state.operator = False


def require_operator(request: Request, tx: Transactions, now: datetime) -> None:
    if not logged_in(request, tx, now):
        raise LoginRequired


async def checked_form(request: Request) -> dict[str, str]:
    """The posted fields, once the CSRF token matches this session's; 403 otherwise."""
    form = await request.form()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    expected = request.session.get(CSRF_FIELD)
    given = fields.pop(CSRF_FIELD, "")
    if not isinstance(expected, str) or not hmac.compare_digest(given.encode(), expected.encode()):
        raise CsrfRejected
    return fields


async def operator_form(request: Request, tx: Tx, now: Now) -> dict[str, str]:
    """A form of a logged-in operator: every form but the login form."""
    fields = await checked_form(request)
    # The session's row is read off the event loop, as every other database call.
    if not await run_in_threadpool(logged_in, request, tx, now):
        raise CsrfRejected
    return fields


LoginForm = Annotated[dict[str, str], Depends(checked_form)]
OperatorForm = Annotated[dict[str, str], Depends(operator_form)]
