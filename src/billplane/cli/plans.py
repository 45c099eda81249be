"""`billplane plan …`: what the admin API does to plans, through the same services and answering
the same model (`PlanOut`). Stripe is asked about the price before a transaction opens."""

from functools import partial
from typing import Annotated, Any

import typer

from billplane.cli.edge import ACTOR, every, fail, given, one_of, settings, transaction, valid
from billplane.cli.output import (
    AsJson,
    DryRun,
    Fields,
    grants_text,
    price_text,
    show,
    show_list,
    show_preview,
)
from billplane.clock import utc_now
from billplane.entitlements import preview
from billplane.entitlements.schemas import PreviewOut
from billplane.plans import prices, repository, service, versions
from billplane.plans.schemas import (
    MigrateIn,
    MigrateMode,
    MigrationOut,
    PlanIn,
    PlanOut,
    PlanPatch,
    PlanVersionOut,
)
from billplane.projects.service import get_project
from billplane.schemas import Status
from billplane.stripe.gateway import StripeGateway

plan_app = typer.Typer(help="Plans: a Stripe price mapped to features and limits.")

# What --feature takes (no square brackets: help text is Rich markup, where they are tags).
FEATURE_SPEC = "KEY, KEY=off, KEY=LIMIT or KEY=LIMIT/RESET (e.g. listings.publish=100/month)"


def parse_grant(text: str) -> tuple[str, bool | dict[str, object]]:
    """One `--feature` (or `--override`) as the raw grant `PlanIn` then validates:
    `exports` → on; `exports=off` → off; `listings.publish=100/month` → a limit."""
    key, sep, value = text.partition("=")
    if not sep or value in ("on", "true"):
        return key, True
    if value in ("off", "false"):
        return key, False
    limit, _, reset = value.partition("/")
    if not limit.isdigit():
        fail(f"error (validation_error): '{text}': use {FEATURE_SPEC}", 2)
    return key, {"limit": int(limit), "reset": reset or "month"}


def grants(specs: list[str]) -> dict[str, Any]:
    return dict(parse_grant(spec) for spec in specs)


def plan_fields(out: PlanOut) -> Fields:
    return {
        **out.model_dump(exclude={"features", "stripe"}),
        "features": grants_text(out.features),
        "stripe": price_text(out.stripe),
    }


@plan_app.command("create")
def plan_create(
    project: str,
    key: str,
    name: str | None = None,
    price: Annotated[str | None, typer.Option(help="The Stripe price id")] = None,
    default: Annotated[bool, typer.Option("--default", help="The free default plan")] = False,
    trial_days: int = 0,
    feature: Annotated[list[str] | None, typer.Option(help=f"{FEATURE_SPEC}; repeat.")] = None,
    as_json: AsJson = False,
) -> None:
    """Add a plan; with --price, Stripe is asked what it says of the price."""
    body = valid(
        PlanIn,
        key=key,
        name=name or key,
        stripe_price_id=price,
        trial_days=trial_days,
        is_default=default,
        features=grants(feature or []),
    )
    stripe = StripeGateway.from_settings(settings())
    lookup = prices.look_up(stripe, price, utc_now()) if price else None
    with transaction() as session:
        found = get_project(session, project)
        plan = service.create_plan(
            session,
            found,
            body,
            actor=ACTOR,
            now=utc_now(),
            grace_days=settings().billplane_past_due_grace_days,
            price_lookup=lookup,
            stripe_mode=stripe.mode,
        )
        out = PlanOut.model_validate(service.describe(session, found, plan))
    show(out, as_json, plan_fields)


@plan_app.command("list")
def plan_list(project: str, as_json: AsJson = False) -> None:
    """A project's plans, archived ones included."""
    with transaction(write=False) as session:
        found = get_project(session, project)
        rows = every(partial(repository.list_plans, session, found.id), lambda p: p.key)
        outs = [PlanOut.model_validate(service.describe(session, found, p)) for p in rows]
    columns = ["key", "name", "stripe_price_id", "status", "is_default", "version", "features"]
    show_list(outs, as_json, plan_fields, columns)


@plan_app.command("show")
def plan_show(project: str, key: str, as_json: AsJson = False) -> None:
    """One plan, with its grants and what Stripe last said of its price."""
    with transaction(write=False) as session:
        found = get_project(session, project)
        out = PlanOut.model_validate(
            service.describe(session, found, service.get_plan(session, found, key))
        )
    show(out, as_json, plan_fields)


