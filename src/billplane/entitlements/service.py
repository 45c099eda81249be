"""The rule for "can this tenant do this?": effective plan, grants, usage and the answer.

A check never changes usage. `lookup` reads what the answer depends on (one statement, see
`repository`), `access_of` applies the rules to it, and `decide` turns that into an answer for
one feature.
"""

import difflib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TypedDict

from sqlalchemy.orm import Session

from billplane.entitlements import repository
from billplane.entitlements.catalogue import PlanRow
from billplane.entitlements.repository import FeatureRow, Found
from billplane.entitlements.rules import (
    Grant,
    Period,
    SubscriptionState,
    calendar_keys,
    effective_reset,
    period_for,
    subscription_grants_access,
)
from billplane.errors import UnknownFeature, present
from billplane.hotpath import Sql
from billplane.models import Project, Tenant
from billplane.schemas import FeatureType, Reset
from billplane.tokens import service as tokens

PlanSource = Literal["price", "default", "none"]


@dataclass(frozen=True)
class Access:
    """Everything a tenant's entitlements depend on, read once."""

    tenant_id: int
    tenant_key: str
    tenant_archived: bool  # every check of an archived tenant is refused
    plan: PlanRow | None
    plan_source: PlanSource  # how `plan` was chosen (`explain` says it)
    subscription: SubscriptionState | None
    features: list[FeatureRow]  # the features asked about, in key order
    grants: dict[int, Grant]  # feature id -> effective grant (overrides already applied)
    overrides: dict[int, Grant]  # the tenant's own grants, which replaced the plan's
    used: dict[int, int]  # counted feature id -> what was used in its current period
    periods: dict[int, Period]  # counted feature id -> its current period


# The answers' JSON, typed as it is built: plain dicts at run time (no model to build per call on
# the hot path), checked by mypy here and validated against `schemas` by the OpenAPI tests.
class Answer(TypedDict):
    allowed: bool
    reason: str


class Numbers(TypedDict, total=False):
    """Present on a counted feature's answer, absent on an on/off feature's."""

    limit: int | None
    used: int | None
    remaining: int | None
    resets_at: datetime | None


class FeatureNumbers(Answer, Numbers):
    """One feature's answer: a counted feature's with its numbers."""


class CheckHead(TypedDict):
    tenant: str
    feature: str
    plan: str | None
    subscription_status: str | None


class CheckAnswer(CheckHead, Answer, Numbers):
    """`/v1/check`'s body (`schemas.CheckOut`): the numbers only for a counted feature."""


class UnknownCheck(CheckHead, Answer):
    """`/v1/check`'s body for a key the project does not have: why, in `message`."""

    message: str


Checked = CheckAnswer | UnknownCheck


class FeatureHead(TypedDict):
    feature: str
    type: FeatureType


class FeatureAnswer(FeatureHead, Answer, Numbers):
    pass


class SubscriptionSummary(TypedDict):
    status: str
    current_period_end: datetime | None
    cancel_at_period_end: bool
    trial_end: datetime | None


class EntitlementsAnswer(TypedDict):
    """`/v1/tenants/{t}/entitlements`' body (`schemas.EntitlementsOut`)."""

    tenant: str
    plan: str | None
    subscription: SubscriptionSummary | None
    features: list[FeatureAnswer]


# Slotted, not frozen: an entitlements answer makes one per feature, a batch one per event.
@dataclass(slots=True)
class Decision:
    allowed: bool
    reason: str
    limit: int | None = None
    used: int | None = None
    remaining: int | None = None
    resets_at: datetime | None = None
    period: Period | None = None
    grant: Grant | None = None


def lookup(
    sql: Sql, token: str | None, tenant_key: str, feature_key: str | None, now: datetime
) -> Found:
    """What the bearer `token` may know of the tenant: 401, 403 or 404 otherwise."""
    found = repository.by_token(
        sql,
        token_hash=tokens.token_hash_of(token),
        tenant=tenant_key,
        feature=feature_key,
        **period_keys(now),
    )
    if found is None:
        raise tokens.unknown_token()
    _require_tenant(found, tenant_key, found.tenant_id)
    return found


