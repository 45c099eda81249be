"""The one read behind every entitlement answer: `/v1/check`, entitlements, and usage.

Token → project (with its catalogue's generation) → tenant → its current subscription and the
plan versions it keeps → the feature (or every feature) with its status, the tenant's override
and the usage counters that may be the current period's. One statement, SQLAlchemy Core
compiled once per dialect and run on the driver (see `hotpath`): it sits in front of every paid
action. The plans themselves (which sells the subscribed price, the default, what each version
grants) come from the catalogue each worker keeps under that generation (`catalogue`). Which
plan applies, which grant wins and which counter is current is decided in Python from the clock
(`rules`), so the statement holds no time arithmetic that would differ between engines.
"""

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    func,
    null,
    or_,
    select,
)

from billplane.entitlements import catalogue
from billplane.entitlements.catalogue import PlanRow
from billplane.entitlements.rules import Grant, SubscriptionState
from billplane.hotpath import Sql, Statement, one_of, utc
from billplane.models import (
    CreditCost,
    Feature,
    Project,
    Subscription,
    Tenant,
    TenantOverride,
    TenantPlanVersion,
    Token,
    UsageCounter,
)
from billplane.schemas import FeatureType
from billplane.stripe.facts import ENDED_STATUSES

# Usage counters of a billing period are keyed "bp:<start>", which sorts by time.
BILLING_PERIOD_KEYS = ("bp:", "bp;")


class FeatureRow(NamedTuple):
    id: int
    key: str
    type: FeatureType
    archived: bool = False
    # A credit-priced feature's pool and cost per unit (see `credits`); None for the others.
    credit_pool_id: int | None = None
    credit_cost: int | None = None


@dataclass
class Found:
    """What the statement found, before the rules pick plan, grants and period."""

    project_id: int
    project_key: str
    first_check_pending: bool
    scoped_tenant_id: int | None  # the tenant a tenant-scoped token is limited to
    tenant_id: int | None
    tenant_key: str | None
    tenant_archived: bool
    subscription: SubscriptionState | None
    price_plan: PlanRow | None
    default_plan: PlanRow | None
    features: list[FeatureRow] = field(default_factory=list)
    price_grants: dict[int, Grant] = field(default_factory=dict)
    default_grants: dict[int, Grant] = field(default_factory=dict)
    overrides: dict[int, Grant] = field(default_factory=dict)
    counters: dict[tuple[int, str], int] = field(default_factory=dict)
    latest_billing_period: dict[int, str] = field(default_factory=dict)


