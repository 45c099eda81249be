"""The rule for "can this tenant do this?": effective plan, grants, usage and the answer.

A check never changes usage. `resolve_access` gathers what the answer depends on; `decide`
turns it into an answer for one feature.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from billplane.entitlements import repository
from billplane.entitlements.rules import (
    Grant,
    Period,
    SubscriptionState,
    default_reset,
    period_for,
    subscription_grants_access,
)
from billplane.models import Feature, Plan, Project, Subscription, Tenant
from billplane.tenants import repository as tenants
from billplane.usage import repository as usage


@dataclass(frozen=True)
class Access:
    """Everything a tenant's entitlements depend on, read once."""

    tenant: Tenant
    plan: Plan | None
    subscription: SubscriptionState | None
    features: list[Feature]  # the features asked about, in key order
    grants: dict[int, Grant]  # feature id -> effective grant (overrides already applied)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    limit: int | None = None
    used: int | None = None
    remaining: int | None = None
    resets_at: datetime | None = None
    period: Period | None = None
    grant: Grant | None = None


def subscription_state(row: Subscription | None) -> SubscriptionState | None:
    if row is None:
        return None
    return SubscriptionState(
        status=row.status,
        stripe_price_id=row.stripe_price_id,
        current_period_start=row.current_period_start,
        current_period_end=row.current_period_end,
        cancel_at_period_end=row.cancel_at_period_end,
        trial_end=row.trial_end,
    )


def resolve_access(
    session: Session,
    project: Project,
    tenant: Tenant,
    now: datetime,
    grace_days: int,
    feature_key: str | None = None,
) -> Access:
    """What the tenant's answers depend on: its effective plan and the grants of `feature_key`
    (or of every feature).

    The effective plan is the subscribed price's plan while the subscription grants access,
    otherwise the project's default plan, otherwise none.
    """
    subscription = subscription_state(tenants.current_subscription(session, tenant.id))
    granting = subscription_grants_access(subscription, now, grace_days)
    price = subscription.stripe_price_id if granting and subscription else None
    plan = repository.plan_for(session, project.id, price)
    rows = repository.features_with_grants(
        session,
        project_id=project.id,
        plan_id=plan.id if plan else None,
        tenant_id=tenant.id,
        feature_key=feature_key,
    )
    return Access(
        tenant=tenant,
        plan=plan,
        subscription=subscription,
        features=[feature for feature, _ in rows],
        grants={feature.id: grant for feature, grant in rows if grant is not None},
    )


def period_of(access: Access, feature: Feature, now: datetime) -> Period | None:
    """The period a counted feature's usage goes into (None for on/off features).

    Usage is counted even where the plan does not grant the feature (e.g. metered use without a
    plan), so reading and recording must agree on the period in every case.
    """
    if feature.type == "boolean":
        return None
    grant = access.grants.get(feature.id)
    reset = (grant.reset if grant else None) or default_reset(feature.type)
    return period_for(reset, now, access.subscription)


def decide(access: Access, feature: Feature, used: int, quantity: int, now: datetime) -> Decision:
    """Whether `quantity` more of `feature` is allowed, given what the tenant used this period."""
    grant = access.grants.get(feature.id)
    period = period_of(access, feature, now)
    counted = feature.type != "boolean"
    limit = grant.limit if grant is not None and feature.type == "limit" else None
    numbers: dict[str, Any] = {}
    if counted:
        numbers = {
            "limit": limit,
            "used": used,
            "remaining": None if limit is None else max(limit - used, 0),
            "resets_at": period.resets_at if period else None,
        }
    if grant is None or not grant.enabled:
        return Decision(False, _refusal(access), period=period, grant=grant, **numbers)
    if limit is not None and used + quantity > limit:
        return Decision(False, "limit_reached", period=period, grant=grant, **numbers)
    return Decision(True, "ok", period=period, grant=grant, **numbers)


def _refusal(access: Access) -> str:
    if access.plan is not None:
        return "not_in_plan"
    if access.subscription is not None:
        return "subscription_inactive"
    return "no_plan"


def used_now(
    session: Session, access: Access, features: list[Feature], now: datetime
) -> dict[int, int]:
    """What the tenant used of each counted feature in its current period."""
    periods = {f.id: period_of(access, f, now) for f in features}
    wanted = [(fid, p.key) for fid, p in periods.items() if p is not None]
    totals = usage.used_in(session, access.tenant.id, wanted)
    return {fid: totals.get((fid, p.key), 0) for fid, p in periods.items() if p is not None}


def check(
    session: Session,
    project: Project,
    tenant: Tenant,
    feature_key: str,
    quantity: int,
    now: datetime,
    grace_days: int,
) -> dict[str, Any]:
    """The answer of `/v1/check`: may `tenant` use `quantity` of the feature now?"""
    access = resolve_access(session, project, tenant, now, grace_days, feature_key)
    head = {
        "tenant": tenant.key,
        "feature": feature_key,
        "plan": access.plan.key if access.plan else None,
        "subscription_status": access.subscription.status if access.subscription else None,
    }
    if not access.features:
        return {**head, "allowed": False, "reason": "unknown_feature"}
    feature = access.features[0]
    used = used_now(session, access, [feature], now).get(feature.id, 0)
    return {**head, **answer(decide(access, feature, used, quantity, now), feature)}


def answer(decision: Decision, feature: Feature) -> dict[str, Any]:
    body: dict[str, Any] = {"allowed": decision.allowed, "reason": decision.reason}
    if feature.type != "boolean":
        body |= {
            "limit": decision.limit,
            "used": decision.used,
            "remaining": decision.remaining,
            "resets_at": decision.resets_at,
        }
    return body


def entitlements_of(
    session: Session, project: Project, tenant: Tenant, now: datetime, grace_days: int
) -> dict[str, Any]:
    """The answer of `/v1/tenants/{tenant}/entitlements`: every project feature at once."""
    access = resolve_access(session, project, tenant, now, grace_days)
    features = access.features
    used = used_now(session, access, features, now)
    sub = access.subscription
    return {
        "tenant": tenant.key,
        "plan": access.plan.key if access.plan else None,
        "subscription": None
        if sub is None
        else {
            "status": sub.status,
            "current_period_end": sub.current_period_end,
            "cancel_at_period_end": sub.cancel_at_period_end,
            "trial_end": sub.trial_end,
        },
        "features": [
            {
                "feature": f.key,
                "type": f.type,
                **answer(decide(access, f, used.get(f.id, 0), 1, now), f),
            }
            for f in features
        ],
    }
