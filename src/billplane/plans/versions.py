"""Plan versions: which tenants are on which, and moving tenants to the newest.

An edit of what a plan grants makes a new version (`service.update_plan`). Tenants who
subscribed keep the version they bought; an operator moves them on with `migrate_tenants`, for
chosen tenants or all, as one audited action that tells their apps what changed
(`tenant.entitlements.updated`) in the same transaction.
"""

from collections import Counter
from datetime import datetime
from typing import Literal, TypedDict

from sqlalchemy.orm import Session

from billplane.appwebhooks import outbox
from billplane.audit import service as audit
from billplane.entitlements import repository as entitlements
from billplane.entitlements import service as rules
from billplane.errors import InvalidInput, TenantNotFound
from billplane.hotpath import Sql
from billplane.models import Plan, Project
from billplane.plans import repository, service
from billplane.plans.prices import PriceLookup
from billplane.plans.schemas import MigrateMode

# Which tenants a migration moves: every tenant on an older version, or those named.
Chosen = Literal["all"] | list[str]


class VersionDescription(TypedDict):
    version: int
    stripe_price_id: str | None
    trial_days: int
    created_at: datetime
    tenants: int  # tenants whose entitlements come from this version now
    newest: bool


class Moved(TypedDict):
    tenant: str
    from_version: int


class Migration(TypedDict):
    plan: str
    version: int
    migrated: list[Moved]


def edit_plan(
    session: Session,
    project: Project,
    key: str,
    changes: service.PlanChanges,
    *,
    migrate: MigrateMode,
    actor: str,
    now: datetime,
    grace_days: int,
    price_lookup: PriceLookup | None = None,
    stripe_mode: str = "test",
) -> Plan:
    """`service.update_plan`, then, with `migrate="all"`, every tenant on an older version
    moved to the new one: one transaction, the edit and the move audited each."""
    plan = service.update_plan(
        session,
        project,
        key,
        changes,
        actor=actor,
        now=now,
        grace_days=grace_days,
        price_lookup=price_lookup,
        stripe_mode=stripe_mode,
    )
    if migrate == "all":
        migrate_tenants(session, project, plan, "all", actor=actor, now=now, grace_days=grace_days)
    return plan


def versions(
    session: Session, project: Project, plan: Plan, now: datetime, grace_days: int
) -> list[VersionDescription]:
    """Every version of the plan, oldest first, with how many tenants it applies to now."""
    on = tenants_per_version(session, project, plan, now, grace_days)
    return [
        {
            "version": v.version,
            "stripe_price_id": v.stripe_price_id,
            "trial_days": v.trial_days,
            "created_at": v.created_at,
            "tenants": on.get(v.version, 0),
            "newest": v.version == plan.version,
        }
        for v in repository.versions_of(session, plan.id)
    ]


def tenants_per_version(
    session: Session, project: Project, plan: Plan, now: datetime, grace_days: int
) -> Counter[int]:
    """Version -> how many tenants get their entitlements from it (by subscription, or as the
    default plan), read as the check reads them."""
    session.flush()
    sql = Sql(session.connection().connection.cursor(), session.get_bind().dialect)
    found_all = entitlements.by_project(
        sql, project_id=project.id, project_key=project.key, **rules.period_keys(now)
    )
    counts: Counter[int] = Counter()
    for found in found_all:
        chosen = rules.access_of(sql, found, now, grace_days).plan
        if chosen is not None and chosen.id == plan.id:
            counts[chosen.version] += 1
    return counts


def migrate_tenants(
    session: Session,
    project: Project,
    plan: Plan,
    chosen: Chosen,
    *,
    actor: str,
    now: datetime,
    grace_days: int,
) -> Migration:
    """Move the chosen tenants that keep an older version of `plan` to its newest version.

    A named tenant that does not exist is a 404, one that never subscribed to the plan a 400:
    then nobody is moved."""
    kept = repository.pinned(session, plan.id, None if chosen == "all" else chosen)
    if chosen != "all":
        _require_on_plan(session, project, plan, chosen, kept)
    moving = {key: kept[key] for key in sorted(kept) if kept[key][1] != plan.version}
    migration: Migration = {
        "plan": plan.key,
        "version": plan.version,
        "migrated": [{"tenant": key, "from_version": v} for key, (_, v) in moving.items()],
    }
    if not moving:
        return migration
    ids = [tenant_id for tenant_id, _ in moving.values()]
    with outbox.entitlements_change(
        session, project, now=now, grace_days=grace_days, tenant_ids=ids
    ):
        repository.move_pins(
            session, plan_id=plan.id, tenant_ids=ids, version=plan.version, now=now
        )
    audit.record(
        session,
        actor=actor,
        action="plan.migrate",
        target=f"plan:{project.key}/{plan.key}",
        project_id=project.id,
        before={"tenants": {key: v for key, (_, v) in moving.items()}},
        after={"version": plan.version, "tenants": sorted(moving)},
        now=now,
    )
    return migration


def _require_on_plan(
    session: Session,
    project: Project,
    plan: Plan,
    chosen: list[str],
    kept: dict[str, tuple[int, int]],
) -> None:
    missing = [key for key in chosen if key not in kept]
    if not missing:
        return
    known = repository.tenant_keys(session, project.id, missing)
    for key in missing:
        if key not in known:
            raise TenantNotFound(
                f"No tenant '{key}' in project '{project.key}'.", extra={"param": "migrate"}
            )
    raise InvalidInput(
        f"Tenant '{missing[0]}' never subscribed to plan '{plan.key}': it has no version of it "
        "to move.",
        extra={"param": "migrate"},
    )
