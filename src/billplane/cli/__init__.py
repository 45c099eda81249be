"""The `billplane` command: serve, migrate, and administer the same database as the server."""

import sys

import typer
from sqlalchemy.exc import DBAPIError

from billplane.cli.credits import credits_app
from billplane.cli.demo import demo
from billplane.cli.edge import database_error, fail, redacted, settings
from billplane.cli.features import feature_app
from billplane.cli.keys import keys_app
from billplane.cli.plans import plan_app
from billplane.cli.projects import project_app
from billplane.cli.serve import serve
from billplane.cli.stripe import events_app, stripe_app
from billplane.cli.tenants import tenant_app
from billplane.cli.tokens import token_app
from billplane.cli.worker import worker
from billplane.logs import configure as configure_logging
from billplane.settings import SettingsError, load_settings

app = typer.Typer(help="billplane: a billing control plane between Stripe and your apps.")
db_app = typer.Typer(help="The database schema.")
for sub, name in [
    (db_app, "db"),
    (project_app, "project"),
    (feature_app, "feature"),
    (plan_app, "plan"),
    (tenant_app, "tenant"),
    (credits_app, "credits"),
    (token_app, "token"),
    (stripe_app, "stripe"),
    (events_app, "events"),
    (keys_app, "keys"),
]:
    app.add_typer(sub, name=name)
app.command()(demo)
app.command()(serve)
app.command()(worker)


@app.callback()
def _set_up_logging() -> None:
    # Before any command: its warnings (Stripe's trouble, say) take the server's format and mask;
    # `serve` then turns its own records on (INFO). Unreadable settings are the command's to
    # report, in its own words.
    try:
        json = load_settings().billplane_log_format == "json"
    except SettingsError:
        json = False
    configure_logging(json=json, level="WARNING")


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the migrations (safe to run again)."""
    from billplane.migrate import SecretKeyNeeded, upgrade

    configured = settings()
    try:
        upgrade(configured.sqlalchemy_url, revision, secret_key=configured.billplane_secret_key)
    except DBAPIError as exc:
        fail(database_error(configured, exc))
    except SecretKeyNeeded as exc:
        fail(f"billplane cannot migrate the database: {exc}")
    typer.echo(f"database at {redacted(configured.database_url)} is at {revision}")


def main() -> None:  # pragma: no cover - the console script calls `app`
    app(prog_name="billplane")
    sys.exit(0)
