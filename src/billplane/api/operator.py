"""What an operator's tools ask the server: is the process alive (`/healthz`), and may it take
traffic (`/readyz`)."""

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy.exc import DBAPIError

from billplane import __version__
from billplane.db import Database
from billplane.errors import NotReady
from billplane.http import errors, get_db
from billplane.logs import billplane_logger
from billplane.migrate import schema_state

router = APIRouter(tags=["meta"])
log = billplane_logger()


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
        message = f"Not ready: {problem}. Run `billplane db upgrade`."
        raise NotReady("database_not_migrated", message)
    return {"status": "ready", "version": __version__, "revision": ", ".join(state.current)}
