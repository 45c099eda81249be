"""The rules of credits: what a credit-priced feature costs, what a tenant holds, and how a
deduction is taken, exactly once and never past the balance unless the plan allows overage.

Deduction order (documented): soonest-expiring bucket first, never-expiring ones last, the
oldest first among equals. A plan's allowance is made into the period's bucket by the first
movement of the period (a deduction, or reading the balances), with what the previous period
rolls over; a check counts it as if it were made.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypedDict

from sqlalchemy.orm import Session

from billplane.audit import service as audit
from billplane.credits import repository, rules, unrecovered
from billplane.credits.repository import AllowanceRow, BucketRow, Entry
from billplane.credits.schemas import GrantIn
from billplane.entitlements.repository import FeatureRow
from billplane.entitlements.rules import Period, period_for
from billplane.entitlements.service import Access
from billplane.errors import (
    AlreadyExists,
    FeatureNotFound,
    IdempotencyKeyReused,
    InvalidInput,
    PlanNotFound,
    PoolNotFound,
    TenantNotFound,
    present,
)
from billplane.hotpath import Sql, utc
from billplane.models import (
    CreditBucket,
    CreditCost,
    CreditEntry,
    CreditPack,
    CreditPool,
    PlanAllowance,
    Project,
)
from billplane.schemas import Reset

# --- The hot path: a credit-priced feature's check and usage ------------------------------------


@dataclass(slots=True)
class PoolView:
    """A tenant's side of the pool a feature is priced in, read before a check or a usage."""

    tenant_id: int
    pool_id: int
    pool_key: str
    unit_cost: int
    allowance: AllowanceRow | None  # the effective plan's
    period: Period | None  # the allowance's current period
    buckets: list[BucketRow]

    def cost(self, quantity: int) -> int:
        return self.unit_cost * quantity

    @property
    def overage_feature_id(self) -> int | None:
        return None if self.allowance is None else self.allowance.overage_feature_id

    def balance(self, now: datetime) -> int:
        """The credits usable now, the current period's allowance counted even before it is made
        into its bucket (the first deduction of the period makes it)."""
        held = sum(b.remaining for b in self.buckets if rules.usable(b.expires_at, now))
        if self.allowance is None or not rules.allowance_due(
            self.allowance, self.period, self.buckets
        ):
            return held
        previous = self._newest_allowance()
        start = rules.period_start(self.period) if self.period else None
        rolled = rules.rolled_over(previous, start, self.allowance.rollover_cap, now)
        return held + self.allowance.amount + rolled

    def _newest_allowance(self) -> BucketRow | None:
        made = [b for b in self.buckets if b.source == "allowance"]
        return max(made, key=lambda b: b.id) if made else None


def view(sql: Sql, access: Access, feature: FeatureRow, now: datetime) -> PoolView | None:
    """The pool side of a feature: None (and no statement) for a feature without a price."""
    if feature.credit_pool_id is None or feature.credit_cost is None:
        return None
    return view_of_pool(sql, access, feature.credit_pool_id, feature.credit_cost, now)


def view_of_pool(sql: Sql, access: Access, pool_id: int, unit_cost: int, now: datetime) -> PoolView:
    plan_id = access.plan.id if access.plan else None
    row = repository.pool_state(sql, pool_id=pool_id, plan_id=plan_id, tenant_id=access.tenant_id)
    return _pool_view(access, Priced(pool_id, unit_cost), row, now)


class CreditNumbers(TypedDict):
    """What a credit-priced feature's check and usage answer add: the pool, what the call costs
    (or cost) in it and the balance (before a check, after a usage)."""

    pool: str
    cost: int
    balance: int


def numbers(pool: str, cost: int, balance: int) -> CreditNumbers:
    return {"pool": pool, "cost": cost, "balance": balance}


class Priced(NamedTuple):
    """A credit-priced feature's price, as the read found it (on the feature's own row)."""

    pool_id: int
    unit_cost: int


def priced(feature: FeatureRow) -> Priced | None:
    if feature.credit_pool_id is None or feature.credit_cost is None:
        return None
    return Priced(feature.credit_pool_id, feature.credit_cost)


