"""The `billplane` command: serve, migrate, and administer the same database as the server."""

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session

from billplane.cli.stripe import events_app, stripe_app
from billplane.clock import utc_now
from billplane.db import CONNECTIONS_PER_WORKER, Database
from billplane.errors import BillplaneError
from billplane.plans import prices
from billplane.plans import repository as plan_rows
from billplane.plans import service as plans
from billplane.plans.schemas import PlanIn
from billplane.projects import repository as project_rows
from billplane.projects import service as projects
from billplane.projects.schemas import FeatureIn, ProjectIn
from billplane.settings import Settings, SettingsError, load_settings
from billplane.stripe.gateway import StripeGateway
from billplane.tenants import repository as tenant_rows
from billplane.tenants import service as tenants
from billplane.tenants.schemas import TenantIn
from billplane.tokens import service as tokens
from billplane.tokens.schemas import TokenIn

app = typer.Typer(help="billplane: a billing control plane between Stripe and your apps.")
db_app = typer.Typer(help="The database schema.")
project_app = typer.Typer(help="Projects (one per product).")
feature_app = typer.Typer(help="Features a plan can unlock.")
plan_app = typer.Typer(help="Plans: a Stripe price mapped to features and limits.")
tenant_app = typer.Typer(help="Tenants: one per client or copied app.")
token_app = typer.Typer(help="API tokens for client apps.")
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

ACTOR = "cli"
BAD_DATABASE_URL = "billplane cannot start: DATABASE_URL is not a valid database URL."

Schema = TypeVar("Schema", bound=BaseModel)


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def _settings() -> Settings:
    try:
        settings = load_settings()
        make_url(settings.sqlalchemy_url)  # e.g. a port that is not a number
    except SettingsError as exc:
        _fail(str(exc), 2)
    except (ArgumentError, ValueError):
        # Not the parser's message: it may quote the URL, password included.
        _fail(BAD_DATABASE_URL, 2)
    return settings


def _valid(schema: type[Schema], **fields: Any) -> Schema:
    """The input checked by the admin API's own schema: the CLI refuses what the API refuses."""
    try:
        return schema.model_validate(fields)
    except ValidationError as exc:
        # The deepest error is the telling one: for `pub=5/weekly` the grant's `reset`, not the
        # union's other branch ("should be a valid boolean").
        worst = max(exc.errors(), key=lambda e: len(e["loc"]))
        param = ".".join(str(p) for p in worst["loc"])
        _fail(f"error (validation_error): {param}: {worst['msg']}", 2)


@contextmanager
def _transaction() -> Iterator[Session]:
    """One write transaction on the configured database; expected failures become one line."""
    settings = _settings()
    try:
        db = Database(settings.sqlalchemy_url)
    except ArgumentError:
        _fail(BAD_DATABASE_URL, 2)
    try:
        with db.session_scope(write=True) as session:
            yield session
    except BillplaneError as exc:
        _fail(f"error ({exc.code}): {exc.message}")
    except DBAPIError as exc:
        _fail(_database_error(settings, exc))
    finally:
        db.dispose()


def _database_error(settings: Settings, exc: DBAPIError) -> str:
    """One line for a database that is unreachable or refuses: the driver's first line says why."""
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
    return f"error (database): {_redacted(settings.database_url)}: {reason}"


