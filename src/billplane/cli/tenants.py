"""`billplane tenant …`: what the admin API does to tenants, through the same services and
answering the same models (`TenantOut`, `TenantDetailOut`)."""

from functools import partial
from typing import Annotated, Any

import typer

from billplane.cli.edge import ACTOR, every, fail, given, one_of, settings, transaction, valid
from billplane.cli.output import (
    AsJson,
    DryRun,
    Fields,
    cell,
    grants_text,
    record,
    show,
    show_list,
    show_preview,
    table,
)
from billplane.cli.plans import FEATURE_SPEC, grants
from billplane.clock import utc_now
from billplane.entitlements import preview
from billplane.entitlements.schemas import PreviewOut
from billplane.projects.service import get_project
from billplane.schemas import Status
from billplane.tenants import repository, service
from billplane.tenants.schemas import TenantDetailOut, TenantIn, TenantOut, TenantPatch

tenant_app = typer.Typer(help="Tenants: one per client or copied app.")


def tenant_fields(out: TenantOut) -> Fields:
    return {
        "key": out.key,
        "name": out.name,
        "email": out.email,
        "stripe_customer_id": out.stripe_customer_id,
        "overrides": grants_text(out.overrides),
        "status": out.status,
        "created_at": out.created_at,
    }


@tenant_app.command("create")
def tenant_create(
    project: str,
    key: str,
    name: str | None = None,
    email: str | None = None,
    as_json: AsJson = False,
) -> None:
    """Add a tenant (it has the default plan until it subscribes)."""
    body = valid(TenantIn, key=key, name=name, email=email)
    with transaction() as session:
        found = get_project(session, project)
        tenant = service.create_tenant(
            session,
            found,
            key=body.key,
            name=body.name,
            email=body.email,
            actor=ACTOR,
            now=utc_now(),
        )
        out = TenantOut.model_validate(service.describe(session, found, tenant))
    show(out, as_json, tenant_fields)


@tenant_app.command("list")
def tenant_list(project: str, as_json: AsJson = False) -> None:
    """A project's tenants, archived ones included."""
    with transaction(write=False) as session:
        found = get_project(session, project)
        rows = every(partial(repository.list_tenants, session, found.id), lambda t: t.key)
        outs = [TenantOut.model_validate(service.describe(session, found, t)) for t in rows]
    columns = ["key", "name", "email", "stripe_customer_id", "status"]
    show_list(outs, as_json, tenant_fields, columns)


@tenant_app.command("show")
def tenant_show(project: str, key: str, as_json: AsJson = False) -> None:
    """One tenant: its plan, subscription, what it may do now and its recent usage."""
    grace_days = settings().billplane_past_due_grace_days
    with transaction(write=False) as session:
        found = get_project(session, project)
        tenant = service.get_tenant(session, found, key)
        out = TenantDetailOut.model_validate(
            service.detail(session, found, tenant, utc_now(), grace_days)
        )
    if as_json:
        typer.echo(out.model_dump_json(indent=2))
        return
    record({**tenant_fields(out), "plan": out.plan, "subscription": _subscription(out)})
    typer.echo("\nEntitlements:")
    columns = ["feature", "allowed", "reason", "limit", "used", "remaining", "resets_at"]
    table(out.entitlements, columns)
    typer.echo("\nRecent usage:")
    table(out.recent_usage, ["occurred_at", "feature", "quantity", "idempotency_key"])


def _subscription(out: TenantDetailOut) -> str | None:
    sub: dict[str, Any] | None = out.subscription
    if sub is None:
        return None
    text = (
        f"{sub['status']} ({sub['stripe_subscription_id']}), price {cell(sub['stripe_price_id'])}"
    )
    text += f", period ends {cell(sub['current_period_end'])}"
    if sub["cancel_at_period_end"]:
        text += ", cancels then"
    if sub["trial_end"] is not None:
        text += f", trial ends {cell(sub['trial_end'])}"
    return text


@tenant_app.command("update")
def tenant_update(
    project: str,
    key: str,
    name: Annotated[str | None, typer.Option(help="A new name")] = None,
    email: Annotated[str | None, typer.Option(help="A new email")] = None,
    override: Annotated[
        list[str] | None,
        typer.Option(
            help=f"A grant that replaces the plan's for this tenant: {FEATURE_SPEC}; repeat. "
            "Replaces all the tenant's overrides."
        ),
    ] = None,
    no_overrides: Annotated[
        bool, typer.Option("--no-overrides", help="Remove all the tenant's overrides.")
    ] = False,
    dry_run: DryRun = False,
    as_json: AsJson = False,
) -> None:
    """Change a tenant's name, email or overrides; what is not given is kept. `--dry-run`
    shows what it would change in what the tenant may do."""
    one_of(**{"--override": bool(override), "--no-overrides": no_overrides})
    overrides = {} if no_overrides else grants(override) if override else None
    changes = given(name=name, email=email, overrides=overrides)
    if not changes:
        fail(
            "error (usage): nothing to change: give --name, --email, --override or --no-overrides.",
            2,
        )
    _update(project, key, valid(TenantPatch, **changes), as_json, dry_run=dry_run)


@tenant_app.command("archive")
def tenant_archive(project: str, key: str, as_json: AsJson = False) -> None:
    """Archive a tenant made by mistake (or gone): its subscription, usage and audit trail stay,
    and every check of it is refused (`tenant_archived`) until it is restored."""
    _set_status(project, key, "archived", as_json)


@tenant_app.command("restore")
def tenant_restore(project: str, key: str, as_json: AsJson = False) -> None:
    """Make an archived tenant checkable again, with everything it kept."""
    _set_status(project, key, "active", as_json)


def _set_status(project: str, key: str, status: Status, as_json: bool) -> None:
    _update(project, key, valid(TenantPatch, status=status), as_json)


def _update(
    project: str, key: str, body: TenantPatch, as_json: bool, *, dry_run: bool = False
) -> None:
    """`PATCH /admin/api/projects/{project}/tenants/{key}` with this body (`?dry_run=true`)."""
    now = utc_now()
    with transaction() as session:
        found = get_project(session, project)
        changes = service.changes_from(body)
        grace_days = settings().billplane_past_due_grace_days
        update = partial(
            service.update_tenant,
            session,
            found,
            key,
            changes,
            actor=ACTOR,
            now=now,
            grace_days=grace_days,
        )
        if dry_run:
            seen = PreviewOut.model_validate(
                preview.of_change(session, found, now, grace_days, update)
            )
            show_preview(seen, as_json)
            return
        out = TenantOut.model_validate(service.describe(session, found, update()))
    show(out, as_json, tenant_fields)