def ensure_allowance(sql: Sql, pool: PoolView, now: datetime) -> bool:
    """Make the current period's allowance bucket, once (a concurrent maker's wins): the
    previous period's bucket is emptied (`expiry`) and the plan's rollover carried over.
    Returns whether this call made it."""
    allowance, period = pool.allowance, pool.period
    if allowance is None or period is None:
        return False
    if not rules.allowance_due(allowance, period, pool.buckets):
        return False
    made = repository.new_bucket(
        sql,
        tenant_id=pool.tenant_id,
        pool_id=pool.pool_id,
        source="allowance",
        source_key=period.key,
        granted=allowance.amount,
        expires_at=period.resets_at,
        now=now,
    )
    if made is None:
        return False
    key = f"allowance:{pool.pool_key}:{period.key}"
    entries = [_entry(pool, made, "allowance", allowance.amount, key, now)]
    previous = repository.previous_allowance(
        sql, tenant_id=pool.tenant_id, pool_id=pool.pool_id, before=made
    )
    if previous is not None and previous.remaining and not rules.usable(previous.expires_at, now):
        rolled = rules.rolled_over(
            previous, rules.period_start(period), allowance.rollover_cap, now
        )
        repository.take(sql, previous.id, previous.remaining)
        entries.append(
            _entry(pool, previous.id, "expiry", -previous.remaining, f"expiry:{previous.id}", now)
        )
        if rolled:
            repository.add(sql, made, rolled)
            entries.append(_entry(pool, made, "rollover", rolled, f"rollover:{key}", now))
    repository.insert_entries(sql, entries)
    return True


@dataclass(slots=True)
class Deduction:
    """How a use's cost is taken, decided in the writer's transaction on the buckets read
    under lock (see `deduction`)."""

    pool: PoolView
    cost: int
    spread: rules.Spread
    refused: bool  # the cost passes the balance and may not: nothing is to be written

    @property
    def numbers(self) -> CreditNumbers:
        return numbers(self.pool.pool_key, self.cost, self.spread.balance)


def deduction(
    sql: Sql, price: Priced, access: Access, quantity: int, now: datetime, *, enforce: bool
) -> Deduction:
    """Lock the tenant's buckets of the pool (one statement, which also reads the plan's
    allowance; its first use in a period makes the period's bucket), and spread the cost over
    them, soonest-expiring first. Enforced, a cost past the balance is refused unless the plan
    allows overage; without `enforce` the use happened: what the balance does not cover is
    recorded as overage."""
    plan_id = access.plan.id if access.plan else None
    state = repository.lock_state(
        sql, pool_id=price.pool_id, plan_id=plan_id, tenant_id=access.tenant_id
    )
    pool = _pool_view(access, price, state, now)
    if ensure_allowance(sql, pool, now):  # the period's first movement: read it again
        state = repository.lock_state(
            sql, pool_id=price.pool_id, plan_id=plan_id, tenant_id=access.tenant_id
        )
        pool = _pool_view(access, price, state, now)
    cost = pool.cost(quantity)
    spread = rules.spread(pool.buckets, cost, now)
    refused = bool(spread.overage) and enforce and pool.overage_feature_id is None
    if refused and release_expired(sql, pool, now):  # expired holds first go back, then again
        state = repository.lock_state(
            sql, pool_id=price.pool_id, plan_id=plan_id, tenant_id=access.tenant_id
        )
        pool = _pool_view(access, price, state, now)
        spread = rules.spread(pool.buckets, cost, now)
        refused = bool(spread.overage)
    return Deduction(pool, cost, spread, refused)


def lock_order(tenant_id: int) -> tuple[int, int, str]:
    """Where a write that locks a tenant's buckets runs among the jobs of a writer's group
    (`hotpath.Writer.run`), which are ordered by (tenant, feature, period): first of its
    tenant's, before any job that locks one of the tenant's counters (feature ids start at 1).
    Every such write takes its bucket before its counters."""
    return tenant_id, 0, ""


