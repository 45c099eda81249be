"""The `billplane` command: serve, migrate, and administer the same database as the server."""

import sys
from typing import Annotated

import typer
from sqlalchemy.exc import DBAPIError

from billplane.cli.demo import demo
from billplane.cli.edge import database_error, fail, redacted, settings
from billplane.cli.features import feature_app
from billplane.cli.plans import plan_app
from billplane.cli.projects import project_app
from billplane.cli.stripe import events_app, stripe_app
from billplane.cli.tenants import tenant_app
from billplane.cli.tokens import token_app
from billplane.db import CONNECTIONS_PER_WORKER
from billplane.settings import Settings

app = typer.Typer(help="billplane: a billing control plane between Stripe and your apps.")
db_app = typer.Typer(help="The database schema.")
for sub, name in [
    (db_app, "db"),
    (project_app, "project"),
    (feature_app, "feature"),
    (plan_app, "plan"),
    (tenant_app, "tenant"),
    (token_app, "token"),
    (stripe_app, "stripe"),
    (events_app, "events"),
]:
    app.add_typer(sub, name=name)
app.command()(demo)


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Worker processes: one per CPU core is right for most servers. Each keeps up to "
            f"{CONNECTIONS_PER_WORKER} PostgreSQL connections; keep workers x "
            f"{CONNECTIONS_PER_WORKER} under the server's max_connections (100 by default).",
        ),
    ] = 1,
    access_log: Annotated[
        bool, typer.Option(help="Log every request (uvicorn's access log; off: it costs speed)")
    ] = False,
) -> None:
    """Serve the API (and dashboard) with uvicorn."""
    import uvicorn

    configured = settings()  # fail with one sentence here, not a traceback in every worker
    for line in _banner(configured, host, port):
        typer.echo(line)
    uvicorn.run(
        "billplane.app:create_served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=access_log,
        # X-Forwarded-For names the client only when a proxy we trust sent it; uvicorn's own
        # default trusts any local peer (and FORWARDED_ALLOW_IPS), which the throttle on admin
        # tokens would then count against whatever address a caller made up.
        proxy_headers=bool(configured.trusted_proxies),
        forwarded_allow_ips=configured.trusted_proxies,
        # A worker busy with a burst of requests may answer the supervisor's ping late; it is
        # not dead, and restarting it would drop the requests it holds.
        timeout_worker_healthcheck=30,
    )


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


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the migrations (safe to run again)."""
    from billplane.migrate import upgrade

    configured = settings()
    try:
        upgrade(configured.sqlalchemy_url, revision)
    except DBAPIError as exc:
        fail(database_error(configured, exc))
    typer.echo(f"database at {redacted(configured.database_url)} is at {revision}")


def main() -> None:  # pragma: no cover - the console script calls `app`
    app(prog_name="billplane")
    sys.exit(0)