def _access_select(
    dialect: str, *, by_token: bool, one_feature: bool, many: bool = False
) -> Select[Any]:
    tk = Token.__table__.alias("tk")
    p = Project.__table__.alias("p")
    t = Tenant.__table__.alias("t")
    s = Subscription.__table__.alias("s")
    s2 = Subscription.__table__.alias("s2")
    pin = TenantPlanVersion.__table__.alias("pin")
    f = Feature.__table__.alias("f")
    o = TenantOverride.__table__.alias("o")
    c = UsageCounter.__table__.alias("c")
    cc = CreditCost.__table__.alias("cc")  # credits: a feature's price, if it has one

    current_subscription = (
        select(s2.c.id)
        .where(s2.c.tenant_id == t.c.id)
        .order_by(*_live_then_newest(s2))
        .limit(1)
        .scalar_subquery()
    )
    counter_may_be_current = _may_be_current(c, t.c.id, f.c.id)
    priced = one_feature or many
    feature_on: ColumnElement[bool] = f.c.project_id == p.c.id
    if many:
        feature_on = and_(feature_on, one_of(dialect, f.c.key, "features"))
    elif one_feature:
        feature_on = and_(feature_on, f.c.key == bindparam("feature"))
    tenant_is = one_of(dialect, t.c.key, "tenants") if many else t.c.key == bindparam("tenant")

    # A tenant-scoped token's tenant, by id: compared with the tenant asked about, whose id the
    # statement finds anyway (a join for its key made PostgreSQL hash every tenant per check).
    scoped = tk.c.tenant_id if by_token else null()
    columns = [
        p.c.id, p.c.key, p.c.first_check_at, p.c.catalogue_generation, scoped, t.c.id, t.c.key,
        t.c.status,
        s.c.status, s.c.stripe_price_id, s.c.current_period_start, s.c.current_period_end,
        s.c.cancel_at_period_end, s.c.trial_end,
        pin.c.plan_id, pin.c.version,
        f.c.id, f.c.key, f.c.type, f.c.status,
        o.c.enabled, o.c.limit, o.c.reset,
        c.c.period_key, c.c.used,
        # A credit-priced feature's pool and cost, read where a check or usage needs them: the
        # every-feature reads (entitlements, snapshots) answer no credits, and a join per
        # feature there cost PostgreSQL an index probe each, about a tenth of the statement.
        *([cc.c.pool_id, cc.c.cost] if priced else [null(), null()]),
    ]  # fmt: skip
    if by_token:
        source = tk.join(p, p.c.id == tk.c.project_id).outerjoin(
            t, and_(t.c.project_id == p.c.id, tenant_is)
        )
        where: ColumnElement[bool] = and_(
            tk.c.token_hash == bindparam("token_hash"), tk.c.revoked_at.is_(None)
        )
    else:
        source = p.join(t, and_(t.c.project_id == p.c.id, t.c.id == bindparam("tenant_id")))
        where = p.c.id == bindparam("project_id")
    # The versions the tenant keeps, of any plan (one row each, mostly none): which one applies
    # depends on the price's plan, which the catalogue knows (see `catalogue`).
    source = (
        source.outerjoin(s, s.c.id == current_subscription)
        .outerjoin(pin, pin.c.tenant_id == t.c.id)
        .outerjoin(f, feature_on)
        .outerjoin(o, and_(o.c.tenant_id == t.c.id, o.c.feature_id == f.c.id))
        .outerjoin(
            c, and_(c.c.tenant_id == t.c.id, c.c.feature_id == f.c.id, counter_may_be_current)
        )
    )
    if priced:
        source = source.outerjoin(cc, cc.c.feature_id == f.c.id)
    order = (t.c.id, f.c.key) if many else (f.c.key,)
    return select(*columns).select_from(source).where(where).order_by(*order)


def _may_be_current(c: Any, tenant_id: Any, feature_id: Any) -> ColumnElement[bool]:
    """Whether counter `c` of (`tenant_id`, `feature_id`) may be the current period's: the
    `never` one, today's and this month's (bound as `day_key`, `month_key`), and the newest
    billing period's."""
    c2 = UsageCounter.__table__.alias("c2")
    latest_billing_period = (
        select(func.max(c2.c.period_key))
        .where(
            c2.c.tenant_id == tenant_id,
            c2.c.feature_id == feature_id,
            c2.c.period_key >= BILLING_PERIOD_KEYS[0],
            c2.c.period_key < BILLING_PERIOD_KEYS[1],
        )
        .scalar_subquery()
    )
    return or_(
        c.c.period_key == "never",
        c.c.period_key == bindparam("day_key"),
        c.c.period_key == bindparam("month_key"),
        c.c.period_key == latest_billing_period,
    )


def _live_then_newest(s: Any) -> tuple[Any, ...]:
    """The order a tenant's subscriptions are considered in: its live one (one per tenant),
    else its newest; see tenants.repository.current_subscription, which the dashboard uses."""
    ended = case((or_(*(s.c.status == status for status in sorted(ENDED_STATUSES))), 1), else_=0)
    return ended, s.c.created_at.desc(), s.c.id.desc()


BY_TOKEN_ONE = Statement(lambda d: _access_select(d, by_token=True, one_feature=True))
BY_TOKEN_ALL = Statement(lambda d: _access_select(d, by_token=True, one_feature=False))
BY_TENANT_ALL = Statement(lambda d: _access_select(d, by_token=False, one_feature=False))
BY_TOKEN_MANY = Statement(lambda d: _access_select(d, by_token=True, one_feature=False, many=True))
COUNTER = Statement(
    lambda _: select(UsageCounter.used).where(
        UsageCounter.tenant_id == bindparam("tenant_id"),
        UsageCounter.feature_id == bindparam("feature_id"),
        UsageCounter.period_key == bindparam("period_key"),
    )
)