class WholeTake(NamedTuple):
    """A credit-priced use's common case, worked out with the read, before the write: what
    `TAKE_WHOLE_SQL` binds (PostgreSQL runs it inside usage's one statement) and, on SQLite,
    the take and its ledger row bound as the driver takes them. The writer's turn (serial on
    SQLite) then only runs the statements."""

    cost: int
    values: dict[str, Any]
    bound: repository.BoundTake | None  # SQLite's


def whole_take(
    sql: Sql,
    price: Priced,
    access: Access,
    period_keys: tuple[str, str, str],  # the day's, the month's and the billing period's
    *,
    key: str,
    feature_id: int,
    quantity: int,
    now: datetime,
) -> WholeTake:
    cost = price.unit_cost * quantity
    values = repository.take_whole_values(
        sql,
        tenant_id=access.tenant_id,
        pool_id=price.pool_id,
        plan_id=access.plan.id if access.plan else None,
        cost=cost,
        now=now,
        period_keys=period_keys,
    )
    bound = None
    if sql.is_sqlite:
        bound = repository.bind_take_whole(
            sql, values, key=key, feature_id=feature_id, quantity=quantity
        )
    return WholeTake(cost, values, bound)


def take_whole(sql: Sql, take: WholeTake) -> repository.TookWhole | None:
    """SQLite's common case of a deduction, one statement: the cost whole out of the first
    bucket in deduction order, when no allowance bucket is due and none expired with credits
    left (`repository.take_whole`). None: nothing taken, `deduction` decides."""
    return repository.take_whole(sql, present(take.bound, "SQLite's bound take"))


def log_whole_take(sql: Sql, take: WholeTake, took: repository.TookWhole) -> None:
    """The `deduction` ledger row of a take `take_whole` made."""
    repository.log_take_whole(sql, present(take.bound, "SQLite's bound take"), took)


def put_back_whole(sql: Sql, took: repository.TookWhole, cost: int) -> None:
    """Undo a take of `take_whole` inside its transaction: the use it paid for did not count."""
    repository.put_back_whole(sql, took, cost)


def release_expired(sql: Sql, pool: PoolView, now: datetime) -> int:
    """Give back what the tenant's expired reservations of the pool hold (they release
    themselves: looked for when credits fall short, and by the reservations' own calls);
    returns how many were released."""
    expired = repository.expired_held(sql, pool.tenant_id, pool.pool_id, now)
    for reservation in expired:
        give_back_held(sql, pool, reservation, reservation.amount, now)
        repository.settle(sql, reservation.id, "expired", now)
    return len(expired)


def give_back_held(
    sql: Sql, pool: PoolView, reservation: repository.ReservationRow, amount: int, now: datetime
) -> None:
    """Return `amount` of what a reservation holds to the buckets it came from, the last taken
    first (the soonest-expiring credits stay spent), with `release` ledger rows. What returns
    to a refunded top-up's bucket is then taken back as far as its refunds could not take it
    (see `unrecovered`): a refund is not undone by giving a hold back."""
    key = f"reservation:{reservation.public_id}"
    entries = []
    to_topups = []
    left = amount
    for part, (bucket_id, held) in enumerate(
        reversed(repository.held_parts(sql, pool.tenant_id, key))
    ):
        if left == 0:
            break
        back = min(held, left)
        source, source_key = repository.give_back(sql, bucket_id, back)
        entries.append(
            _entry(pool, bucket_id, "release", back, key, now, part, reservation.feature_id)
        )
        if source == "topup":
            to_topups.append(unrecovered.Returned(bucket_id, source_key, back))
        left -= back
    repository.insert_entries(sql, entries)
    unrecovered.take_back(
        sql,
        tenant_id=pool.tenant_id,
        pool_id=pool.pool_id,
        returned=to_topups,
        reservation=reservation.public_id,
        now=now,
    )


def _pool_view(access: Access, price: Priced, row: repository.PoolRow, now: datetime) -> PoolView:
    allowance = row.allowance
    period = None
    if allowance is not None:
        period = period_for(allowance.reset, now, access.subscription)  # type: ignore[arg-type]
    return PoolView(
        access.tenant_id, price.pool_id, row.key, price.unit_cost, allowance, period, row.buckets
    )