@plan_app.command("update")
def plan_update(
    project: str,
    key: str,
    name: Annotated[str | None, typer.Option(help="A new display name")] = None,
    price: Annotated[str | None, typer.Option(help="A new Stripe price id")] = None,
    no_price: Annotated[
        bool, typer.Option("--no-price", help="No Stripe price: only for the default plan.")
    ] = False,
    default: Annotated[
        bool | None, typer.Option("--default/--no-default", help="Make it the free default plan")
    ] = None,
    trial_days: int | None = None,
    feature: Annotated[
        list[str] | None,
        typer.Option(help=f"{FEATURE_SPEC}; repeat. Replaces all the plan's grants."),
    ] = None,
    no_features: Annotated[
        bool, typer.Option("--no-features", help="Remove all the plan's grants.")
    ] = False,
    migrate_all: Annotated[
        bool,
        typer.Option(
            "--migrate-all",
            help="Move every tenant on an older version to the new one too (without it, "
            "tenants who subscribed keep theirs).",
        ),
    ] = False,
    dry_run: DryRun = False,
    as_json: AsJson = False,
) -> None:
    """Change a plan; what is not given is kept. Stripe is asked about the price again,
    even when nothing else changes. A change of grants, price or trial days makes a new
    version. `--dry-run` shows what it would do to each tenant."""
    one_of(**{"--price": price is not None, "--no-price": no_price})
    one_of(**{"--feature": bool(feature), "--no-features": no_features})
    changes = given(
        name=name,
        stripe_price_id=price,
        is_default=default,
        trial_days=trial_days,
        features={} if no_features else grants(feature) if feature else None,
    )
    if no_price:
        changes["stripe_price_id"] = None  # given as none: cleared, as in the PATCH body
    migrate: MigrateMode = "all" if migrate_all else "none"
    _update(project, key, valid(PlanPatch, **changes), as_json, dry_run=dry_run, migrate=migrate)


@plan_app.command("versions")
def plan_versions(project: str, key: str, as_json: AsJson = False) -> None:
    """A plan's versions, oldest first, with how many tenants each applies to now."""
    now = utc_now()
    with transaction(write=False) as session:
        found = get_project(session, project)
        plan = service.get_plan(session, found, key)
        grace = settings().billplane_past_due_grace_days
        rows = versions.versions(session, found, plan, now, grace)
        outs = [PlanVersionOut.model_validate(row) for row in rows]
    columns = ["version", "stripe_price_id", "trial_days", "tenants", "newest", "created_at"]
    show_list(outs, as_json, lambda out: out.model_dump(), columns)


@plan_app.command("migrate")
def plan_migrate(
    project: str,
    key: str,
    tenant: Annotated[
        list[str] | None, typer.Option(help="A tenant to move to the newest version; repeat.")
    ] = None,
    all_tenants: Annotated[
        bool, typer.Option("--all", help="Every tenant on an older version.")
    ] = False,
    dry_run: DryRun = False,
    as_json: AsJson = False,
) -> None:
    """Move tenants that keep an older version of a plan to its newest: one audited action;
    their apps are told. `--dry-run` shows what it would do to each tenant."""
    one_of(**{"--tenant": bool(tenant), "--all": all_tenants})
    if not tenant and not all_tenants:
        fail("error (usage): name the tenants to move (--tenant, repeated) or give --all.", 2)
    body = valid(MigrateIn, tenants="all" if all_tenants else tenant)
    now = utc_now()
    with transaction() as session:
        found = get_project(session, project)
        grace = settings().billplane_past_due_grace_days
        move = partial(
            versions.migrate_tenants,
            session,
            found,
            service.get_plan(session, found, key),
            body.tenants,
            actor=ACTOR,
            now=now,
            grace_days=grace,
        )
        if dry_run:
            seen = PreviewOut.model_validate(preview.of_change(session, found, now, grace, move))
            show_preview(seen, as_json)
            return
        out = MigrationOut.model_validate(move())
    show(out, as_json, _migration_fields)


def _migration_fields(out: MigrationOut) -> Fields:
    moved = [f"{m.tenant} (from {m.from_version})" for m in out.migrated]
    return {"plan": out.plan, "version": out.version, "migrated": moved}


@plan_app.command("archive")
def plan_archive(project: str, key: str, dry_run: DryRun = False, as_json: AsJson = False) -> None:
    """Stop selling a plan: checkout refuses it. The default plan cannot be archived."""
    _update(project, key, valid(PlanPatch, status="archived"), as_json, dry_run=dry_run)


@plan_app.command("restore")
def plan_restore(project: str, key: str, as_json: AsJson = False) -> None:
    """Sell an archived plan again."""
    _set_status(project, key, "active", as_json)


def _set_status(project: str, key: str, status: Status, as_json: bool) -> None:
    _update(project, key, valid(PlanPatch, status=status), as_json)


def _update(
    project: str,
    key: str,
    body: PlanPatch,
    as_json: bool,
    *,
    dry_run: bool = False,
    migrate: MigrateMode = "none",
) -> None:
    """`PATCH /admin/api/projects/{project}/plans/{key}` with this body (`?dry_run=true`,
    `?migrate=`)."""
    changes = service.changes_from(body)
    with transaction(write=False) as session:
        found = get_project(session, project)
        price = service.price_after(service.get_plan(session, found, key), changes)
    stripe = StripeGateway.from_settings(settings())
    lookup = prices.look_up(stripe, price, utc_now()) if price else None
    now = utc_now()
    with transaction() as session:
        found = get_project(session, project)
        update = partial(
            versions.edit_plan,
            session,
            found,
            key,
            changes,
            migrate=migrate,
            actor=ACTOR,
            now=now,
            grace_days=settings().billplane_past_due_grace_days,
            price_lookup=lookup,
            stripe_mode=stripe.mode,
        )
        if dry_run:
            grace = settings().billplane_past_due_grace_days
            seen = PreviewOut.model_validate(preview.of_change(session, found, now, grace, update))
            show_preview(seen, as_json)
            return
        out = PlanOut.model_validate(service.describe(session, found, update()))
    show(out, as_json, plan_fields)
