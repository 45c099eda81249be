"""`billplane serve`: refuse a database that is not migrated, set up logs and the workers' metrics
directory, then run uvicorn (one supervisor, N workers that die with it)."""

import logging
import logging.config
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import DBAPIError

from billplane.cli.edge import database_error, fail, redacted, settings
from billplane.db import CONNECTIONS_PER_WORKER, create_db_engine, engine_options
from billplane.logs import billplane_logger, logging_config
from billplane.migrate import SecretKeyNeeded, schema_state, upgrade
from billplane.settings import Settings

METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"

log = billplane_logger()


def serve(
    host: str = "127.0.0.1",
    # The port and the workers come from the environment too: a container is configured by its
    # environment alone (see the Dockerfile).
    port: Annotated[int, typer.Option(envvar="BILLPLANE_PORT")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            envvar="BILLPLANE_WORKERS",
            min=1,
            max=64,
            help="Worker processes: one per CPU core is right for most servers. Each keeps up to "
            f"{CONNECTIONS_PER_WORKER} PostgreSQL connections; keep workers x "
            f"{CONNECTIONS_PER_WORKER} under the server's max_connections (100 by default).",
        ),
    ] = 1,
    access_log: Annotated[
        bool,
        typer.Option(
            help="Log every request: id, route, status, duration (BILLPLANE_ACCESS_LOG; off: "
            "it costs speed)"
        ),
    ] = False,
    migrate: Annotated[
        bool,
        typer.Option(help="Apply the migrations first, instead of refusing an unmigrated database"),
    ] = False,
    send_app_webhooks: Annotated[
        bool,
        typer.Option(
            help="Each worker sends webhooks to client apps (BILLPLANE_SEND_APP_WEBHOOKS); "
            "--no-send-app-webhooks where `billplane worker` processes send them instead",
        ),
    ] = True,
    graceful_timeout: Annotated[
        int,
        typer.Option(
            min=1,
            help="Seconds a stopping worker (SIGTERM) gives the requests it holds to finish; "
            "keep it under your orchestrator's kill timeout",
        ),
    ] = 30,
) -> None:
    """Serve the API (and dashboard) with uvicorn."""
    import uvicorn

    configured = settings()  # fail with one sentence here, not a traceback in every worker
    json = configured.billplane_log_format == "json"
    # The set-up uvicorn applies again in each worker; the supervisor's own lines use it now.
    log_config = logging_config(json=json)
    logging.config.dictConfig(log_config)
    say = log.info if json else typer.echo  # JSON logs stay one object per line, start included
    require_migrated(configured, migrate, say)
    for line in _banner(configured, host, port):
        say(line)
    if access_log:  # read by the workers' settings
        os.environ["BILLPLANE_ACCESS_LOG"] = "true"
    if not send_app_webhooks:
        os.environ["BILLPLANE_SEND_APP_WEBHOOKS"] = "false"
    with _metrics_directory(workers):
        uvicorn.run(
            "billplane.app:create_served_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=log_config,
            log_level="info",
            # billplane's own request log (`--access-log`) replaces uvicorn's: one line per
            # request, with its id, route template and duration, through the same mask.
            access_log=False,
            # X-Forwarded-For names the client only when a proxy we trust sent it; uvicorn's
            # own default trusts any local peer (and FORWARDED_ALLOW_IPS), which the throttle on
            # admin tokens would then count against whatever address a caller made up.
            proxy_headers=bool(configured.trusted_proxies),
            forwarded_allow_ips=configured.trusted_proxies,
            timeout_graceful_shutdown=graceful_timeout,
            # A worker busy with a burst of requests may answer the supervisor's ping late; it
            # is not dead, and restarting it would drop the requests it holds.
            timeout_worker_healthcheck=30,
        )


def require_migrated(configured: Settings, migrate: bool, say: Callable[[str], None]) -> None:
    """Every call would fail on a database behind the code: say so before serving (or migrate
    it, when asked to)."""
    engine = create_db_engine(configured.sqlalchemy_url, **engine_options(configured))
    try:
        with engine.connect() as connection:
            state = schema_state(connection)
        problem = state.problem()
        if problem is not None and migrate and state.known:
            upgrade(configured.sqlalchemy_url, secret_key=configured.billplane_secret_key)
            say(f"billplane: migrated {redacted(configured.database_url)} to head")
        elif problem is not None:
            advice = "run `billplane db upgrade` first, or serve with --migrate"
            if not state.known:
                advice = "serve it with the billplane that migrated it"
            fail(f"billplane cannot serve: {problem}; {advice}.")
    except DBAPIError as exc:
        fail(database_error(configured, exc))
    except SecretKeyNeeded as exc:
        fail(f"billplane cannot migrate the database: {exc}")
    finally:
        engine.dispose()


@contextmanager
def _metrics_directory(workers: int) -> Iterator[None]:
    """Where the workers keep their metrics for `/metrics` to sum: the operator's
    PROMETHEUS_MULTIPROC_DIR, or a fresh directory for this server, removed when it stops.
    A server of one process keeps its metrics in memory."""
    given = os.environ.get(METRICS_DIR)
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        yield
        return
    if workers == 1:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="billplane-metrics-") as directory:
        os.environ[METRICS_DIR] = directory
        try:
            yield
        finally:
            del os.environ[METRICS_DIR]


def _banner(configured: Settings, host: str, port: int) -> list[str]:
    """Where to go once the server is up, before uvicorn's own lines."""
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 -- a comparison
    base = f"http://{local}:{port}"
    login = (
        "log in with BILLPLANE_ADMIN_TOKEN (`make run` keeps it in .env)"
        if configured.billplane_admin_token
        else "BILLPLANE_ADMIN_TOKEN is not set: the dashboard and the admin API are off"
    )
    return [f"billplane: dashboard {base}/ ({login})", f"billplane: API docs {base}/docs"]
