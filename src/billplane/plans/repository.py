"""All SQL about plans, their versions, their per-feature grants and the versions tenants keep."""

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from billplane.entitlements.rules import Grant
from billplane.models import Plan, PlanGrant, PlanVersion, Tenant, TenantPlanVersion
from billplane.paging import Page, page_of
from billplane.sql import insert_ignoring_conflict


def get_plan(session: Session, project_id: int, key: str) -> Plan | None:
    return session.scalar(select(Plan).where(Plan.project_id == project_id, Plan.key == key))


def list_plans(
    session: Session, project_id: int, *, limit: int, starting_after: str | None
) -> Page[Plan]:
    return page_of(
        session, select(Plan).where(Plan.project_id == project_id), Plan.key, limit, starting_after
    )


def add(session: Session, plan: Plan) -> None:
    session.add(plan)
    session.flush()


def plan_for_price(session: Session, project_id: int, stripe_price_id: str) -> Plan | None:
    """The plan that sells, or sold in an earlier version, `stripe_price_id`."""
    return session.scalar(
        select(Plan)
        .join(PlanVersion, PlanVersion.plan_id == Plan.id)
        .where(Plan.project_id == project_id, PlanVersion.stripe_price_id == stripe_price_id)
        .order_by(Plan.id)
        .limit(1)
    )


def version_for_price(session: Session, plan_id: int, stripe_price_id: str) -> int | None:
    """The newest version of the plan sold at `stripe_price_id`."""
    return session.scalar(
        select(func.max(PlanVersion.version)).where(
            PlanVersion.plan_id == plan_id, PlanVersion.stripe_price_id == stripe_price_id
        )
    )


def clear_default(session: Session, project_id: int) -> None:
    session.execute(
        update(Plan)
        .where(Plan.project_id == project_id, Plan.is_default.is_(True))
        .values(is_default=False)
    )
    session.flush()


def grants_of(session: Session, plan_id: int, version: int) -> dict[int, Grant]:
    rows = session.execute(
        select(PlanGrant.feature_id, PlanGrant.enabled, PlanGrant.limit, PlanGrant.reset).where(
            PlanGrant.plan_id == plan_id, PlanGrant.version == version
        )
    )
    return {row.feature_id: Grant(row.enabled, row.limit, row.reset) for row in rows}


def add_version(session: Session, plan: Plan, grants: dict[int, Grant], now: datetime) -> None:
    """Store `plan.version` as sold now: the plan's price and trial, and `grants`."""
    session.add(
        PlanVersion(
            plan_id=plan.id,
            version=plan.version,
            stripe_price_id=plan.stripe_price_id,
            trial_days=plan.trial_days,
            created_at=now,
        )
    )
    session.add_all(
        PlanGrant(
            plan_id=plan.id,
            version=plan.version,
            feature_id=feature_id,
            enabled=g.enabled,
            limit=g.limit,
            reset=g.reset,
        )
        for feature_id, g in grants.items()
    )
    session.flush()


def versions_of(session: Session, plan_id: int) -> Sequence[PlanVersion]:
    return session.scalars(
        select(PlanVersion).where(PlanVersion.plan_id == plan_id).order_by(PlanVersion.version)
    ).all()


# --- the versions tenants keep ---------------------------------------------------------------


def pin(session: Session, *, tenant_id: int, plan_id: int, version: int, now: datetime) -> None:
    """Keep `tenant_id` on `version` of the plan (whatever it kept before)."""
    values = {"tenant_id": tenant_id, "plan_id": plan_id, "version": version, "updated_at": now}
    table = TenantPlanVersion.__table__
    session.flush()
    session.execute(insert_ignoring_conflict(session, table, values, ["tenant_id", "plan_id"]))
    session.execute(
        update(TenantPlanVersion)
        .where(TenantPlanVersion.tenant_id == tenant_id, TenantPlanVersion.plan_id == plan_id)
        .values(version=version, updated_at=now)
    )


def pinned(
    session: Session, plan_id: int, tenant_keys: Collection[str] | None = None
) -> dict[str, tuple[int, int]]:
    """Tenant key -> (tenant id, version kept) for the tenants that keep a version of the plan
    (those of `tenant_keys` only, when given)."""
    query = (
        select(Tenant.key, Tenant.id, TenantPlanVersion.version)
        .join(TenantPlanVersion, TenantPlanVersion.tenant_id == Tenant.id)
        .where(TenantPlanVersion.plan_id == plan_id)
    )
    if tenant_keys is not None:
        query = query.where(Tenant.key.in_(sorted(tenant_keys)))
    return {key: (id_, version) for key, id_, version in session.execute(query)}


def move_pins(
    session: Session, *, plan_id: int, tenant_ids: Collection[int], version: int, now: datetime
) -> None:
    session.execute(
        update(TenantPlanVersion)
        .where(
            TenantPlanVersion.plan_id == plan_id,
            TenantPlanVersion.tenant_id.in_(sorted(tenant_ids)),
        )
        .values(version=version, updated_at=now)
    )
    session.flush()


def tenant_keys(session: Session, project_id: int, keys: Collection[str]) -> set[str]:
    """Those of `keys` that are tenants of the project."""
    query = select(Tenant.key).where(Tenant.project_id == project_id, Tenant.key.in_(sorted(keys)))
    return set(session.scalars(query))
