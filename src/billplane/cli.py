"""The `billplane` command: serve, migrate, and administer the same database as the server."""

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from sqlalchemy.orm import Session

from billplane.clock import utc_now
from billplane.db import Database
from billplane.errors import BillplaneError
from billplane.plans import repository as plan_rows
from billplane.plans import service as plans
from billplane.projects import repository as project_rows
from billplane.projects import service as projects
from billplane.settings import Settings, SettingsError, load_settings
from billplane.tenants import repository as tenant_rows
from billplane.tenants import service as tenants
from billplane.tokens import service as tokens

app = typer.Typer(help="billplane: a billing control plane between Stripe and your apps.")
db_app = typer.Typer(help="The database schema.")
project_app = typer.Typer(help="Projects (one per product).")
feature_app = typer.Typer(help="Features a plan can unlock.")
plan_app = typer.Typer(help="Plans: a Stripe price mapped to features and limits.")
tenant_app = typer.Typer(help="Tenants: one per client or copied app.")
token_app = typer.Typer(help="API tokens for client apps.")
for sub, name in [
    (db_app, "db"), (project_app, "project"), (feature_app, "feature"), (plan_app, "plan"),
    (tenant_app, "tenant"), (token_app, "token"),
]:
    app.add_typer(sub, name=name)

ACTOR = "cli"


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@contextmanager
def _transaction() -> Iterator[Session]:
    """One write transaction on the configured database; domain errors become one line."""
    db = Database(_settings().sqlalchemy_url)
    try:
        with db.session_scope(write=True) as session:
            yield session
    except BillplaneError as exc:
        typer.echo(f"error ({exc.code}): {exc.message}", err=True)
        raise typer.Exit(1) from None
    finally:
        db.dispose()


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
    workers: Annotated[int, typer.Option(min=1, max=64)] = 1,
) -> None:
    """Serve the API (and dashboard) with uvicorn."""
    import uvicorn

    _settings()  # fail with one sentence here, not a traceback in every worker
    uvicorn.run(
        "billplane.app:create_app", factory=True, host=host, port=port, workers=workers,
        log_level="info", proxy_headers=True,
    )


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the migrations (safe to run again)."""
    from billplane.migrate import upgrade

    settings = _settings()
    upgrade(settings.sqlalchemy_url, revision)
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
    with _transaction() as session:
        created = projects.create_project(
            session, key=key, name=name or key, origins=[o.rstrip("/") for o in origin or []],
            actor=ACTOR, now=utc_now(),
        )
        _print({"key": key, "token_id": created.token.token.public_id, "token": created.token.secret})


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
    if type not in ("boolean", "limit", "metered"):
        typer.echo("error: --type must be boolean, limit or metered", err=True)
        raise typer.Exit(1)
    with _transaction() as session:
        found = projects.get_project(session, project)
        projects.create_feature(
            session, found, key=key, name=name or key, type=type, unit=unit, actor=ACTOR,
            now=utc_now(),
        )
        typer.echo(f"feature {project}/{key} ({type}) created")


def parse_grant(text: str) -> tuple[str, plans.GrantSpec]:
    """`exports` → on; `exports=off` → off; `listings.publish=100/month` → a limit."""
    key, sep, value = text.partition("=")
    if not sep or value in ("on", "true"):
        return key, True
    if value in ("off", "false"):
        return key, False
    limit, _, reset = value.partition("/")
    if not limit.isdigit():
        raise typer.BadParameter(f"'{text}': use KEY, KEY=off or KEY=LIMIT[/RESET]")
    return key, {"limit": int(limit), "reset": reset or "month"}


@plan_app.command("create")
def plan_create(
    project: str,
    key: str,
    name: str | None = None,
    price: Annotated[str | None, typer.Option(help="The Stripe price id")] = None,
    default: Annotated[bool, typer.Option("--default", help="The free default plan")] = False,
    trial_days: int = 0,
    feature: Annotated[
        list[str] | None, typer.Option(help="KEY, KEY=off or KEY=LIMIT[/RESET]; repeat.")
    ] = None,
) -> None:
    grants = dict(parse_grant(f) for f in feature or [])
    with _transaction() as session:
        found = projects.get_project(session, project)
        plan = plans.create_plan(
            session, found, key=key, name=name or key, stripe_price_id=price,
            trial_days=trial_days, is_default=default, features=grants, actor=ACTOR, now=utc_now(),
        )
        _print(plans.describe(session, found, plan))


@plan_app.command("list")
def plan_list(project: str) -> None:
    with _transaction() as session:
        found = projects.get_project(session, project)
        rows = plan_rows.list_plans(session, found.id, limit=1000, starting_after=None).data
        _table(
            [
                {**plans.describe(session, found, p), "features": _grants_text(
                    plans.describe(session, found, p)["features"])}
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
def tenant_create(project: str, key: str, name: str | None = None, email: str | None = None) -> None:
    with _transaction() as session:
        found = projects.get_project(session, project)
        tenants.create_tenant(
            session, found, key=key, name=name, email=email, actor=ACTOR, now=utc_now()
        )
        typer.echo(f"tenant {project}/{key} created")


@tenant_app.command("list")
def tenant_list(project: str) -> None:
    with _transaction() as session:
        found = projects.get_project(session, project)
        rows = tenant_rows.list_tenants(session, found.id, limit=1000, starting_after=None).data
        _table(
            [{"key": t.key, "name": t.name, "email": t.email,
              "stripe_customer_id": t.stripe_customer_id} for t in rows],
            ["key", "name", "email", "stripe_customer_id"],
        )


@token_app.command("create")
def token_create(
    project: str,
    name: str = "cli",
    tenant: Annotated[str | None, typer.Option(help="Scope the token to this tenant")] = None,
) -> None:
    """Issue a token and print it (shown only this once)."""
    with _transaction() as session:
        found = projects.get_project(session, project)
        scoped = tenants.get_tenant(session, found, tenant) if tenant else None
        issued = tokens.issue_token(
            session, project=found, name=name, tenant=scoped, actor=ACTOR, now=utc_now()
        )
        _print({"id": issued.token.public_id, "prefix": issued.token.prefix, "token": issued.secret})


@token_app.command("rotate")
def token_rotate(token_id: str) -> None:
    """Replace a token's secret; the old one stops working at once."""
    with _transaction() as session:
        issued = tokens.rotate_token(session, token_id, actor=ACTOR, now=utc_now())
        _print({"id": issued.token.public_id, "prefix": issued.token.prefix, "token": issued.secret})


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    with _transaction() as session:
        tokens.revoke_token(session, token_id, actor=ACTOR, now=utc_now())
        typer.echo(f"token {token_id} revoked")


def main() -> None:  # pragma: no cover - the console script calls `app`
    app(prog_name="billplane")
    sys.exit(0)
