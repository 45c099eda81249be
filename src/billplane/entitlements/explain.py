"""How an answer was reached, for `"explain": true`: built from what the answer was built from.

Nothing here reads the database or changes an answer: it restates `service.access_of` and
`service.decide` as data — the subscription considered, the plan chosen and why, where each
grant came from, the period and the counter read — so that an operator (or a client app's
developer) can see why a check said what it said.
"""

from datetime import datetime
from typing import Literal, TypedDict

from billplane.entitlements.repository import FeatureRow, Found
from billplane.entitlements.rules import effective_reset, grace_until, subscription_grants_access
from billplane.entitlements.service import Access, PlanSource, period_of
from billplane.schemas import Reset


class SubscriptionExplained(TypedDict):
    status: str
    stripe_price_id: str | None
    grants_access: bool
    grace_until: datetime | None  # a past_due subscription's last moment of access


class PlanExplained(TypedDict):
    key: str | None
    source: PlanSource
    version: int | None
    newest_version: int | None
    why: str


class Considered(TypedDict):
    """What `/v1/check` and the entitlements call considered for the tenant as a whole."""

    subscription: SubscriptionExplained | None
    plan: PlanExplained
    tenant_archived: bool


class GrantExplained(TypedDict):
    source: Literal["override", "plan", "none"]
    enabled: bool | None
    limit: int | None
    reset: Reset | None


class PeriodExplained(TypedDict):
    reset: Reset  # the grant's, or the feature type's default
    key: str
    resets_at: datetime | None
    used: int  # the counter read for this period


class FeatureExplained(TypedDict):
    """How one feature's answer was reached."""

    feature_archived: bool
    grant: GrantExplained
    period: PeriodExplained | None  # None for an on/off feature, which counts nothing


class CheckExplained(Considered, FeatureExplained):
    """`/v1/check`'s `explain`: the tenant's side and the feature's."""


def considered(found: Found, access: Access, now: datetime, grace_days: int) -> Considered:
    sub = access.subscription
    return {
        "subscription": None
        if sub is None
        else {
            "status": sub.status,
            "stripe_price_id": sub.stripe_price_id,
            "grants_access": subscription_grants_access(sub, now, grace_days),
            "grace_until": grace_until(sub, grace_days),
        },
        "plan": {
            "key": access.plan.key if access.plan else None,
            "source": access.plan_source,
            "version": access.plan.version if access.plan else None,
            "newest_version": access.plan.newest if access.plan else None,
            "why": _why(found, access, now, grace_days) + _which_version(access),
        },
        "tenant_archived": access.tenant_archived,
    }


def _why(found: Found, access: Access, now: datetime, grace_days: int) -> str:
    sub = access.subscription
    if access.plan_source == "price":
        return f"The subscription ({sub.status if sub else '?'}) is for a price of this plan."
    if sub is None:
        reason = "The tenant has no subscription"
    elif not subscription_grants_access(sub, now, grace_days):
        reason = f"The subscription is {sub.status}, which grants no access"
    elif found.price_plan is None:
        reason = f"No active plan of the project has the subscribed price {sub.stripe_price_id}"
    else:  # pragma: no cover - `access_of` takes the price's plan in every other case
        reason = "The subscribed price's plan does not apply"
    if access.plan_source == "default":
        return f"{reason}: the project's default plan applies."
    return f"{reason}, and the project has no default plan."


def _which_version(access: Access) -> str:
    plan = access.plan
    if plan is None:
        return ""
    if plan.kept:
        newest = "the newest" if plan.version == plan.newest else f"the newest is {plan.newest}"
        return f" Version {plan.version} applies: the one the tenant subscribed to ({newest})."
    if access.plan_source == "default":
        return (
            f" Version {plan.version} applies: the newest, which a default plan's tenants follow."
        )
    return f" Version {plan.version} applies: the newest."


def feature(access: Access, row: FeatureRow, now: datetime) -> FeatureExplained:
    grant = access.grants.get(row.id)
    if grant is None:
        source: Literal["override", "plan", "none"] = "none"
    else:
        source = "override" if row.id in access.overrides else "plan"
    period = period_of(access, row, now)
    return {
        "feature_archived": row.archived,
        "grant": {
            "source": source,
            "enabled": grant.enabled if grant else None,
            "limit": grant.limit if grant else None,
            "reset": grant.reset if grant else None,
        },
        "period": None
        if period is None
        else {
            "reset": effective_reset(grant, row.type),
            "key": period.key,
            "resets_at": period.resets_at,
            "used": access.used.get(row.id, 0),
        },
    }
