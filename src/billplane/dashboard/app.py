"""The dashboard sub-app and its mount: own session, HTML error pages, static files.

It is mounted at `/` but takes only the paths it serves, so every other path (the client and
admin APIs, their typos included) keeps the API's JSON 404 and 405.
"""

from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billplane.dashboard import (
    app_webhook_pages,
    auth,
    endpoints,
    key_pages,
    plan_pages,
    project_pages,
    tenant_pages,
)
from billplane.dashboard.view import templates
from billplane.errors import BillplaneError
from billplane.guards import BodyTooLarge, render_body_too_large
from billplane.logs import billplane_logger
from billplane.outage import CANDIDATES, RETRY_AFTER_SECONDS, describe, is_outage

log = billplane_logger()

# Pages may load only their own CSS and script; nothing may frame them (clickjacking), and a page
# that once showed a token must not come back from the browser's cache.
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += SECURITY_HEADERS
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class DashboardMount(Mount):
    """A mount that matches only the paths some dashboard route serves."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is Match.NONE:
            return match, child
        probe = {**scope, **child}
        if any(route.matches(probe)[0] is not Match.NONE for route in self.routes):
            return match, child
        return Match.NONE, {}


def mount_dashboard(app: FastAPI) -> None:
    """Serve the dashboard at `/` of `app`, after every route `app` already has."""
    app.router.routes.append(DashboardMount("/", app=create_dashboard(app), name="dashboard"))


def create_dashboard(parent: FastAPI) -> FastAPI:
    dashboard = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    # Part of the same app: the same settings, database and clock, and the same dependency
    # overrides (a test's transactions, say) as the API routes.
    dashboard.state = parent.state
    dashboard.dependency_overrides = parent.dependency_overrides
    dashboard.add_middleware(SessionMiddleware, **auth.session_options(parent.state.settings))
    dashboard.add_middleware(SecurityHeaders)
    for module in (
        endpoints,
        project_pages,
        plan_pages,
        tenant_pages,
        key_pages,
        app_webhook_pages,
    ):
        dashboard.include_router(module.router)
    static = StaticFiles(directory=Path(__file__).parent / "static")
    dashboard.mount("/static", static, name="static")
    _install_error_pages(dashboard)
    return dashboard


def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    context: dict[str, Any] = {"title": title, "message": message, "code": status}
    context["logged_in"] = auth.seen_logged_in(request)
    return templates.TemplateResponse(request, "error.html", context, status_code=status)


def _install_error_pages(dashboard: FastAPI) -> None:
    def login_required(request: Request, _exc: Exception) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    def csrf_rejected(request: Request, _exc: Exception) -> Response:
        message = (
            "This form was not sent from a current dashboard session (it may have expired). "
            "Reload the page, log in if asked, and send it again."
        )
        return error_page(request, 403, "Form refused", message)

    def http_error(request: Request, exc: Exception) -> Response:
        exc = cast(StarletteHTTPException, exc)  # registered for this class only
        if exc.status_code == 404:
            return error_page(request, 404, "Not found", "There is no such page.")
        return error_page(request, exc.status_code, "Request refused", str(exc.detail))

    def not_found(request: Request, exc: Exception) -> Response:
        # A malformed key in a path names nothing that can exist: the page is simply not there.
        return error_page(request, 404, "Not found", "There is no such page.")

    def domain_error(request: Request, exc: Exception) -> Response:
        exc = cast(BillplaneError, exc)  # registered for this class only
        return error_page(request, exc.status, "Not possible", exc.message)

    async def database_error(request: Request, exc: Exception) -> Response:
        if not is_outage(exc):
            raise exc  # a bug: `unexpected` below
        log.warning("database unavailable, answered 503: %s", describe(exc))
        message = "billplane cannot reach its database right now; try again in a moment."
        page = error_page(request, 503, "Database unavailable", message)
        page.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return page

    def unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled %s on a dashboard page", type(exc).__name__, exc_info=exc)
        message = "Something went wrong on billplane's side; the server log has the details."
        return error_page(request, 500, "Server error", message)

    dashboard.add_exception_handler(auth.LoginRequired, login_required)
    dashboard.add_exception_handler(auth.CsrfRejected, csrf_rejected)
    dashboard.add_exception_handler(StarletteHTTPException, http_error)
    dashboard.add_exception_handler(BodyTooLarge, render_body_too_large)
    dashboard.add_exception_handler(RequestValidationError, not_found)
    dashboard.add_exception_handler(BillplaneError, domain_error)
    for kind in CANDIDATES:
        dashboard.add_exception_handler(kind, database_error)
    dashboard.add_exception_handler(Exception, unexpected)