def by_token(
    sql: Sql, *, token_hash: str, tenant: str, feature: str | None, day_key: str, month_key: str
) -> Found | None:
    """What a token may see of `tenant` (and `feature`, or every feature); None: no such token."""
    statement = BY_TOKEN_ONE if feature is not None else BY_TOKEN_ALL
    values = {"token_hash": token_hash, "tenant": tenant, "feature": feature}
    rows = sql.run(statement, {**values, "day_key": day_key, "month_key": month_key})
    return _found(sql, rows) if rows else None


def by_token_many(
    sql: Sql,
    *,
    token_hash: str,
    tenants: list[str],
    features: list[str],
    day_key: str,
    month_key: str,
) -> tuple[Found, dict[str, Found]] | None:
    """For a batch: what the token may see of several tenants and features at once.

    Returns the token's view (project, scope) and, per tenant key that exists, its `Found`.
    """
    values = {
        "token_hash": token_hash,
        "tenants": sql.values_list(tenants),
        "features": sql.values_list(features),
        "day_key": day_key,
        "month_key": month_key,
    }
    rows = sql.run(BY_TOKEN_MANY, values)
    if not rows:
        return None
    per_tenant: dict[str, list[Any]] = {}
    for row in rows:
        if row[AT.tenant_key] is not None:
            per_tenant.setdefault(row[AT.tenant_key], []).append(row)
    return _found(sql, rows[:1]), {key: _found(sql, group) for key, group in per_tenant.items()}


def by_tenant(
    sql: Sql, *, project_id: int, tenant_id: int, day_key: str, month_key: str
) -> Found | None:
    """The same for the operator's views, which know the tenant already."""
    values = {"project_id": project_id, "tenant_id": tenant_id}
    rows = sql.run(BY_TENANT_ALL, {**values, "day_key": day_key, "month_key": month_key})
    return _found(sql, rows) if rows else None


def counter(sql: Sql, *, tenant_id: int, feature_id: int, period_key: str) -> int:
    values = {"tenant_id": tenant_id, "feature_id": feature_id, "period_key": period_key}
    rows = sql.run(COUNTER, values)
    return int(rows[0][0]) if rows else 0


FEATURE_KEYS = Statement(
    lambda _: select(Feature.key).where(Feature.project_id == bindparam("project_id"))
)


def feature_keys(sql: Sql, project_id: int) -> list[str]:
    """Every feature key of the project (to suggest the closest one to a key that is not)."""
    return [key for (key,) in sql.run(FEATURE_KEYS, {"project_id": project_id})]


class _At(NamedTuple):
    """The statement's columns by position (a row is a plain tuple)."""

    project_id: int = 0
    project_key: int = 1
    first_check_at: int = 2
    generation: int = 3
    scoped_id: int = 4
    tenant_id: int = 5
    tenant_key: int = 6
    tenant_status: int = 7
    subscription: int = 8  # status, price, period start and end, cancel at end, trial end
    pin_plan: int = 14
    pin_version: int = 15
    feature: int = 16  # id, key, type, status
    override: int = 20  # enabled, limit, reset
    period_key: int = 23
    used: int = 24
    credits: int = 25  # the feature's pool and cost


AT = _At()


