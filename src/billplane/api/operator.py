"""What an operator's tools ask the server: is the process alive (`/healthz`), may it take traffic
(`/readyz`), and its metrics (`/metrics`, Prometheus' text format)."""

import hmac
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from billplane import __version__, metrics
from billplane.appwebhooks import repository as app_webhooks
from billplane.db import Database, Transactions
from billplane.errors import NotReady, Unauthorized
from billplane.http import CurrentSettings, Now, Tx, errors, get_db
from billplane.logs import billplane_logger
from billplane.migrate import schema_state
from billplane.outage import is_outage

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
    tx: Tx,
    now: Now,
) -> Response:
    """Request latency per route and status, check decisions, usage, Stripe webhooks and API
    calls, app webhook deliveries and their backlog, and the database pool. Behind
    `BILLPLANE_METRICS_TOKEN` when it is set."""
    expected = settings.billplane_metrics_token
    if expected is not None:
        given = credentials.credentials if credentials else ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise Unauthorized("Send BILLPLANE_METRICS_TOKEN as 'Authorization: Bearer <token>'.")
    return Response(metrics.exposition(_backlog(tx, now)), media_type=metrics.CONTENT_TYPE)


def _backlog(tx: Transactions, now: datetime) -> metrics.Backlog | None:
    """The app webhook backlog, read now; None when the database does not answer (the scrape
    still answers the rest: metrics matter most in an outage)."""
    try:
        with tx.read() as session:
            pending, oldest = app_webhooks.backlog(session)
    except (DBAPIError, PoolTimeout) as exc:
        if not is_outage(exc):
            raise
        log.warning("metrics: the app webhook backlog could not be read: %s", type(exc).__name__)
        return None
    age = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
    return metrics.Backlog(pending=pending, oldest_pending_seconds=age)