def _require_tenant(token_view: Found, tenant_key: str, tenant_id: int | None) -> None:
    tokens.require_tenant(
        project_key=token_view.project_key,
        scoped_tenant_id=token_view.scoped_tenant_id,
        tenant_key=tenant_key,
        tenant_id=tenant_id,
    )


@dataclass(frozen=True)
class Batch:
    """What a token may see of the tenants and features a batch names (read at once)."""

    token: Found
    tenants: dict[str, Found]

    def tenant(self, key: str) -> Found:
        """The tenant's view: 403 outside a scoped token's tenant, 404 if it does not exist."""
        found = self.tenants.get(key)
        _require_tenant(self.token, key, found.tenant_id if found is not None else None)
        return present(found, f"tenant {key}")


def lookup_many(
    sql: Sql, token: str | None, tenants: list[str], features: list[str], now: datetime
) -> Batch:
    """`lookup` for a batch: one statement for all its tenants and features; 401 for all."""
    found = repository.by_token_many(
        sql,
        token_hash=tokens.token_hash_of(token),
        tenants=tenants,
        features=features,
        **period_keys(now),
    )
    if found is None:
        raise tokens.unknown_token()
    return Batch(*found)


class PeriodKeys(TypedDict):
    day_key: str
    month_key: str


def period_keys(now: datetime) -> PeriodKeys:
    """The keys a `day` and a `month` counter of `now` have (the statement fetches those)."""
    day, month = calendar_keys(now.astimezone(UTC))
    return {"day_key": day, "month_key": month}


def access_of(sql: Sql, found: Found, now: datetime, grace_days: int) -> Access:
    """The rules applied to what was read.

    The effective plan is the subscribed price's plan while the subscription grants access,
    otherwise the project's default plan, otherwise none. A tenant's override replaces the
    plan's grant for that feature, whatever the plan is.
    """
    # `lookup` answered 404 for a tenant that is not there.
    tenant_id, tenant_key = present(found.tenant_id, "the tenant"), present(found.tenant_key, "key")
    subscription = found.subscription
    granting = subscription_grants_access(subscription, now, grace_days)
    plan: PlanRow | None = found.price_plan
    grants = found.price_grants
    source: PlanSource = "price"
    if not granting or plan is None:
        plan, grants = found.default_plan, found.default_grants
        source = "none" if plan is None else "default"
    access = Access(
        tenant_id=tenant_id,
        tenant_key=tenant_key,
        tenant_archived=found.tenant_archived,
        plan=plan,
        plan_source=source,
        subscription=subscription,
        features=found.features,
        grants={**grants, **found.overrides},
        overrides=found.overrides,
        used={},
        periods={},
    )
    periods: dict[Reset, Period] = {}  # an entitlements answer has a few resets, many features
    for feature in found.features:
        if feature.type == "boolean":
            continue
        reset = effective_reset(access.grants.get(feature.id), feature.type)
        period = periods.get(reset)
        if period is None:
            period = periods[reset] = period_for(reset, now, subscription)
        access.periods[feature.id] = period
        access.used[feature.id] = _used_in(sql, found, feature.id, period.key)
    return access


def _used_in(sql: Sql, found: Found, feature_id: int, period_key: str) -> int:
    used = found.counters.get((feature_id, period_key))
    if used is not None:
        return used
    # The statement fetched the newest billing-period counter only; an older one can be the
    # current period's when a subscription was replaced by one that started earlier.
    newest = found.latest_billing_period.get(feature_id)
    if period_key.startswith("bp:") and newest is not None and newest > period_key:
        tenant_id = present(found.tenant_id, "the tenant")
        return repository.counter(
            sql, tenant_id=tenant_id, feature_id=feature_id, period_key=period_key
        )
    return 0


def period_of(access: Access, feature: FeatureRow, now: datetime) -> Period | None:
    """The period a counted feature's usage goes into (None for on/off features).

    Usage is counted even where the plan does not grant the feature (e.g. metered use without a
    plan), so reading and recording must agree on the period in every case: both take it from
    `access_of`, which works it out once per feature from the grant's reset (or the default).
    """
    if feature.type == "boolean":
        return None
    return access.periods[feature.id]


