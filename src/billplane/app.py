"""The ASGI application: client API, admin API and the operator dashboard, on one stack."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from billplane import __version__, metrics
from billplane.api import (
    app_webhooks,
    audit,
    billing,
    credits,
    entitlements,
    operator,
    plans,
    projects,
    refusals,
    signing,
    status,
    stripe,
    tenants,
    tokens,
    usage,
    webhooks,
)
from billplane.api.direct import serve_hot_routes
from billplane.appwebhooks import sender
from billplane.clock import Clock, utc_now
from billplane.dashboard.app import mount_dashboard
from billplane.db import Database, Transactions, count_pool_use
from billplane.guards import BodyLimits, SecurityHeaders
from billplane.http import JsonBodies, document_errors, install_error_handlers
from billplane.processes import die_with_parent
from billplane.settings import Settings, get_settings
from billplane.signing.service import KeyRing
from billplane.stripe.gateway import StripeGateway
from billplane.telemetry import observe_requests

DESCRIPTION = """
billplane answers client apps' question **"can this tenant do this?"** and records **usage**
exactly once. Client calls (`/v1/...`) take a project or tenant token as
`Authorization: Bearer <token>`; admin calls (`/admin/api/...`) take `BILLPLANE_ADMIN_TOKEN`.
Every error is `{"error": {"code": "...", "message": "..."}}`.
"""


def create_served_app() -> FastAPI:
    """The app as `billplane serve` runs it in each worker process.

    Everything loaded so far (modules, routes, the app) lives as long as the process: freezing it
    takes it out of the garbage collector's full passes, which otherwise walk the whole heap and
    stall a request for tens of milliseconds now and then.
    """
    die_with_parent()
    # Live gauges of workers that died before this one started in their place.
    metrics.forget_dead_processes()
    app = create_app()
    if app.state.settings.billplane_send_app_webhooks:
        send_app_webhooks(app)
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return app


def send_app_webhooks(app: FastAPI) -> None:
    """Run a sender of webhooks to client apps beside the app, from its start to its stop."""
    served = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(instance: FastAPI) -> AsyncIterator[Any]:
        stop = sender.start_in_background(Transactions(app.state.db), app.state.settings)
        try:
            async with served(instance) as state:
                yield state
        finally:
            await run_in_threadpool(stop)  # lets an attempt under way finish and be recorded

    app.router.lifespan_context = lifespan


# Collect the youngest objects less often than Python's default 700 allocations: a request of
# the client API allocates hundreds of short-lived objects that die by reference counting anyway.
GC_THRESHOLDS = (10_000, 20, 20)

DOCS_ASSETS = "/docs-assets"


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    # Shutting down (uvicorn has let the requests in flight finish): what the hot path keeps to
    # write later (the refusal log, the day's check counts) is written now, not lost.
    await run_in_threadpool(app.state.db.drain)


def create_app(
    settings: Settings | None = None, *, db: Database | None = None, clock: Clock = utc_now
) -> FastAPI:
    settings = settings or get_settings()
    # `/docs` and `/redoc` load Swagger UI and ReDoc from billplane itself (fastapi-offline
    # ships them), not from a CDN: they work on a server without internet.
    app = FastAPIOffline(
        title="billplane",
        version=__version__,
        description=DESCRIPTION,
        static_url=DOCS_ASSETS,
        lifespan=_lifespan,
    )
    app.state.settings = settings
    if db is None:
        db = Database.from_settings(settings)
        count_pool_use(db.engine)  # the app's own pool; a test's shared one is not its to count
    app.state.db = db
    app.state.clock = clock
    app.state.stripe = StripeGateway.from_settings(settings)
    app.state.signing_keys = KeyRing(settings.billplane_secret_key)
    install_error_handlers(app)
    app.add_middleware(JsonBodies)
    app.add_middleware(SecurityHeaders, settings=settings)
    # Outermost of these: a body too large is refused before anything else reads it or checks a
    # token (`telemetry`, outside them all, reads no body).
    app.add_middleware(
        BodyLimits, api=settings.billplane_max_body_bytes, forms=settings.billplane_max_form_bytes
    )
    observe_requests(app)
    serve_hot_routes(app)
    for router in (
        entitlements.router,
        usage.router,
        projects.router,
        plans.router,
        tenants.router,
        tokens.router,
        audit.router,
        refusals.router,
        signing.router,
        signing.admin,
        billing.router,
        billing.admin,
        webhooks.router,
        webhooks.admin,
        stripe.router,
        status.router,
        operator.router,
        app_webhooks.router,
        credits.router,
        credits.client,
    ):
        app.include_router(router)

    # Last: the dashboard answers only the paths it serves, after every API route.
    mount_dashboard(app)
    document_errors(app)
    return app