def apply(
    sql: Sql, taken: Deduction, *, key: str, feature_id: int, quantity: int, now: datetime
) -> None:
    """Write a deduction: each bucket's take with its ledger row (one per bucket, numbered),
    each expired bucket emptied (`expiry`), and the overage's row (no bucket)."""
    pool, spread = taken.pool, taken.spread
    entries = [
        _entry(pool, bucket_id, "deduction", -credits, key, now, part, feature_id, quantity)
        for part, (bucket_id, credits) in enumerate(spread.takes)
    ]
    entries += [
        _entry(pool, bucket_id, "expiry", -left, f"expiry:{bucket_id}", now)
        for bucket_id, left in spread.expired
    ]
    if spread.overage:
        entries.append(
            _entry(pool, None, "overage", -spread.overage, key, now, 0, feature_id, quantity)
        )
    repository.take_and_log(sql, [*spread.takes, *spread.expired], entries)


def write_takes(sql: Sql, taken: Deduction, entries: list[Entry], now: datetime) -> None:
    """A deduction's takes with `entries` for them, and an `expiry` row per expired bucket."""
    spread = taken.spread
    expiries = [
        _entry(taken.pool, bucket_id, "expiry", -left, f"expiry:{bucket_id}", now)
        for bucket_id, left in spread.expired
    ]
    repository.take_and_log(sql, [*spread.takes, *spread.expired], entries + expiries)


def reservation_entry(
    pool: PoolView,
    bucket_id: int,
    amount: int,
    public_id: str,
    now: datetime,
    part: int,
    feature_id: int,
    kind: str = "reservation",
) -> Entry:
    return _entry(pool, bucket_id, kind, amount, f"reservation:{public_id}", now, part, feature_id)


def _entry(
    pool: PoolView,
    bucket_id: int | None,
    kind: str,
    amount: int,
    key: str,
    now: datetime,
    part: int = 0,
    feature_id: int | None = None,
    quantity: int | None = None,
) -> Entry:
    return Entry(
        pool.tenant_id, pool.pool_id, bucket_id, kind, part, amount, key, feature_id, quantity,
        None, None, now,
    )  # fmt: skip


# --- Balances: `GET /v1/tenants/{tenant}/balances` ----------------------------------------------


def movements_due(sql: Sql, access: Access, project_id: int, now: datetime) -> list[PoolView]:
    """The project's pools where the tenant has a movement due before its balances are shown:
    the current period's allowance not yet in its bucket, or expired reservations still
    holding credits (see `settle_due`)."""
    views = [
        view_of_pool(sql, access, pool_id, 0, now)
        for pool_id, _, _ in repository.project_pools(sql, project_id)
    ]
    return [
        v
        for v in views
        if rules.allowance_due(v.allowance, v.period, v.buckets)
        or repository.expired_holds(sql, access.tenant_id, v.pool_id, now)
    ]


def settle_due(sql: Sql, pools: list[PoolView], now: datetime) -> None:
    """Make the movements `movements_due` found, in the writer's transaction (each is made
    once, whoever comes first)."""
    for pool in pools:
        ensure_allowance(sql, pool, now)
        release_expired(sql, pool, now)


def balances(sql: Sql, access: Access, project_id: int, now: datetime) -> dict[str, Any]:
    """Every pool of the project as the tenant holds it: the balance, the buckets (in
    deduction order) and the newest ledger rows. The balance is the sum of the usable
    buckets, each of which is the sum of its ledger rows."""
    return balances_of_tenant(sql, access.tenant_id, access.tenant_key, project_id, now)


def balances_in(
    session: Session, project: Project, tenant_id: int, tenant_key: str, now: datetime
) -> dict[str, Any]:
    """`balances` inside an ORM transaction (the dashboard's tenant page), as stored: a
    period's allowance not made into its bucket yet is not among them."""
    sql = Sql(session.connection().connection.cursor(), session.get_bind().dialect)
    return balances_of_tenant(sql, tenant_id, tenant_key, project.id, now)


