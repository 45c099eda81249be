"""What an operator's tools ask the server: is the process alive (`/healthz`), may it take traffic
(`/readyz`), and its metrics (`/metrics`, Prometheus' text format)."""

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import DBAPIError

from billplane import __version__, metrics
from billplane.db import Database
from billplane.errors import NotReady, Unauthorized
from billplane.http import CurrentSettings, errors, get_db
from billplane.logs import billplane_logger
from billplane.migrate import schema_state

router = APIRouter(tags=["meta"])
log = billplane_logger()

metrics_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="MetricsToken",
    description="BILLPLANE_METRICS_TOKEN, when it is set (else `/metrics` is open).",
)


@router.get("/healthz", summary="Liveness: answers without touching the database")
def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get(
    "/readyz",
    summary="Readiness: the database answers and is at the migrations' head",
    responses=errors(
        (
            503,
            "Not ready: the database does not answer (`database_unreachable`) or is not "
            "migrated to this billplane's head (`database_not_migrated`).",
        )
    ),
)
def readyz(db: Annotated[Database, Depends(get_db)]) -> dict[str, str]:
    """200 once this server can answer every call; a load balancer sends it traffic then."""
    try:
        with db.engine.connect() as connection:
            state = schema_state(connection)
    except DBAPIError as exc:
        # The driver's words name hosts and ports: for the log, not for whoever asks.
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        log.warning("not ready: the database does not answer: %s", reason)
        raise NotReady("database_unreachable", "The database does not answer.") from None
    problem = state.problem()
    if problem is not None:
        fix = "Run `billplane db upgrade`." if state.known else "Serve the billplane that did."
        raise NotReady("database_not_migrated", f"Not ready: {problem}. {fix}")
    return {"status": "ready", "version": __version__, "revision": ", ".join(state.current)}


@router.get(
    "/metrics",
    summary="Metrics of every worker, in Prometheus' text format",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def metrics_text(
    settings: CurrentSettings,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(metrics_bearer)],
) -> Response:
    """Request latency per route and status, check decisions, usage, Stripe webhooks and API
    calls, and the database pool. Behind `BILLPLANE_METRICS_TOKEN` when it is set."""
    expected = settings.billplane_metrics_token
    if expected is not None:
        given = credentials.credentials if credentials else ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise Unauthorized("Send BILLPLANE_METRICS_TOKEN as 'Authorization: Bearer <token>'.")
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)