def _found(sql: Sql, rows: Any) -> Found:
    first = rows[0]
    plans = catalogue.current(sql, first[AT.project_id], first[AT.generation])
    kept = {row[AT.pin_plan]: row[AT.pin_version] for row in rows if row[AT.pin_plan] is not None}
    status, price, start, end, cancel, trial_end = first[AT.subscription : AT.subscription + 6]
    price_plan = plans.plan_of(price, kept) if status is not None else None
    found = Found(
        project_id=first[AT.project_id],
        project_key=first[AT.project_key],
        first_check_pending=first[AT.first_check_at] is None,
        scoped_tenant_id=first[AT.scoped_id],
        tenant_id=first[AT.tenant_id],
        tenant_key=first[AT.tenant_key],
        tenant_archived=first[AT.tenant_status] == "archived",
        subscription=None
        if status is None
        else SubscriptionState(
            status=status,
            stripe_price_id=price,
            current_period_start=utc(start),
            current_period_end=utc(end),
            cancel_at_period_end=bool(cancel),
            trial_end=utc(trial_end),
        ),
        price_plan=price_plan,
        default_plan=plans.default,
        price_grants=plans.grants_of(price_plan),
        default_grants=plans.grants_of(plans.default),
    )
    seen: set[int] = set()
    for row in rows:
        feature_id = row[AT.feature]
        if feature_id is None:
            continue  # a project without features
        if feature_id not in seen:
            seen.add(feature_id)
            key, type_, feature_status = row[AT.feature + 1 : AT.feature + 4]
            pool_id, cost = row[AT.credits : AT.credits + 2]
            archived = feature_status == "archived"
            found.features.append(FeatureRow(feature_id, key, type_, archived, pool_id, cost))
            enabled, limit, reset = row[AT.override : AT.override + 3]
            if enabled is not None:
                found.overrides[feature_id] = Grant(bool(enabled), limit, reset)
        period_key, used = row[AT.period_key], row[AT.used]
        if period_key is not None:
            found.counters[(feature_id, period_key)] = int(used)
            if period_key.startswith("bp:"):
                found.latest_billing_period[feature_id] = period_key
    return found


# --- Every tenant of a project at once (a catalogue change's preview) ----------------------------
# The statement above, run per tenant, would cost a round trip each, and as one statement it would
# return tenants x features rows. These read each kind of row once — tenants with their current
# subscription, the project's plans and grants, overrides and counters — and build the same
# `Found` per tenant, sharing the plans' grants (tests/entitlements/test_preview.py compares).


def _current_subscriptions() -> Select[Any]:
    s = Subscription.__table__.alias("s")
    rank = func.row_number().over(partition_by=s.c.tenant_id, order_by=_live_then_newest(s))
    return select(
        s.c.tenant_id,
        s.c.status,
        s.c.stripe_price_id,
        s.c.current_period_start,
        s.c.current_period_end,
        s.c.cancel_at_period_end,
        s.c.trial_end,
        rank.label("rank"),
    )


def _project_tenants(dialect: str, *, some: bool) -> Select[Any]:
    t = Tenant.__table__.alias("t")
    subs = _current_subscriptions().subquery("subs")
    return (
        select(t.c.id, t.c.key, t.c.status, *list(subs.c)[1:7])
        .select_from(t.outerjoin(subs, and_(subs.c.tenant_id == t.c.id, subs.c.rank == 1)))
        .where(t.c.project_id == bindparam("project_id"), *_some(dialect, t.c.id, some))
        .order_by(t.c.id)
    )


def _some(dialect: str, tenant_id: Any, some: bool) -> list[ColumnElement[bool]]:
    """The condition that keeps the tenants asked about (`tenant_ids`), when only some are."""
    return [one_of(dialect, tenant_id, "tenant_ids")] if some else []


PROJECT_TENANTS = Statement(lambda d: _project_tenants(d, some=False))
SOME_TENANTS = Statement(lambda d: _project_tenants(d, some=True))
PROJECT_FEATURES = Statement(
    lambda _: (
        select(Feature.id, Feature.key, Feature.type, Feature.status)
        .where(Feature.project_id == bindparam("project_id"))
        .order_by(Feature.key)
    )
)


def _project_overrides(dialect: str, *, some: bool) -> Any:
    return (
        select(
            TenantOverride.tenant_id,
            TenantOverride.feature_id,
            TenantOverride.enabled,
            TenantOverride.limit,
            TenantOverride.reset,
        )
        .join(Tenant, Tenant.id == TenantOverride.tenant_id)
        .where(
            Tenant.project_id == bindparam("project_id"),
            *_some(dialect, TenantOverride.tenant_id, some),
        )
    )


PROJECT_OVERRIDES = Statement(lambda d: _project_overrides(d, some=False))
SOME_OVERRIDES = Statement(lambda d: _project_overrides(d, some=True))


def _project_pins(dialect: str, *, some: bool) -> Any:
    return (
        select(TenantPlanVersion.tenant_id, TenantPlanVersion.plan_id, TenantPlanVersion.version)
        .join(Tenant, Tenant.id == TenantPlanVersion.tenant_id)
        .where(
            Tenant.project_id == bindparam("project_id"),
            *_some(dialect, TenantPlanVersion.tenant_id, some),
        )
    )


