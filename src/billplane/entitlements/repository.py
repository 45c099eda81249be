"""The reads behind every entitlement answer, shaped to cost as few round trips as possible.

`/v1/check` sits in front of client apps' paid actions, so it runs on every such action: the
plan and every grant it needs come from one statement each.
"""

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, aliased

from billplane.entitlements.rules import Grant
from billplane.models import Feature, Plan, PlanGrant, TenantOverride

# Built once: an alias made per call costs more to build and cache-key than the query to run.
_PLAN_GRANT = aliased(PlanGrant)
_OVERRIDE = aliased(TenantOverride)


def plan_for(session: Session, project_id: int, stripe_price_id: str | None) -> Plan | None:
    """The plan of a subscribed price when there is one, otherwise the active default plan."""
    is_default = and_(Plan.is_default.is_(True), Plan.status == "active")
    wanted = (
        or_(is_default, Plan.stripe_price_id == stripe_price_id) if stripe_price_id else is_default
    )
    plans = session.scalars(select(Plan).where(Plan.project_id == project_id, wanted)).all()
    by_price = [p for p in plans if stripe_price_id and p.stripe_price_id == stripe_price_id]
    chosen = by_price or plans
    return chosen[0] if chosen else None


def features_with_grants(
    session: Session,
    *,
    project_id: int,
    plan_id: int | None,
    tenant_id: int,
    feature_key: str | None = None,
) -> list[tuple[Feature, Grant | None]]:
    """Each feature of the project (or just `feature_key`) with its effective grant, if any.

    A tenant's override replaces the plan's grant for that feature, whatever the plan is.
    """
    plan_grant, override = _PLAN_GRANT, _OVERRIDE
    query = (
        select(
            Feature,
            plan_grant.enabled,
            plan_grant.limit,
            plan_grant.reset,
            override.enabled,
            override.limit,
            override.reset,
        )
        .outerjoin(
            plan_grant, and_(plan_grant.feature_id == Feature.id, plan_grant.plan_id == plan_id)
        )
        .outerjoin(
            override, and_(override.feature_id == Feature.id, override.tenant_id == tenant_id)
        )
        .where(Feature.project_id == project_id)
        .order_by(Feature.key)
    )
    if feature_key is not None:
        query = query.where(Feature.key == feature_key)
    result = []
    for feature, p_on, p_limit, p_reset, o_on, o_limit, o_reset in session.execute(query):
        if o_on is not None:
            grant: Grant | None = Grant(o_on, o_limit, o_reset)
        elif p_on is not None:
            grant = Grant(p_on, p_limit, p_reset)
        else:
            grant = None
        result.append((feature, grant))
    return result