def decide(
    access: Access, feature: FeatureRow, used: int, quantity: int, now: datetime
) -> Decision:
    """Whether `quantity` more of `feature` is allowed, given what the tenant used this period."""
    grant = access.grants.get(feature.id)
    period = period_of(access, feature, now)
    limit = grant.limit if grant is not None and feature.type == "limit" else None
    if access.tenant_archived or feature.archived:
        # Archived by an operator: refused whatever the plan says; the numbers still show.
        allowed, reason = False, "tenant_archived" if access.tenant_archived else "feature_archived"
    elif grant is None or not grant.enabled:
        allowed, reason = False, _refusal(access)
    elif limit is not None and used + quantity > limit:
        allowed, reason = False, "limit_reached"
    else:
        allowed, reason = True, "ok"
    if feature.type == "boolean":
        return Decision(allowed, reason, period=period, grant=grant)
    remaining = None if limit is None else max(limit - used, 0)
    resets_at = period.resets_at if period else None
    return Decision(allowed, reason, limit, used, remaining, resets_at, period, grant)


def _refusal(access: Access) -> str:
    if access.plan is not None:
        return "not_in_plan"
    if access.subscription is not None:
        return "subscription_inactive"
    return "no_plan"


def check(
    sql: Sql, found: Found, access: Access, feature_key: str, quantity: int, now: datetime
) -> Checked:
    """The answer of `/v1/check`: may the tenant use `quantity` of the feature now?"""
    head: CheckHead = {
        "tenant": access.tenant_key,
        "feature": feature_key,
        "plan": access.plan.key if access.plan else None,
        "subscription_status": access.subscription.status if access.subscription else None,
    }
    if not access.features:
        message = unknown_feature(sql, found, feature_key).message
        return {**head, "allowed": False, "reason": "unknown_feature", "message": message}
    feature = access.features[0]
    used = access.used.get(feature.id, 0)
    return {**head, **answer(decide(access, feature, used, quantity, now), feature)}


def unknown_feature(sql: Sql, found: Found, key: str) -> UnknownFeature:
    """A key the project does not have, named with the closest one it has: a typo, most often.

    Check and usage answer it with the same code and sentence: a check says `allowed: false`
    with it (a question still gets an answer), a usage call is refused with it (404).
    """
    keys = repository.feature_keys(sql, found.project_id)
    close = difflib.get_close_matches(key, keys, n=1, cutoff=0.8)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return UnknownFeature(f"No feature '{key}' in project '{found.project_key}'.{hint}")


def answer(decision: Decision, feature: FeatureRow) -> FeatureNumbers:
    if feature.type == "boolean":
        return {"allowed": decision.allowed, "reason": decision.reason}
    return {
        "allowed": decision.allowed,
        "reason": decision.reason,
        "limit": decision.limit,
        "used": decision.used,
        "remaining": decision.remaining,
        "resets_at": decision.resets_at,
    }


def entitlements(access: Access, now: datetime) -> EntitlementsAnswer:
    """The answer of `/v1/tenants/{tenant}/entitlements`: every project feature at once."""
    sub = access.subscription
    return {
        "tenant": access.tenant_key,
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
                **answer(decide(access, f, access.used.get(f.id, 0), 1, now), f),
            }
            for f in access.features
        ],
    }


def entitlements_of(
    session: Session, project: Project, tenant: Tenant, now: datetime, grace_days: int
) -> EntitlementsAnswer:
    """A tenant's entitlements inside an ORM transaction (the operator's views, confirm)."""
    sql = Sql(session.connection().connection.cursor(), session.get_bind().dialect)
    found = present(  # the caller holds the tenant
        repository.by_tenant(sql, project_id=project.id, tenant_id=tenant.id, **period_keys(now)),
        "the tenant",
    )
    return entitlements(access_of(sql, found, now, grace_days), now)