def balances_of_tenant(
    sql: Sql, tenant_id: int, tenant_key: str, project_id: int, now: datetime
) -> dict[str, Any]:
    answer = []
    for pool_id, key, name in repository.project_pools(sql, project_id):
        buckets = [
            {
                "id": int(id_),
                "source": source,
                "source_key": source_key,
                "granted": int(granted),
                "remaining": int(remaining),
                "expires_at": _utc(expires_at),
                "created_at": _utc(created_at),
            }
            for id_, source, source_key, granted, remaining, expires_at, created_at in (
                repository.buckets_of(sql, tenant_id=tenant_id, pool_id=pool_id)
            )
        ]
        live = [b for b in buckets if rules.usable(b["expires_at"], now)]
        ledger = [
            _ledger_entry(row)
            for row in repository.ledger_of(
                sql, tenant_id=tenant_id, pool_id=pool_id, limit=LEDGER_SHOWN
            )
        ]
        answer.append(
            {
                "pool": key,
                "name": name,
                "balance": sum(b["remaining"] for b in live),
                "buckets": [b for b in buckets if b["remaining"] > 0 or b in live],
                "ledger": ledger,
            }
        )
    return {"tenant": tenant_key, "pools": answer}


LEDGER_SHOWN = 50


def _ledger_entry(row: Any) -> dict[str, Any]:
    id_, kind, amount, bucket, ikey, feature, quantity, reason, created_at, unrecovered = row
    return {
        "id": int(id_),
        "kind": kind,
        "amount": int(amount),
        "bucket": bucket,
        "idempotency_key": ikey,
        "feature": feature,
        "quantity": quantity,
        "reason": reason,
        "created_at": _utc(created_at),
        "unrecovered": None if unrecovered is None else int(unrecovered),
    }


def _utc(value: Any) -> datetime | None:
    return utc(value)


# --- The operator's side: pools, prices, allowances, grants -------------------------------------


class PoolDescription(TypedDict):
    key: str
    name: str
    costs: dict[str, int]
    packs: dict[str, int]
    allowances: dict[str, dict[str, Any]]


def get_pool(session: Session, project: Project, key: str) -> CreditPool:
    found = repository.pool(session, project.id, key)
    if found is None:
        raise PoolNotFound(f"No credit pool '{key}' in project '{project.key}'.")
    return found


def describe(session: Session, pool: CreditPool) -> PoolDescription:
    return {
        "key": pool.key,
        "name": pool.name,
        "costs": repository.costs(session, pool.id),
        "packs": repository.packs(session, pool.id),
        "allowances": {
            plan: {
                "grant": a.amount,
                "reset": a.reset,
                "rollover": a.rollover_cap,
                "overage": overage,
            }
            for plan, a, overage in repository.allowances(session, pool.id)
        },
    }


def list_pools(session: Session, project: Project) -> list[PoolDescription]:
    return [describe(session, p) for p in repository.pools(session, project.id)]


def create_pool(
    session: Session,
    project: Project,
    *,
    key: str,
    name: str,
    costs: dict[str, int | None],
    actor: str,
    now: datetime,
    packs: dict[str, int | None] | None = None,
) -> PoolDescription:
    if repository.pool(session, project.id, key) is not None:
        raise AlreadyExists(
            f"A credit pool with key '{key}' already exists.", extra={"param": "key"}
        )
    pool = CreditPool(project_id=project.id, key=key, name=name, created_at=now)
    session.add(pool)
    session.flush()
    _set_costs(session, project, pool, costs)
    _set_packs(session, pool, packs or {})
    return _audited(session, project, pool, "create", actor=actor, now=now)


def _audited(
    session: Session,
    project: Project,
    pool: CreditPool,
    action: str,
    *,
    actor: str,
    now: datetime,
    before: PoolDescription | None = None,
) -> PoolDescription:
    """The pool as it now stands, with the change (`credit_pool.<action>`) on the audit trail."""
    after = describe(session, pool)
    audit.record(
        session,
        actor=actor,
        action=f"credit_pool.{action}",
        target=f"credit_pool:{project.key}/{pool.key}",
        project_id=project.id,
        before=before,
        after=after,
        now=now,
    )
    return after


