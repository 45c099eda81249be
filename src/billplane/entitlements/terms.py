"""What each tenant of a project may do, compared before and after a change: whether an edit of
a plan, an override, a subscription or a tenant's status altered it (app webhooks tell the app).

The rules are `rules` and `service.access_of`'s; only the reading differs. A handful of
statements read the whole project (or the tenants asked about) at once, since one plan edit may
concern every tenant. Usage is no part of it: what was used changes on every call.
"""

from collections.abc import Collection
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from billplane.entitlements.repository import PlanRow
from billplane.entitlements.rules import Grant, SubscriptionState, subscription_grants_access
from billplane.models import Feature, Plan, PlanGrant, Subscription, Tenant, TenantOverride
from billplane.stripe.facts import ENDED_STATUSES

# One feature as granted: (key, on, limit, reset, archived).
FeatureTerms = tuple[str, bool, int | None, str | None, bool]


class Terms(NamedTuple):
    tenant_key: str
    archived: bool
    plan: str | None
    features: tuple[FeatureTerms, ...]  # in key order

    def rendered(self) -> dict[str, Any]:
        """As an app webhook tells it: the plan, and per feature `true`/`false` (on or off) or
        `{"limit": N, "reset": ...}`, as plans are written; an archived tenant or feature is
        off whatever its grant."""
        features: dict[str, Any] = {}
        for key, enabled, limit, reset, archived in self.features:
            on = enabled and not archived and not self.archived
            features[key] = {"limit": limit, "reset": reset} if on and limit is not None else on
        return {
            "plan": self.plan,
            "status": "archived" if self.archived else "active",
            "features": features,
        }


def terms_of(
    session: Session,
    project_id: int,
    now: datetime,
    grace_days: int,
    tenant_ids: Collection[int] | None = None,
) -> dict[int, Terms]:
    """Tenant id -> its terms, for every tenant of the project (or those of `tenant_ids`)."""
    chosen = select(Tenant.id).where(Tenant.project_id == project_id)
    if tenant_ids is not None:
        chosen = chosen.where(Tenant.id.in_(tenant_ids))
    ids = chosen.scalar_subquery()  # a subquery, not a list: a project may have many tenants
    rows = session.execute(
        select(Tenant.id, Tenant.key, Tenant.status).where(Tenant.id.in_(ids))
    ).all()
    if not rows:
        return {}
    current = _current_subscriptions(session, ids)
    plans = session.execute(
        select(Plan.id, Plan.key, Plan.stripe_price_id, Plan.is_default, Plan.status)
        .where(Plan.project_id == project_id)
        .order_by(Plan.id)
    ).all()
    by_price: dict[str, PlanRow] = {}
    for row in plans:  # another plan with the same price: the first one decides
        if row.stripe_price_id is not None:
            by_price.setdefault(row.stripe_price_id, PlanRow(row.id, row.key))
    default = next(
        (PlanRow(p.id, p.key) for p in plans if p.is_default and p.status == "active"), None
    )
    grants = _grants(session, project_id)
    overrides = _overrides(session, ids)
    features = session.execute(
        select(Feature.id, Feature.key, Feature.status)
        .where(Feature.project_id == project_id)
        .order_by(Feature.key)
    ).all()
    found: dict[int, Terms] = {}
    for tenant in rows:
        subscription = current.get(tenant.id)
        plan: PlanRow | None = None
        if subscription is not None:
            plan = by_price.get(subscription.stripe_price_id or "")
        if plan is None or not subscription_grants_access(subscription, now, grace_days):
            plan = default
        # A tenant's override replaces the plan's grant, whatever the plan (or none).
        granted = {**(grants.get(plan.id, {}) if plan else {}), **overrides.get(tenant.id, {})}
        found[tenant.id] = Terms(
            tenant_key=tenant.key,
            archived=tenant.status == "archived",
            plan=plan.key if plan else None,
            features=tuple(
                _feature_terms(f.key, granted.get(f.id), f.status == "archived") for f in features
            ),
        )
    return found


def _feature_terms(key: str, grant: Grant | None, archived: bool) -> FeatureTerms:
    if grant is None:
        return (key, False, None, None, archived)
    limit = grant.limit
    return (
        key,
        grant.enabled,
        limit,
        grant.reset or ("month" if limit is not None else None),
        archived,
    )


def _current_subscriptions(session: Session, tenant_ids: Any) -> dict[int, SubscriptionState]:
    """Each tenant's live subscription, else its newest (`tenants.repository.current_subscription`'s
    rule, for many tenants at once)."""
    rows = session.execute(
        select(Subscription)
        .where(Subscription.tenant_id.in_(tenant_ids))
        .order_by(Subscription.tenant_id, Subscription.created_at.desc(), Subscription.id.desc())
    ).scalars()
    chosen: dict[int, Subscription] = {}
    for row in rows:
        kept = chosen.get(row.tenant_id)
        if kept is None or (kept.status in ENDED_STATUSES and row.status not in ENDED_STATUSES):
            chosen[row.tenant_id] = row
    return {
        tenant_id: SubscriptionState(
            status=row.status,
            stripe_price_id=row.stripe_price_id,
            current_period_start=row.current_period_start,
            current_period_end=row.current_period_end,
            cancel_at_period_end=row.cancel_at_period_end,
            trial_end=row.trial_end,
        )
        for tenant_id, row in chosen.items()
    }


def _grants(session: Session, project_id: int) -> dict[int, dict[int, Grant]]:
    found: dict[int, dict[int, Grant]] = {}
    rows = session.execute(
        select(
            PlanGrant.plan_id,
            PlanGrant.feature_id,
            PlanGrant.enabled,
            PlanGrant.limit,
            PlanGrant.reset,
        )
        .join(Plan, Plan.id == PlanGrant.plan_id)
        .where(Plan.project_id == project_id)
    )
    for row in rows:
        found.setdefault(row.plan_id, {})[row.feature_id] = Grant(row.enabled, row.limit, row.reset)
    return found


def _overrides(session: Session, tenant_ids: Any) -> dict[int, dict[int, Grant]]:
    found: dict[int, dict[int, Grant]] = {}
    rows = session.execute(
        select(
            TenantOverride.tenant_id,
            TenantOverride.feature_id,
            TenantOverride.enabled,
            TenantOverride.limit,
            TenantOverride.reset,
        ).where(TenantOverride.tenant_id.in_(tenant_ids))
    )
    for row in rows:
        found.setdefault(row.tenant_id, {})[row.feature_id] = Grant(
            row.enabled, row.limit, row.reset
        )
    return found
