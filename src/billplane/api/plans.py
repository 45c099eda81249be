"""Admin HTTP for plans."""

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query

from billplane.entitlements import preview
from billplane.entitlements.schemas import PreviewOut
from billplane.http import Admin, CurrentSettings, DryRun, Now, Stripe, Tx, errors
from billplane.paging import ListOut
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
from billplane.schemas import Key, PageLimit

router = APIRouter(prefix="/admin/api/projects/{project}/plans", tags=["admin"])


@router.post(
    "",
    response_model=PlanOut,
    status_code=201,
    responses=errors(
        (409, "A plan with this key or Stripe price already exists (`already_exists`).")
    ),
)
def create_plan(
    project: Key,
    body: PlanIn,
    actor: Admin,
    tx: Tx,
    now: Now,
    stripe: Stripe,
    settings: CurrentSettings,
) -> Any:
    """Saved whatever Stripe says; `stripe` tells what it said of the price (or why it
    could not be asked)."""
    # Stripe is asked before the transaction opens: a slow Stripe must not hold locks.
    lookup = prices.look_up(stripe, body.stripe_price_id, now) if body.stripe_price_id else None
    with tx.write() as session:
        found = get_project(session, project)
        plan = service.create_plan(
            session,
            found,
            body,
            actor=actor,
            now=now,
            grace_days=settings.billplane_past_due_grace_days,
            price_lookup=lookup,
            stripe_mode=stripe.mode,
        )
        return service.describe(session, found, plan)


@router.get("", response_model=ListOut[PlanOut])
def list_plans(
    project: Key,
    _: Admin,
    tx: Tx,
    limit: PageLimit = 100,
    starting_after: Key | None = None,
) -> Any:
    with tx.read() as session:
        found = get_project(session, project)
        page = repository.list_plans(session, found.id, limit=limit, starting_after=starting_after)
        return {
            "data": [service.describe(session, found, p) for p in page.data],
            "has_more": page.has_more,
        }


@router.get("/{plan}", response_model=PlanOut)
def get_plan(project: Key, plan: Key, _: Admin, tx: Tx) -> Any:
    with tx.read() as session:
        found = get_project(session, project)
        return service.describe(session, found, service.get_plan(session, found, plan))


@router.patch(
    "/{plan}",
    response_model=PlanOut | PreviewOut,
    responses=errors(
        (409, "Another plan of the project has this Stripe price (`already_exists`).")
    ),
)
def update_plan(
    project: Key,
    plan: Key,
    body: PlanPatch,
    actor: Admin,
    tx: Tx,
    now: Now,
    stripe: Stripe,
    settings: CurrentSettings,
    dry_run: DryRun = False,
    migrate: Annotated[
        MigrateMode,
        Query(
            description="`none`: an edit of what the plan grants (grants, price, trial days) "
            "makes a new version for new subscribers, and tenants who subscribed keep theirs; "
            "`all`: they are moved to it too, in the same transaction."
        ),
    ] = "none",
) -> Any:
    """Any edit looks the plan's price up in Stripe again. With `dry_run`, nothing changes: the
    answer says, per tenant, what the edit would do (features gained and lost, limits raised
    and lowered, usage already over a new limit, tenants left with no plan)."""
    changes = service.changes_from(body)
    with tx.read() as session:
        found = get_project(session, project)
        price = service.price_after(service.get_plan(session, found, plan), changes)
    lookup = prices.look_up(stripe, price, now) if price else None
    with tx.write() as session:
        found = get_project(session, project)
        grace = settings.billplane_past_due_grace_days
        update = partial(
            versions.edit_plan,
            session,
            found,
            plan,
            changes,
            migrate=migrate,
            actor=actor,
            now=now,
            grace_days=grace,
            price_lookup=lookup,
            stripe_mode=stripe.mode,
        )
        if dry_run:
            return preview.of_change(session, found, now, grace, update)
        return service.describe(session, found, update())


@router.get("/{plan}/versions", response_model=ListOut[PlanVersionOut])
def list_versions(
    project: Key, plan: Key, _: Admin, tx: Tx, now: Now, settings: CurrentSettings
) -> Any:
    """Every version of the plan, oldest first, with how many tenants it applies to now."""
    with tx.read() as session:
        found = get_project(session, project)
        chosen = service.get_plan(session, found, plan)
        grace = settings.billplane_past_due_grace_days
        return {"data": versions.versions(session, found, chosen, now, grace), "has_more": False}


@router.post(
    "/{plan}/migrate",
    response_model=MigrationOut | PreviewOut,
    responses=errors(
        (404, "No such plan, or a named tenant does not exist (`tenant_not_found`)."),
        (400, "A named tenant never subscribed to the plan (`invalid_request`)."),
    ),
)
def migrate_tenants(
    project: Key,
    plan: Key,
    body: MigrateIn,
    actor: Admin,
    tx: Tx,
    now: Now,
    settings: CurrentSettings,
    dry_run: DryRun = False,
) -> Any:
    """Move tenants that keep an older version of the plan to its newest: one audited action;
    their apps hear `tenant.entitlements.updated` when what they may do changed. With
    `dry_run`, nothing changes: the answer says what the move would do to each tenant."""
    with tx.write() as session:
        found = get_project(session, project)
        grace = settings.billplane_past_due_grace_days
        move = partial(
            versions.migrate_tenants,
            session,
            found,
            service.get_plan(session, found, plan),
            body.tenants,
            actor=actor,
            now=now,
            grace_days=grace,
        )
        if dry_run:
            return preview.of_change(session, found, now, grace, move)
        return move()
