"""The dashboard's login: a signed session cookie, and a per-session CSRF token on every form.

The cookie is signed with a key derived from BILLPLANE_ADMIN_TOKEN, so changing the admin token
logs every operator out, and any worker can check any session (workers share nothing else).
"""

import hashlib
import hmac
import secrets
from typing import Annotated, Any

from fastapi import Depends, Request

from billplane.settings import Settings

SESSION_COOKIE = "billplane_session"
SESSION_SECONDS = 12 * 3600
CSRF_FIELD = "csrf"


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
        "https_only": settings.billplane_public_url.startswith("https://"),
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


def logged_in(request: Request) -> bool:
    return request.session.get("operator") is True


def log_in(request: Request, settings: Settings, given: str) -> bool:
    expected = settings.billplane_admin_token
    if expected is None or not hmac.compare_digest(given.encode(), expected.encode()):
        return False
    # A fresh session (and CSRF token) at login: nothing set before it survives (no fixation).
    request.session.clear()
    request.session["operator"] = True
    csrf_token(request)
    return True


def log_out(request: Request) -> None:
    request.session.clear()


def require_operator(request: Request) -> None:
    if not logged_in(request):
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


async def operator_form(request: Request) -> dict[str, str]:
    """A form of a logged-in operator: every form but the login form."""
    fields = await checked_form(request)
    if not logged_in(request):
        raise CsrfRejected
    return fields


LoginForm = Annotated[dict[str, str], Depends(checked_form)]
OperatorForm = Annotated[dict[str, str], Depends(operator_form)]