def update_pool(
    session: Session,
    project: Project,
    key: str,
    *,
    name: str | None,
    costs: dict[str, int | None] | None,
    actor: str,
    now: datetime,
    packs: dict[str, int | None] | None = None,
) -> PoolDescription:
    pool = get_pool(session, project, key)
    before = describe(session, pool)
    if name is not None:
        pool.name = name
    if costs is not None:
        _set_costs(session, project, pool, costs)
    if packs is not None:
        _set_packs(session, pool, packs)
    session.flush()
    return _audited(session, project, pool, "update", actor=actor, now=now, before=before)


def _set_costs(
    session: Session, project: Project, pool: CreditPool, costs: dict[str, int | None]
) -> None:
    """Price each named feature in `pool` (None: no price any more). Only counted features
    have a price: an on/off feature has no quantity to charge for."""
    for feature_key, cost in costs.items():
        feature = repository.feature(session, project.id, feature_key)
        if feature is None:
            raise FeatureNotFound(
                f"No feature '{feature_key}' in project '{project.key}'.",
                extra={"param": f"costs.{feature_key}"},
            )
        if feature.type == "boolean":
            raise InvalidInput(
                f"Feature '{feature_key}' is an on/off feature; only limit and metered "
                "features can cost credits.",
                extra={"param": f"costs.{feature_key}"},
            )
        priced = repository.cost_of(session, feature.id)
        if cost is None:
            if priced is not None and priced.pool_id == pool.id:
                session.delete(priced)
            continue
        if priced is not None and priced.pool_id != pool.id:
            raise AlreadyExists(
                f"Feature '{feature_key}' is priced in another pool; remove that price first.",
                extra={"param": f"costs.{feature_key}"},
            )
        if priced is None:
            session.add(CreditCost(feature_id=feature.id, pool_id=pool.id, cost=cost))
        else:
            priced.cost = cost
    session.flush()


def _set_packs(session: Session, pool: CreditPool, packs: dict[str, int | None]) -> None:
    """Sell each named one-time price as a top-up of so many credits (None: no more)."""
    for price, credits in packs.items():
        found = repository.pack(session, pool.id, price)
        if credits is None:
            if found is not None:
                session.delete(found)
        elif found is None:
            session.add(CreditPack(pool_id=pool.id, stripe_price_id=price, credits=credits))
        else:
            found.credits = credits
    session.flush()


def topup_pack(session: Session, project: Project, price: str) -> tuple[CreditPool, int]:
    """The pool a one-time price tops up, and by how many credits (404 if none sells it)."""
    found = repository.pack_of(session, project.id, price)
    if found is None:
        raise PoolNotFound(
            f"No credit pool of project '{project.key}' sells price '{price}' as a top-up.",
            extra={"param": "price"},
        )
    pool, pack = found
    return pool, pack.credits


def set_allowance(
    session: Session,
    project: Project,
    pool_key: str,
    plan_key: str,
    *,
    amount: int,
    reset: Reset,
    rollover: int,
    overage: str | None,
    actor: str,
    now: datetime,
) -> PoolDescription:
    """What the plan gives of the pool each period (`rollover`: how much unused allowance the
    next period gets, at most one period's `amount`), and the metered feature its overage is
    counted in (None: no overage, a deduction must fit the balance)."""
    pool = get_pool(session, project, pool_key)
    plan = repository.plan(session, project.id, plan_key)
    if plan is None:
        raise PlanNotFound(f"No plan '{plan_key}' in project '{project.key}'.")
    if rollover > amount:
        raise InvalidInput(
            f"'rollover' ({rollover}) may be at most the period's 'amount' ({amount}).",
            extra={"param": "rollover"},
        )
    if reset == "never" and rollover:
        raise InvalidInput(
            "An allowance that never resets has no next period to roll over into.",
            extra={"param": "rollover"},
        )
    overage_id = None
    if overage is not None:
        feature = repository.feature(session, project.id, overage)
        if feature is None or feature.type != "metered":
            raise InvalidInput(
                f"'overage' must name a metered feature of project '{project.key}'.",
                extra={"param": "overage"},
            )
        overage_id = feature.id
    before = describe(session, pool)
    found = repository.allowance_of(session, plan.id, pool.id)
    if found is None:
        found = PlanAllowance(plan_id=plan.id, pool_id=pool.id)
        session.add(found)
    found.amount, found.reset, found.rollover_cap = amount, reset, rollover
    found.overage_feature_id = overage_id
    session.flush()
    return _audited(session, project, pool, "allowance", actor=actor, now=now, before=before)