def _print(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        typer.echo("(none)")
        return
    widths = {c: max(len(c), *(len(str(r.get(c) or "")) for r in rows)) for c in columns}
    typer.echo("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for row in rows:
        typer.echo("  ".join(str(row.get(c) or "").ljust(widths[c]) for c in columns))


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

    settings = _settings()  # fail with one sentence here, not a traceback in every worker
    for line in _banner(settings, host, port):
        typer.echo(line)
    uvicorn.run(
        "billplane.app:create_served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=access_log,
        proxy_headers=True,
        # A worker busy with a burst of requests may answer the supervisor's ping late; it is
        # not dead, and restarting it would drop the requests it holds.
        timeout_worker_healthcheck=30,
    )


def _banner(settings: Settings, host: str, port: int) -> list[str]:
    """Where to go once the server is up, before uvicorn's own lines."""
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 -- a comparison
    base = f"http://{local}:{port}"
    login = (
        "log in with BILLPLANE_ADMIN_TOKEN (`make run` keeps it in .env)"
        if settings.billplane_admin_token
        else "BILLPLANE_ADMIN_TOKEN is not set: the dashboard and the admin API are off"
    )
    return [f"billplane: dashboard {base}/ ({login})", f"billplane: API docs {base}/docs"]


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the migrations (safe to run again)."""
    from billplane.migrate import upgrade

    settings = _settings()
    try:
        upgrade(settings.sqlalchemy_url, revision)
    except DBAPIError as exc:
        _fail(_database_error(settings, exc))
    typer.echo(f"database at {_redacted(settings.database_url)} is at {revision}")


def _redacted(url: str) -> str:
    # A database URL can carry a password; show only where it points.
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}"


@project_app.command("create")
def project_create(
    key: str,
    name: Annotated[str | None, typer.Option(help="Display name (default: the key)")] = None,
    origin: Annotated[list[str] | None, typer.Option(help="An allowed base URL; repeat.")] = None,
) -> None:
    """Create a project and print its first token (shown only this once)."""
    body = _valid(ProjectIn, key=key, name=name or key, origins=origin or [])
    with _transaction() as session:
        created = projects.create_project(
            session,
            key=body.key,
            name=body.name,
            origins=body.origin_strings(),
            actor=ACTOR,
            now=utc_now(),
        )
        _print(
            {"key": key, "token_id": created.token.token.public_id, "token": created.token.secret}
        )


@project_app.command("list")
def project_list() -> None:
    with _transaction() as session:
        page = project_rows.list_projects(session, limit=1000, starting_after=None)
        _table(
            [{"key": p.key, "name": p.name, "origins": " ".join(p.origins)} for p in page.data],
            ["key", "name", "origins"],
        )


@feature_app.command("create")
def feature_create(
    project: str,
    key: str,
    type: Annotated[str, typer.Option(help="boolean, limit or metered")] = "boolean",
    name: str | None = None,
    unit: str | None = None,
) -> None:
    body = _valid(FeatureIn, key=key, name=name or key, type=type, unit=unit)
    with _transaction() as session:
        found = projects.get_project(session, project)
        projects.create_feature(
            session,
            found,
            key=body.key,
            name=body.name,
            type=body.type,
            unit=body.unit,
            actor=ACTOR,
            now=utc_now(),
        )
        typer.echo(f"feature {project}/{key} ({type}) created")


def parse_grant(text: str) -> tuple[str, bool | dict[str, object]]:
    """One `--feature` as the raw grant `PlanIn` then validates."""
    """`exports` → on; `exports=off` → off; `listings.publish=100/month` → a limit."""
    key, sep, value = text.partition("=")
    if not sep or value in ("on", "true"):
        return key, True
    if value in ("off", "false"):
        return key, False
    limit, _, reset = value.partition("/")
    if not limit.isdigit():
        _fail(
            f"error (validation_error): --feature '{text}': use {FEATURE_SPEC}",
            2,
        )
    return key, {"limit": int(limit), "reset": reset or "month"}


# What --feature takes (no square brackets: help text is Rich markup, where they are tags).
FEATURE_SPEC = "KEY, KEY=off, KEY=LIMIT or KEY=LIMIT/RESET (e.g. listings.publish=100/month)"


@plan_app.command("create")
def plan_create(
    project: str,
    key: str,
    name: str | None = None,
    price: Annotated[str | None, typer.Option(help="The Stripe price id")] = None,
    default: Annotated[bool, typer.Option("--default", help="The free default plan")] = False,
    trial_days: int = 0,
    feature: Annotated[list[str] | None, typer.Option(help=f"{FEATURE_SPEC}; repeat.")] = None,
) -> None:
    body = _valid(
        PlanIn,
        key=key,
        name=name or key,
        stripe_price_id=price,
        trial_days=trial_days,
        is_default=default,
        features=dict(parse_grant(f) for f in feature or []),
    )
    # What Stripe says of the price, asked before the transaction opens (as the API does).
    stripe = StripeGateway.from_settings(_settings())
    lookup = prices.look_up(stripe, price, utc_now()) if price else None
    with _transaction() as session:
        found = projects.get_project(session, project)
        plan = plans.create_plan(
            session,
            found,
            body,
            actor=ACTOR,
            now=utc_now(),
            price_lookup=lookup,
            stripe_mode=stripe.mode,
        )
        _print(plans.describe(session, found, plan))


@plan_app.command("list")
def plan_list(project: str) -> None:
    with _transaction() as session:
        found = projects.get_project(session, project)
        rows = plan_rows.list_plans(session, found.id, limit=1000, starting_after=None).data
        _table(
            [
                {
                    **plans.describe(session, found, p),
                    "features": _grants_text(plans.describe(session, found, p)["features"]),
                }
                for p in rows
            ],
            ["key", "name", "stripe_price_id", "status", "is_default", "features"],
        )


def _grants_text(grants: dict[str, Any]) -> str:
    return ", ".join(
        k if v is True else f"{k}=off" if v is False else f"{k}={v['limit']}/{v['reset']}"
        for k, v in grants.items()
    )


@tenant_app.command("create")
def tenant_create(
    project: str, key: str, name: str | None = None, email: str | None = None
) -> None:
    body = _valid(TenantIn, key=key, name=name, email=email)
    with _transaction() as session:
        found = projects.get_project(session, project)
        tenants.create_tenant(
            session,
            found,
            key=body.key,
            name=body.name,
            email=body.email,
            actor=ACTOR,
            now=utc_now(),
        )
        typer.echo(f"tenant {project}/{key} created")


@tenant_app.command("list")
def tenant_list(project: str) -> None:
    with _transaction() as session:
        found = projects.get_project(session, project)
        rows = tenant_rows.list_tenants(session, found.id, limit=1000, starting_after=None).data
        _table(
            [
                {
                    "key": t.key,
                    "name": t.name,
                    "email": t.email,
                    "stripe_customer_id": t.stripe_customer_id,
                }
                for t in rows
            ],
            ["key", "name", "email", "stripe_customer_id"],
        )


@token_app.command("create")
def token_create(
    project: str,
    name: str = "cli",
    tenant: Annotated[str | None, typer.Option(help="Scope the token to this tenant")] = None,
) -> None:
    """Issue a token and print it (shown only this once)."""
    body = _valid(TokenIn, name=name, tenant=tenant)
    with _transaction() as session:
        found = projects.get_project(session, project)
        scoped = tenants.get_tenant(session, found, body.tenant) if body.tenant else None
        issued = tokens.issue_token(
            session, project=found, name=body.name, tenant=scoped, actor=ACTOR, now=utc_now()
        )
        _print(
            {"id": issued.token.public_id, "prefix": issued.token.prefix, "token": issued.secret}
        )


@token_app.command("rotate")
def token_rotate(token_id: str) -> None:
    """Replace a token's secret; the old one stops working at once."""
    with _transaction() as session:
        issued = tokens.rotate_token(session, token_id, actor=ACTOR, now=utc_now())
        _print(
            {"id": issued.token.public_id, "prefix": issued.token.prefix, "token": issued.secret}
        )


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    with _transaction() as session:
        tokens.revoke_token(session, token_id, actor=ACTOR, now=utc_now())
        typer.echo(f"token {token_id} revoked")


def main() -> None:  # pragma: no cover - the console script calls `app`
    app(prog_name="billplane")
    sys.exit(0)
