"""Admin HTTP for plans."""

from functools import partial
from typing import Any

from fastapi import APIRouter

from billplane.entitlements import preview
from billplane.entitlements.schemas import PreviewOut
from billplane.http import Admin, CurrentSettings, DryRun, Now, Stripe, Tx, errors
from billplane.paging import ListOut
from billplane.plans import prices, repository, service
from billplane.plans.schemas import PlanIn, PlanOut, PlanPatch
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
        update = partial(
            service.update_plan,
            session,
            found,
            plan,
            changes,
            actor=actor,
            now=now,
            grace_days=settings.billplane_past_due_grace_days,
            price_lookup=lookup,
            stripe_mode=stripe.mode,
        )
        if dry_run:
            grace = settings.billplane_past_due_grace_days
            return preview.of_change(session, found, now, grace, update)
        return service.describe(session, found, update())