class GrantDescription(TypedDict):
    tenant: str
    pool: str
    amount: int
    reason: str
    idempotency_key: str
    bucket: int
    expires_at: datetime | None
    created_at: datetime


def grant(
    session: Session,
    project: Project,
    tenant_key: str,
    given: GrantIn,
    *,
    actor: str,
    now: datetime,
) -> tuple[GrantDescription, bool]:
    """Give a tenant credits (a bucket of source `grant` and its ledger row), audited. A
    repeat of the idempotency key with the same pool and amount answers the first grant
    (False: nothing new); with another, 409."""
    pool_key, amount, reason = given.pool, given.amount, given.reason
    expires_at, idempotency_key = given.expires_at, given.idempotency_key
    pool = get_pool(session, project, pool_key)
    tenant = repository.tenant(session, project.id, tenant_key)
    if tenant is None:
        raise TenantNotFound(f"No tenant '{tenant_key}' in project '{project.key}'.")
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("'expires_at' lies in the past.", extra={"param": "expires_at"})
    key = idempotency_key or f"grant-{uuid.uuid4()}"
    earlier = repository.bucket_by_source(session, tenant.id, pool.id, "grant", key)
    if earlier is None:
        earlier = CreditBucket(
            tenant_id=tenant.id,
            pool_id=pool.id,
            source="grant",
            source_key=key,
            granted=amount,
            remaining=amount,
            expires_at=expires_at,
            created_at=now,
        )
        session.add(earlier)
        session.flush()
        session.add(
            CreditEntry(
                tenant_id=tenant.id,
                pool_id=pool.id,
                bucket_id=earlier.id,
                kind="grant",
                part=0,
                amount=amount,
                idempotency_key=key,
                reason=reason,
                actor=actor,
                created_at=now,
            )
        )
        created = True
    elif earlier.granted != amount:
        raise IdempotencyKeyReused(
            f"Idempotency key '{key}' was already used for a grant of {earlier.granted}.",
            extra={"param": "idempotency_key"},
        )
    else:
        created = False
    described: GrantDescription = {
        "tenant": tenant.key,
        "pool": pool.key,
        "amount": earlier.granted,
        "reason": reason,
        "idempotency_key": key,
        "bucket": earlier.id,
        "expires_at": earlier.expires_at,
        "created_at": earlier.created_at,
    }
    if created:
        audit.record(
            session,
            actor=actor,
            action="credits.grant",
            target=f"tenant:{project.key}/{tenant.key}",
            project_id=project.id,
            after={**described, "expires_at": _iso(expires_at), "created_at": _iso(now)},
            now=now,
        )
    return described, created


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def check(
    sql: Sql,
    access: Access,
    feature: FeatureRow,
    answer: dict[str, Any],
    quantity: int,
    now: datetime,
) -> None:
    """Add a credit-priced feature's numbers to its check's `answer` (nothing for a feature
    without a price): an allowed use whose cost does not fit is `insufficient_credits`."""
    pool = view(sql, access, feature, now)
    if pool is None:
        return
    balance = pool.balance(now)
    answer.update(numbers(pool.pool_key, pool.cost(quantity), balance))
    if answer["allowed"] and pool.overage_feature_id is None and pool.cost(quantity) > balance:
        answer["allowed"], answer["reason"] = False, "insufficient_credits"