PROJECT_PINS = Statement(lambda d: _project_pins(d, some=False))
SOME_PINS = Statement(lambda d: _project_pins(d, some=True))


def _project_counters(dialect: str, *, some: bool) -> Select[Any]:
    c = UsageCounter.__table__.alias("c")
    t = Tenant.__table__.alias("t")
    return (
        select(c.c.tenant_id, c.c.feature_id, c.c.period_key, c.c.used)
        .join(t, t.c.id == c.c.tenant_id)
        .where(
            t.c.project_id == bindparam("project_id"),
            _may_be_current(c, c.c.tenant_id, c.c.feature_id),
            *_some(dialect, c.c.tenant_id, some),
        )
        .order_by(c.c.tenant_id, c.c.feature_id, c.c.period_key)
    )


PROJECT_COUNTERS = Statement(lambda d: _project_counters(d, some=False))
SOME_COUNTERS = Statement(lambda d: _project_counters(d, some=True))


def by_project(
    sql: Sql,
    *,
    project_id: int,
    project_key: str,
    day_key: str,
    month_key: str,
    tenant_ids: Collection[int] | None = None,
) -> list[Found]:
    """What `by_tenant` finds, for every tenant of the project (or those of `tenant_ids`), in
    seven statements."""
    project: dict[str, Any] = {"project_id": project_id}
    some = tenant_ids is not None
    if tenant_ids is not None:
        project["tenant_ids"] = sql.values_list(sorted(tenant_ids))
    features = [
        FeatureRow(id_, key, type_, status == "archived")
        for id_, key, type_, status in sql.run(PROJECT_FEATURES, project)
    ]
    plans = catalogue.load(sql, project_id)
    pins: dict[int, dict[int, int]] = {}  # tenant id -> plan id -> the version it keeps
    for tenant_id, plan_id, version in sql.run(SOME_PINS if some else PROJECT_PINS, project):
        pins.setdefault(tenant_id, {})[plan_id] = version
    overrides: dict[int, dict[int, Grant]] = {}
    for tenant_id, feature_id, enabled, limit, reset in sql.run(
        SOME_OVERRIDES if some else PROJECT_OVERRIDES, project
    ):
        overrides.setdefault(tenant_id, {})[feature_id] = Grant(bool(enabled), limit, reset)
    counters: dict[int, dict[tuple[int, str], int]] = {}
    latest: dict[int, dict[int, str]] = {}
    periods = {**project, "day_key": day_key, "month_key": month_key}
    for tenant_id, feature_id, period_key, used in sql.run(
        SOME_COUNTERS if some else PROJECT_COUNTERS, periods
    ):
        counters.setdefault(tenant_id, {})[(feature_id, period_key)] = int(used)
        if period_key.startswith("bp:"):
            latest.setdefault(tenant_id, {})[feature_id] = period_key
    found = []
    default_grants = plans.grants_of(plans.default)
    for tenant_id, key, status, sub_status, price, start, end, cancel, trial_end in sql.run(
        SOME_TENANTS if some else PROJECT_TENANTS, project
    ):
        price_plan = plans.plan_of(price, pins.get(tenant_id, {})) if sub_status else None
        found.append(
            Found(
                project_id=project_id,
                project_key=project_key,
                first_check_pending=False,
                scoped_tenant_id=None,
                tenant_id=tenant_id,
                tenant_key=key,
                tenant_archived=status == "archived",
                subscription=None
                if sub_status is None
                else SubscriptionState(
                    status=sub_status,
                    stripe_price_id=price,
                    current_period_start=utc(start),
                    current_period_end=utc(end),
                    cancel_at_period_end=bool(cancel),
                    trial_end=utc(trial_end),
                ),
                price_plan=price_plan,
                default_plan=plans.default,
                features=features,
                price_grants=plans.grants_of(price_plan),
                default_grants=default_grants,
                overrides=overrides.get(tenant_id, {}),
                counters=counters.get(tenant_id, {}),
                latest_billing_period=latest.get(tenant_id, {}),
            )
        )
    return found
