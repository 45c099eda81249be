"""All SQL about credits: pools, costs, allowances, buckets and the ledger.

A deduction runs in the hot path's writer transaction: the tenant's buckets of the pool are
read under lock (`FOR UPDATE` on PostgreSQL; SQLite's write transaction holds the database),
so what is taken from each is decided on their current values, and each take is a guarded
update (`remaining >= take`) that the database also bounds at zero (a check constraint). The
statements are Core, compiled once (see `hotpath`); the operator's side reads through the ORM.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    ClauseElement,
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert, Update
from sqlalchemy.sql.elements import BindParameter

from billplane.errors import present
from billplane.hotpath import Bound, Sql, Statement, rows_in, utc
from billplane.models import (
    CreditBucket,
    CreditCost,
    CreditEntry,
    CreditPack,
    CreditPool,
    CreditReservation,
    CreditTopup,
    Feature,
    Plan,
    PlanAllowance,
    Tenant,
    Token,
)
from billplane.models.credits import MOVEMENT, UNCHAINED

_BUCKETS = cast(Table, CreditBucket.__table__)
_LEDGER = cast(Table, CreditEntry.__table__)
_ENTRY_COLUMNS = [
    _LEDGER.c[name]
    for name in (
        "tenant_id",
        "pool_id",
        "bucket_id",
        "kind",
        "part",
        "amount",
        "idempotency_key",
        "feature_id",
        "quantity",
        "reason",
        "actor",
        "created_at",
    )
]


class BucketRow(NamedTuple):
    id: int
    source: str
    source_key: str
    remaining: int
    expires_at: datetime | None


class AllowanceRow(NamedTuple):
    amount: int
    reset: str
    rollover_cap: int
    overage_feature_id: int | None


class PoolRow(NamedTuple):
    """A pool as one tenant sees it: the effective plan's allowance and the buckets that count
    (those with credits left, and the newest allowance bucket, which a rollover starts from)."""

    key: str
    allowance: AllowanceRow | None
    buckets: list[BucketRow]


def _soonest_expiring_first(b: Any) -> tuple[Any, ...]:
    """The order credits are taken in: soonest-expiring first, never-expiring last, then the
    oldest bucket first (the documented deduction order)."""
    return b.c.expires_at.is_(None), b.c.expires_at, b.c.id


def _pool_state(_: str) -> Select[Any]:
    cp = CreditPool.__table__.alias("cp")
    pa = PlanAllowance.__table__.alias("pa")
    b = _BUCKETS.alias("b")
    b2 = _BUCKETS.alias("b2")
    newest_allowance = (
        select(func.max(b2.c.id))
        .where(
            b2.c.tenant_id == bindparam("tenant_id"),
            b2.c.pool_id == cp.c.id,
            b2.c.source == "allowance",
        )
        .scalar_subquery()
    )
    source = cp.outerjoin(
        pa, and_(pa.c.pool_id == cp.c.id, pa.c.plan_id == bindparam("plan_id"))
    ).outerjoin(
        b,
        and_(
            b.c.tenant_id == bindparam("tenant_id"),
            b.c.pool_id == cp.c.id,
            or_(b.c.remaining > 0, b.c.id == newest_allowance),
        ),
    )
    columns = [
        cp.c.key, pa.c.amount, pa.c.reset, pa.c.rollover_cap, pa.c.overage_feature_id,
        b.c.id, b.c.source, b.c.source_key, b.c.remaining, b.c.expires_at,
    ]  # fmt: skip
    return (
        select(*columns)
        .select_from(source)
        .where(cp.c.id == bindparam("pool_id"))
        .order_by(*_soonest_expiring_first(b))
    )


POOL_STATE = Statement(_pool_state)


def _locked(dialect: str, query: Select[Any]) -> Select[Any]:
    # SQLite's write transaction holds the whole database; PostgreSQL locks the rows, in order.
    return query.with_for_update() if dialect == "postgresql" else query


def _lock_state(dialect: str) -> Select[Any]:
    """The pool, the plan's allowance of it and the tenant's buckets with credits left, those
    locked (a CTE: PostgreSQL locks no row on the nullable side of an outer join)."""
    b = _BUCKETS
    locked = _locked(
        dialect,
        select(b.c.id, b.c.source, b.c.source_key, b.c.remaining, b.c.expires_at)
        .where(
            b.c.tenant_id == bindparam("tenant_id"),
            b.c.pool_id == bindparam("pool_id"),
            b.c.remaining > 0,
        )
        .order_by(*_soonest_expiring_first(b)),
    ).cte("locked")
    cp = CreditPool.__table__.alias("cp")
    pa = PlanAllowance.__table__.alias("pa")
    source = cp.outerjoin(
        pa, and_(pa.c.pool_id == cp.c.id, pa.c.plan_id == bindparam("plan_id"))
    ).outerjoin(locked, true())
    columns = [
        cp.c.key, pa.c.amount, pa.c.reset, pa.c.rollover_cap, pa.c.overage_feature_id,
        *locked.c,
    ]  # fmt: skip
    return (
        select(*columns)
        .select_from(source)
        .where(cp.c.id == bindparam("pool_id"))
        .order_by(*_soonest_expiring_first(locked))
    )


LOCK_STATE = Statement(_lock_state)
PREVIOUS_ALLOWANCE = Statement(
    lambda dialect: _locked(
        dialect,
        select(
            _BUCKETS.c.id,
            _BUCKETS.c.source,
            _BUCKETS.c.source_key,
            _BUCKETS.c.remaining,
            _BUCKETS.c.expires_at,
        )
        .where(
            _BUCKETS.c.tenant_id == bindparam("tenant_id"),
            _BUCKETS.c.pool_id == bindparam("pool_id"),
            _BUCKETS.c.source == "allowance",
            _BUCKETS.c.id < bindparam("bucket_id"),
        )
        .order_by(_BUCKETS.c.id.desc())
        .limit(1),
    )
)
TAKE = Statement(
    lambda _: (
        update(_BUCKETS)
        .where(_BUCKETS.c.id == bindparam("bucket_id"), _BUCKETS.c.remaining >= bindparam("take"))
        .values(remaining=_BUCKETS.c.remaining - bindparam("take"))
        .returning(_BUCKETS.c.remaining)
    )
)
# The common case of a credit-priced usage's take, in one statement (either engine: SQLite runs
# it alone, PostgreSQL as the first step of usage's one-statement charge). The whole cost comes
# out of the first bucket in deduction order, if that bucket is live and holds it all and the
# plan's allowance for the period has its bucket (no bucket is due to be made, none to be
# emptied: an expired one with credits left would come first). Answers the bucket, the balance
# left (this bucket's and the other live ones') and the pool's key; no row: the common case
# does not hold and nothing changed (`credits.service.deduction` decides the rest). The guard
# on `remaining` is checked on the row as it is when updated, so racing takes never overdraw.
#
# The take also chains the ledger row it is for to the bucket (see `CreditEntry.previous_id`):
# the row's id is chosen here (`{next_id}`: SQLite's writer is alone, so the next rowid;
# PostgreSQL's sequence), the bucket's newest chained row becomes that one and the one before
# moves to `previous_deduction_id`; both are answered for the row's insert.
TAKE_WHOLE_SQL = """
UPDATE credit_buckets SET remaining = remaining - :cost,
  previous_deduction_id = COALESCE(last_deduction_id, 0),
  last_deduction_id = {next_id}
WHERE id = (SELECT id FROM credit_buckets
            WHERE tenant_id = :tenant_id AND pool_id = :pool_id AND remaining > 0
            ORDER BY expires_at IS NULL, expires_at, id LIMIT 1)
  AND remaining >= :cost
  AND (expires_at IS NULL OR expires_at > :now)
  AND NOT EXISTS (
    SELECT 1 FROM plan_allowances pa
    WHERE pa.plan_id = :plan_id AND pa.pool_id = :pool_id
      AND NOT EXISTS (
        SELECT 1 FROM credit_buckets ab
        WHERE ab.tenant_id = :tenant_id AND ab.pool_id = :pool_id AND ab.source = 'allowance'
          AND ab.source_key = CASE pa.reset WHEN 'never' THEN 'never'
                                            WHEN 'day' THEN :day_key
                                            WHEN 'month' THEN :month_key
                                            ELSE :billing_key END))
RETURNING id,
  remaining + (SELECT COALESCE(SUM(o.remaining), 0) FROM credit_buckets o
               WHERE o.tenant_id = :tenant_id AND o.pool_id = :pool_id AND o.remaining > 0
                 AND o.id <> credit_buckets.id
                 AND (o.expires_at IS NULL OR o.expires_at > :now)),
  (SELECT key FROM credit_pools WHERE id = :pool_id),
  last_deduction_id, previous_deduction_id
"""
_NEXT_LEDGER_ID = {
    "sqlite": "(SELECT COALESCE(MAX(id), 0) + 1 FROM credit_ledger)",
    "postgresql": "nextval('credit_ledger_id_seq')",
}


def take_whole_sql(dialect: str) -> str:
    """`TAKE_WHOLE_SQL` for `dialect`."""
    return TAKE_WHOLE_SQL.format(next_id=_NEXT_LEDGER_ID[dialect])


TAKE_WHOLE = Statement(lambda dialect: text(take_whole_sql(dialect)))


def _log_take_whole(_: str) -> Insert:
    """SQLite: that take's ledger row, chained to its bucket; the bucket, the row's id and the
    previous chained row are bound last (the take finds them, in the turn)."""
    values: dict[str, ColumnElement[Any]] = {
        "tenant_id": bindparam("tenant_id"),
        "pool_id": bindparam("pool_id"),
        "kind": literal("deduction"),
        "part": literal(0),
        "amount": -bindparam("cost"),
        "idempotency_key": bindparam("key"),
        "feature_id": bindparam("feature_id"),
        "quantity": bindparam("quantity"),
        "created_at": bindparam("now"),
        "bucket_id": bindparam("bucket_id"),
        "id": bindparam("id"),
        "previous_id": bindparam("previous_id"),
    }
    return insert(_LEDGER).from_select(list(values), select(*values.values()))


LOG_TAKE_WHOLE = Statement(_log_take_whole)


def _put_in(**also: Any) -> Update:
    """`amount` credits into the bucket `bucket_id`, and whatever else the bucket's row gets."""
    return (
        update(_BUCKETS)
        .where(_BUCKETS.c.id == bindparam("bucket_id"))
        .values(remaining=_BUCKETS.c.remaining + bindparam("amount"), **also)
    )


ADD = Statement(lambda _: _put_in(granted=_BUCKETS.c.granted + bindparam("amount")))


def _new_bucket(dialect: str) -> ClauseElement:
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    names = ("tenant_id", "pool_id", "source", "source_key", "granted", "expires_at")
    values: dict[str, Any] = {n: bindparam(n) for n in (*names, "created_at")}
    stmt = insert_(_BUCKETS).values({**values, "remaining": bindparam("granted")})
    return stmt.on_conflict_do_nothing(
        index_elements=["tenant_id", "pool_id", "source", "source_key"]
    ).returning(_BUCKETS.c.id)


NEW_BUCKET = Statement(_new_bucket)


_TAKE_COLUMNS = [_BUCKETS.c.id, _BUCKETS.c.remaining]  # (bucket id, credits taken)


def _take_all(dialect: str) -> Any:
    """Every take of a movement, each guarded (`remaining >= take`); returns the buckets taken
    from (fewer than asked: a guard failed)."""
    takes = rows_in(dialect, "takes", _TAKE_COLUMNS)
    return (
        update(_BUCKETS)
        .where(_BUCKETS.c.id == takes.c.id, _BUCKETS.c.remaining >= takes.c.remaining)
        .values(remaining=_BUCKETS.c.remaining - takes.c.remaining)
        .returning(_BUCKETS.c.id)
    )


def _insert_entries(dialect: str) -> Any:
    rows = rows_in(dialect, "entries", _ENTRY_COLUMNS)
    return insert(_LEDGER).from_select([c.name for c in _ENTRY_COLUMNS], select(*rows.c))


def _take_and_log(dialect: str) -> Select[Any]:
    """PostgreSQL: the takes and the ledger rows in one statement, one round trip (its
    data-modifying CTEs run in one snapshot); answers how many takes and rows were written."""
    taken = _take_all(dialect).cte("taken")
    logged = _insert_entries(dialect).returning(_LEDGER.c.id).cte("logged")
    return select(
        select(func.count()).select_from(taken).scalar_subquery(),
        select(func.count()).select_from(logged).scalar_subquery(),
    )


TAKE_AND_LOG = Statement(_take_and_log)
INSERT_ENTRIES = Statement(_insert_entries)


def pool_state(sql: Sql, *, pool_id: int, plan_id: int | None, tenant_id: int) -> PoolRow:
    """One statement: the pool, the plan's allowance of it, the tenant's buckets that count."""
    values = {"pool_id": pool_id, "plan_id": plan_id, "tenant_id": tenant_id}
    return _pool_row(sql.run(POOL_STATE, values))


def lock_state(sql: Sql, *, pool_id: int, plan_id: int | None, tenant_id: int) -> PoolRow:
    """`pool_state` for a deduction, in the writer's transaction: the buckets with credits
    left, locked, soonest-expiring first (an emptied allowance bucket is not among them)."""
    values = {"pool_id": pool_id, "plan_id": plan_id, "tenant_id": tenant_id}
    return _pool_row(sql.run(LOCK_STATE, values))


class TookWhole(NamedTuple):
    """A take `take_whole` made: the bucket, the balance left and the pool's key; the id its
    ledger row takes and the bucket's chained row before it (0: none)."""

    bucket_id: int
    balance: int
    pool: str
    ledger_id: int
    previous_id: int


class BoundTake(NamedTuple):
    """SQLite: a whole take and its ledger row, bound before the writer's turn, which is
    serial across the workers (`bind_take_whole`)."""

    take: Bound
    log: Bound  # but for the bucket


def bind_take_whole(
    sql: Sql, values: dict[str, Any], *, key: str, feature_id: int, quantity: int
) -> BoundTake:
    """SQLite: `take_whole` and `log_take_whole` bound with `values` (`take_whole_values`) and
    what the ledger row says of the use: its key, feature and quantity."""
    entry = {**values, "key": key, "feature_id": feature_id, "quantity": quantity}
    return BoundTake(sql.bind(TAKE_WHOLE, values), sql.bind(LOG_TAKE_WHOLE, entry, later=3))


def take_whole(sql: Sql, bound: BoundTake) -> TookWhole | None:
    """SQLite: take a cost whole out of the first bucket in deduction order, in the common case
    only (see `TAKE_WHOLE_SQL`); None: nothing was taken."""
    rows = sql.run_bound(bound.take)
    return took_whole(rows[0]) if rows else None


def log_take_whole(sql: Sql, bound: BoundTake, took: TookWhole) -> None:
    """SQLite: the `deduction` ledger row of the take `took`, chained to its bucket."""
    sql.run_bound(bound.log, took.bucket_id, took.ledger_id, took.previous_id)


def take_whole_values(
    sql: Sql,
    *,
    tenant_id: int,
    pool_id: int,
    plan_id: int | None,
    cost: int,
    now: datetime,
    period_keys: tuple[str, str, str],  # the day's, the month's and the billing period's
) -> dict[str, Any]:
    """What `TAKE_WHOLE_SQL` binds, wherever it runs."""
    day_key, month_key, billing_key = period_keys
    return {
        "tenant_id": tenant_id,
        "pool_id": pool_id,
        "plan_id": plan_id,
        "cost": cost,
        "now": sql.time(now),
        "day_key": day_key,
        "month_key": month_key,
        "billing_key": billing_key,
    }


TOOK_WHOLE_COLUMNS = 5


def took_whole(row: Sequence[Any]) -> TookWhole:
    """The take `TAKE_WHOLE_SQL` made, from its first `TOOK_WHOLE_COLUMNS` columns."""
    bucket_id, balance, pool, ledger_id, previous_id = row[:TOOK_WHOLE_COLUMNS]
    return TookWhole(int(bucket_id), int(balance), pool, int(ledger_id), int(previous_id))


def _pool_row(rows: Sequence[Sequence[Any]]) -> PoolRow:
    key, amount, reset, cap, overage = rows[0][:5]
    allowance = None if amount is None else AllowanceRow(int(amount), reset, int(cap), overage)
    buckets = [
        BucketRow(int(id_), source, source_key, int(remaining), utc(expires))
        for *_, id_, source, source_key, remaining, expires in rows
        if id_ is not None
    ]
    return PoolRow(key, allowance, buckets)


def previous_allowance(sql: Sql, *, tenant_id: int, pool_id: int, before: int) -> BucketRow | None:
    """The allowance bucket made before bucket `before`, locked."""
    values = {"tenant_id": tenant_id, "pool_id": pool_id, "bucket_id": before}
    rows = sql.run(PREVIOUS_ALLOWANCE, values)
    if not rows:
        return None
    id_, source, source_key, remaining, expires = rows[0]
    return BucketRow(int(id_), source, source_key, int(remaining), utc(expires))


def take(sql: Sql, bucket_id: int, amount: int) -> None:
    """Take `amount` out of a locked bucket; the guard holds because the caller read it locked."""
    if not sql.run(TAKE, {"bucket_id": bucket_id, "take": amount}):
        raise RuntimeError(f"bucket {bucket_id} holds less than {amount} under its lock")


def add(sql: Sql, bucket_id: int, amount: int) -> None:
    sql.run(ADD, {"bucket_id": bucket_id, "amount": amount})


def new_bucket(
    sql: Sql,
    *,
    tenant_id: int,
    pool_id: int,
    source: str,
    source_key: str,
    granted: int,
    expires_at: datetime | None,
    now: datetime,
) -> int | None:
    """A new bucket holding `granted`; None when one with that source key exists already."""
    values = {
        "tenant_id": tenant_id,
        "pool_id": pool_id,
        "source": source,
        "source_key": source_key,
        "granted": granted,
        "expires_at": None if expires_at is None else sql.time(expires_at),
        "created_at": sql.time(now),
    }
    rows = sql.run(NEW_BUCKET, values)
    return int(rows[0][0]) if rows else None


class Entry(NamedTuple):
    """A ledger row to write (see `models.CreditEntry`)."""

    tenant_id: int
    pool_id: int
    bucket_id: int | None
    kind: str
    part: int
    amount: int
    idempotency_key: str
    feature_id: int | None
    quantity: int | None
    reason: str | None
    actor: str | None
    created_at: datetime


def insert_entries(sql: Sql, entries: Sequence[Entry]) -> None:
    """Ledger rows, in one statement; a movement written before makes it fail (unique key)."""
    if entries:
        records = [e._asdict() for e in entries]
        sql.run(INSERT_ENTRIES, sql.rows("entries", _ENTRY_COLUMNS, records))


def take_and_log(sql: Sql, takes: Sequence[tuple[int, int]], entries: Sequence[Entry]) -> None:
    """Take credits out of locked buckets, (bucket id, credits) each, and write the movement's
    ledger rows: one statement on PostgreSQL; on SQLite an update and the rows' inserts (in
    process, no round trips). The guards hold because the caller read the buckets locked."""
    wanted = len(takes)
    if sql.is_sqlite:  # in-process statements: one prepared update per take costs least
        taken = sum(len(sql.run(TAKE, {"bucket_id": b, "take": t})) for b, t in takes)
        log(sql, entries)
    else:
        values = {**_takes(sql, takes), **sql.rows("entries", _ENTRY_COLUMNS, _records(entries))}
        taken = int(sql.run(TAKE_AND_LOG, values)[0][0])
    if taken != wanted:
        raise RuntimeError(f"{wanted - taken} of {wanted} takes found less than taken under lock")


def log(sql: Sql, entries: Sequence[Entry]) -> None:
    """SQLite: ledger rows of takes already made, one prepared insert stepped per row."""
    stored = sql.times(as_text=False)
    sql.insert_rows(_LEDGER, ENTRY_ROW, [(*e[:-1], stored(e.created_at)) for e in entries])


ENTRY_ROW = tuple(c.name for c in _ENTRY_COLUMNS)  # `Entry`'s fields, in its order


def _takes(sql: Sql, takes: Sequence[tuple[int, int]]) -> dict[str, Any]:
    records = [{"id": bucket, "remaining": credits} for bucket, credits in takes]
    return sql.rows("takes", _TAKE_COLUMNS, records)


def _records(entries: Sequence[Entry]) -> list[dict[str, Any]]:
    return [e._asdict() for e in entries]


# --- The operator's side (ORM) -------------------------------------------------------------------


def pools(session: Session, project_id: int) -> Sequence[CreditPool]:
    return session.scalars(
        select(CreditPool).where(CreditPool.project_id == project_id).order_by(CreditPool.key)
    ).all()


def pool(session: Session, project_id: int, key: str) -> CreditPool | None:
    return session.scalar(
        select(CreditPool).where(CreditPool.project_id == project_id, CreditPool.key == key)
    )


def costs(session: Session, pool_id: int) -> dict[str, int]:
    """The pool's prices: feature key -> cost per unit."""
    rows = session.execute(
        select(Feature.key, CreditCost.cost)
        .join(CreditCost, CreditCost.feature_id == Feature.id)
        .where(CreditCost.pool_id == pool_id)
        .order_by(Feature.key)
    )
    return {key: int(cost) for key, cost in rows}


def packs(session: Session, pool_id: int) -> dict[str, int]:
    rows = session.execute(
        select(CreditPack.stripe_price_id, CreditPack.credits)
        .where(CreditPack.pool_id == pool_id)
        .order_by(CreditPack.stripe_price_id)
    )
    return {price: int(credits) for price, credits in rows}


def pack_of(session: Session, project_id: int, price: str) -> tuple[CreditPool, CreditPack] | None:
    """The pool that sells `price` as a top-up, and the pack."""
    row = session.execute(
        select(CreditPool, CreditPack)
        .join(CreditPack, CreditPack.pool_id == CreditPool.id)
        .where(CreditPool.project_id == project_id, CreditPack.stripe_price_id == price)
        .order_by(CreditPool.id)
        .limit(1)
    ).first()
    return None if row is None else (row[0], row[1])


def pack(session: Session, pool_id: int, price: str) -> CreditPack | None:
    return session.scalar(
        select(CreditPack).where(CreditPack.pool_id == pool_id, CreditPack.stripe_price_id == price)
    )


def allowances(session: Session, pool_id: int) -> list[tuple[str, PlanAllowance, str | None]]:
    """The pool's allowances: (plan key, allowance, overage feature key)."""
    rows = session.execute(
        select(Plan.key, PlanAllowance, Feature.key)
        .join(PlanAllowance, PlanAllowance.plan_id == Plan.id)
        .outerjoin(Feature, Feature.id == PlanAllowance.overage_feature_id)
        .where(PlanAllowance.pool_id == pool_id)
        .order_by(Plan.key)
    )
    return [(plan, allowance, feature) for plan, allowance, feature in rows]


def feature(session: Session, project_id: int, key: str) -> Feature | None:
    return session.scalar(
        select(Feature).where(Feature.project_id == project_id, Feature.key == key)
    )


def plan(session: Session, project_id: int, key: str) -> Plan | None:
    return session.scalar(select(Plan).where(Plan.project_id == project_id, Plan.key == key))


def tenant(session: Session, project_id: int, key: str) -> Tenant | None:
    return session.scalar(select(Tenant).where(Tenant.project_id == project_id, Tenant.key == key))


def cost_of(session: Session, feature_id: int) -> CreditCost | None:
    return session.get(CreditCost, feature_id)


def allowance_of(session: Session, plan_id: int, pool_id: int) -> PlanAllowance | None:
    return session.scalar(
        select(PlanAllowance).where(
            PlanAllowance.plan_id == plan_id, PlanAllowance.pool_id == pool_id
        )
    )


def bucket_by_source(
    session: Session, tenant_id: int, pool_id: int, source: str, source_key: str
) -> CreditBucket | None:
    return session.scalar(
        select(CreditBucket).where(
            CreditBucket.tenant_id == tenant_id,
            CreditBucket.pool_id == pool_id,
            CreditBucket.source == source,
            CreditBucket.source_key == source_key,
        )
    )


def _ledger_of(_: str) -> Select[Any]:
    """The tenant's newest `limit` ledger rows in the pool: the newest in the tenant's index,
    and the newest of each bucket's chain (see `CreditEntry.previous_id`), walked from the
    bucket `limit` rows back at most."""
    tenant: BindParameter[int] = bindparam("tenant_id")
    pool: BindParameter[int] = bindparam("pool_id")
    heads = select(_BUCKETS.c.last_deduction_id.label("id"), literal(1).label("depth")).where(
        _BUCKETS.c.tenant_id == tenant,
        _BUCKETS.c.pool_id == pool,
        _BUCKETS.c.last_deduction_id.is_not(None),
    )
    chain = heads.cte("chain", recursive=True)
    row = _LEDGER.alias("row")
    chain = chain.union_all(
        select(row.c.previous_id, chain.c.depth + 1).where(
            row.c.id == chain.c.id, row.c.previous_id > 0, chain.c.depth < bindparam("limit")
        )
    )
    indexed = (
        select(_LEDGER.c.id)
        .where(_LEDGER.c.tenant_id == tenant, _LEDGER.c.pool_id == pool, UNCHAINED)
        .order_by(_LEDGER.c.id.desc())
        .limit(bindparam("limit"))
        .subquery("indexed")
    )
    newest = union_all(select(indexed.c.id), select(chain.c.id))
    return (
        select(
            _LEDGER.c.id,
            _LEDGER.c.kind,
            _LEDGER.c.amount,
            _LEDGER.c.bucket_id,
            _LEDGER.c.idempotency_key,
            Feature.key,
            _LEDGER.c.quantity,
            _LEDGER.c.reason,
            _LEDGER.c.created_at,
            _LEDGER.c.unrecovered,
        )
        .select_from(_LEDGER.outerjoin(Feature, Feature.id == _LEDGER.c.feature_id))
        .where(_LEDGER.c.id.in_(newest))
        .order_by(_LEDGER.c.id.desc())
        .limit(bindparam("limit"))
    )


LEDGER_OF = Statement(_ledger_of)
BUCKETS_OF = Statement(
    lambda _: (
        select(
            _BUCKETS.c.id,
            _BUCKETS.c.source,
            _BUCKETS.c.source_key,
            _BUCKETS.c.granted,
            _BUCKETS.c.remaining,
            _BUCKETS.c.expires_at,
            _BUCKETS.c.created_at,
        )
        .where(
            _BUCKETS.c.tenant_id == bindparam("tenant_id"),
            _BUCKETS.c.pool_id == bindparam("pool_id"),
        )
        .order_by(*_soonest_expiring_first(_BUCKETS))
    )
)
PROJECT_POOLS = Statement(
    lambda _: (
        select(CreditPool.id, CreditPool.key, CreditPool.name)
        .where(CreditPool.project_id == bindparam("project_id"))
        .order_by(CreditPool.key)
    )
)


def project_pools(sql: Sql, project_id: int) -> list[tuple[int, str, str]]:
    return [(int(i), k, n) for i, k, n in sql.run(PROJECT_POOLS, {"project_id": project_id})]


def buckets_of(sql: Sql, *, tenant_id: int, pool_id: int) -> Sequence[Sequence[Any]]:
    """Every bucket of the tenant in the pool, in deduction order."""
    return sql.run(BUCKETS_OF, {"tenant_id": tenant_id, "pool_id": pool_id})


def ledger_of(sql: Sql, *, tenant_id: int, pool_id: int, limit: int) -> Sequence[Sequence[Any]]:
    """The tenant's newest ledger rows in the pool, newest first."""
    return sql.run(LEDGER_OF, {"tenant_id": tenant_id, "pool_id": pool_id, "limit": limit})


# --- Reservations (in the writer's transaction) ------------------------------------------------

_RESERVATIONS = cast(Table, CreditReservation.__table__)
_RESERVATION_COLUMNS = (
    _RESERVATIONS.c.id,
    _RESERVATIONS.c.public_id,
    _RESERVATIONS.c.tenant_id,
    _RESERVATIONS.c.pool_id,
    _RESERVATIONS.c.feature_id,
    _RESERVATIONS.c.idempotency_key,
    _RESERVATIONS.c.quantity,
    _RESERVATIONS.c.amount,
    _RESERVATIONS.c.status,
    _RESERVATIONS.c.final_quantity,
    _RESERVATIONS.c.final_amount,
    _RESERVATIONS.c.expires_at,
    _RESERVATIONS.c.created_at,
)


class ReservationRow(NamedTuple):
    id: int
    public_id: str
    tenant_id: int
    pool_id: int
    feature_id: int
    idempotency_key: str
    quantity: int
    amount: int
    status: str
    final_quantity: int | None
    final_amount: int | None
    expires_at: datetime
    created_at: datetime


def _reservation(row: Sequence[Any]) -> ReservationRow:
    id_, public_id, tenant_id, pool_id, feature_id, key, quantity, amount, status = row[:9]
    final_quantity, final_amount, expires_at, created_at = row[9:]
    return ReservationRow(
        int(id_), public_id, int(tenant_id), int(pool_id), int(feature_id), key, int(quantity),
        int(amount), status, final_quantity, final_amount,
        present(utc(expires_at), "expires_at"), present(utc(created_at), "created_at"),
    )  # fmt: skip


RESERVATION_BY_KEY = Statement(
    lambda _: select(*_RESERVATION_COLUMNS).where(
        _RESERVATIONS.c.tenant_id == bindparam("tenant_id"),
        _RESERVATIONS.c.idempotency_key == bindparam("key"),
    )
)
RESERVATION_BY_ID = Statement(
    lambda dialect: _locked(
        dialect,
        select(*_RESERVATION_COLUMNS).where(_RESERVATIONS.c.public_id == bindparam("public_id")),
    )
)


def _expired_held(dialect: str) -> Select[Any]:
    query = (
        select(*_RESERVATION_COLUMNS)
        .where(
            _RESERVATIONS.c.tenant_id == bindparam("tenant_id"),
            _RESERVATIONS.c.pool_id == bindparam("pool_id"),
            _RESERVATIONS.c.status == "held",
            _RESERVATIONS.c.expires_at <= bindparam("now"),
        )
        .order_by(_RESERVATIONS.c.id)
    )
    # One being settled elsewhere is that transaction's: never wait for it here.
    return query.with_for_update(skip_locked=True) if dialect == "postgresql" else query


EXPIRED_HELD = Statement(_expired_held)


def _new_reservation(dialect: str) -> ClauseElement:
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    names = [c.name for c in _RESERVATION_COLUMNS[1:]]
    stmt = insert_(_RESERVATIONS).values({n: bindparam(n) for n in names})
    return stmt.on_conflict_do_nothing(index_elements=["tenant_id", "idempotency_key"]).returning(
        _RESERVATIONS.c.id
    )


NEW_RESERVATION = Statement(_new_reservation)
SETTLE = Statement(
    lambda _: (
        update(_RESERVATIONS)
        .where(_RESERVATIONS.c.id == bindparam("id"), _RESERVATIONS.c.status == "held")
        .values(
            status=bindparam("status"),
            final_quantity=bindparam("final_quantity"),
            final_amount=bindparam("final_amount"),
            settled_at=bindparam("now"),
        )
        .returning(_RESERVATIONS.c.id)
    )
)
HELD_PARTS = Statement(
    lambda _: (
        select(_LEDGER.c.bucket_id, _LEDGER.c.amount)
        .where(
            _LEDGER.c.tenant_id == bindparam("tenant_id"),
            _LEDGER.c.idempotency_key == bindparam("key"),
            _LEDGER.c.kind == "reservation",
            MOVEMENT,  # the unique key's index (partial)
        )
        .order_by(_LEDGER.c.part)
    )
)


def _settling_buckets(dialect: str) -> Select[Any]:
    """The buckets a deduction would lock (the tenant's of the reservation's pool with credits
    left) and those the reservation took from, emptied since or not, in deduction order."""
    held = select(_LEDGER.c.bucket_id).where(
        _LEDGER.c.tenant_id == bindparam("tenant_id"),
        _LEDGER.c.idempotency_key == bindparam("key"),
        _LEDGER.c.kind == "reservation",
        MOVEMENT,  # the unique key's index (partial)
    )
    pool = select(_RESERVATIONS.c.pool_id).where(
        _RESERVATIONS.c.public_id == bindparam("public_id")
    )
    return _locked(
        dialect,
        select(_BUCKETS.c.id)
        .where(
            _BUCKETS.c.tenant_id == bindparam("tenant_id"),
            _BUCKETS.c.pool_id == pool.scalar_subquery(),
            or_(_BUCKETS.c.remaining > 0, _BUCKETS.c.id.in_(held)),
        )
        .order_by(*_soonest_expiring_first(_BUCKETS)),
    )


SETTLING_BUCKETS = Statement(_settling_buckets)
GIVE_BACK = Statement(lambda _: _put_in().returning(_BUCKETS.c.source, _BUCKETS.c.source_key))


def reservation_by_key(sql: Sql, tenant_id: int, key: str) -> ReservationRow | None:
    rows = sql.run(RESERVATION_BY_KEY, {"tenant_id": tenant_id, "key": key})
    return _reservation(rows[0]) if rows else None


def reservation_by_id(sql: Sql, public_id: str) -> ReservationRow | None:
    """The reservation, locked (PostgreSQL) for its settling."""
    rows = sql.run(RESERVATION_BY_ID, {"public_id": public_id})
    return _reservation(rows[0]) if rows else None


def expired_held(sql: Sql, tenant_id: int, pool_id: int, now: datetime) -> list[ReservationRow]:
    values = {"tenant_id": tenant_id, "pool_id": pool_id, "now": sql.time(now)}
    return [_reservation(r) for r in sql.run(EXPIRED_HELD, values)]


def new_reservation(sql: Sql, values: dict[str, Any]) -> int | None:
    """Insert a reservation (`values` by column name); None when its key is taken."""
    stored = {
        **values,
        "expires_at": sql.time(values["expires_at"]),
        "created_at": sql.time(values["created_at"]),
    }
    rows = sql.run(NEW_RESERVATION, stored)
    return int(rows[0][0]) if rows else None


def settle(
    sql: Sql,
    reservation_id: int,
    status: str,
    now: datetime,
    final_quantity: int | None = None,
    final_amount: int | None = None,
) -> bool:
    values = {
        "id": reservation_id,
        "status": status,
        "final_quantity": final_quantity,
        "final_amount": final_amount,
        "now": sql.time(now),
    }
    return bool(sql.run(SETTLE, values))


def held_parts(sql: Sql, tenant_id: int, key: str) -> list[tuple[int, int]]:
    """What a reservation took from each bucket: (bucket id, credits), in the order taken."""
    rows = sql.run(HELD_PARTS, {"tenant_id": tenant_id, "key": key})
    return [(int(b), -int(a)) for b, a in rows]


def lock_settling_buckets(sql: Sql, tenant_id: int, public_id: str) -> None:
    """Lock, before a reservation's own row, the buckets its settling may touch (see
    `_settling_buckets`), in the order every deduction locks buckets: two settlings of one
    reservation in two workers' transactions then wait for each other at the buckets, never
    holding one each of what the other wants, nor does a settling and a usage. SQLite's write
    transaction holds the whole database already."""
    if not sql.is_sqlite:
        values = {"tenant_id": tenant_id, "key": f"reservation:{public_id}", "public_id": public_id}
        sql.run(SETTLING_BUCKETS, values)


PUT_BACK_WHOLE = Statement(
    lambda _: _put_in(last_deduction_id=func.nullif(_BUCKETS.c.previous_deduction_id, 0))
)


def put_back_whole(sql: Sql, took: TookWhole, amount: int) -> None:
    """Undo the take `took` inside its transaction (its ledger row was never written): the
    credits go back and the bucket's chain ends again where it did."""
    sql.run(PUT_BACK_WHOLE, {"bucket_id": took.bucket_id, "amount": amount})


def give_back(sql: Sql, bucket_id: int, amount: int) -> tuple[str, str]:
    """Put `amount` back into a bucket (locking it until the transaction ends); returns the
    bucket's (source, source key)."""
    ((source, source_key),) = sql.run(GIVE_BACK, {"bucket_id": bucket_id, "amount": amount})
    return source, source_key


RESERVATION_VIEW = Statement(
    lambda _: (
        select(Token.id, _RESERVATIONS.c.tenant_id, Tenant.key, Feature.key)
        .select_from(
            Token.__table__.outerjoin(
                _RESERVATIONS.join(Tenant, Tenant.id == _RESERVATIONS.c.tenant_id).join(
                    Feature, Feature.id == _RESERVATIONS.c.feature_id
                ),
                and_(
                    _RESERVATIONS.c.public_id == bindparam("public_id"),
                    Tenant.project_id == Token.project_id,
                ),
            )
        )
        .where(Token.token_hash == bindparam("token_hash"), Token.revoked_at.is_(None))
    )
)


def reservation_view(
    sql: Sql, token_hash: str, public_id: str
) -> tuple[int | None, str | None, str | None] | None:
    """Whose reservation it is, in the token's project: (tenant id, tenant key, feature key).
    None: no such token (a 401 before anything else); a tuple of Nones: no such reservation."""
    rows = sql.run(RESERVATION_VIEW, {"token_hash": token_hash, "public_id": public_id})
    if not rows:
        return None
    _, tenant_id, tenant, feature = rows[0]
    return (tenant_id, tenant, feature)


EXPIRED_HOLDS = Statement(
    lambda _: select(func.count()).where(
        _RESERVATIONS.c.tenant_id == bindparam("tenant_id"),
        _RESERVATIONS.c.pool_id == bindparam("pool_id"),
        _RESERVATIONS.c.status == "held",
        _RESERVATIONS.c.expires_at <= bindparam("now"),
    )
)


def expired_holds(sql: Sql, tenant_id: int, pool_id: int, now: datetime) -> int:
    """How many of the tenant's reservations of the pool expired still holding credits."""
    values = {"tenant_id": tenant_id, "pool_id": pool_id, "now": sql.time(now)}
    return int(sql.run(EXPIRED_HOLDS, values)[0][0])


# --- What refunds of top-ups could not take back (in the writer's transaction) ------------------

_TOPUPS = cast(Table, CreditTopup.__table__)
UNRECOVERED_TOPUP = Statement(
    lambda dialect: _locked(
        dialect,
        select(_TOPUPS.c.id, _TOPUPS.c.credits_unrecovered).where(
            _TOPUPS.c.stripe_checkout_session_id == bindparam("checkout_id"),
            _TOPUPS.c.bucket_id == bindparam("bucket_id"),
            _TOPUPS.c.credits_unrecovered > 0,
        ),
    )
)
REFUNDS_SHORT = Statement(
    lambda _: (
        select(_LEDGER.c.idempotency_key, func.sum(_LEDGER.c.unrecovered), func.max(_LEDGER.c.part))
        .where(
            _LEDGER.c.tenant_id == bindparam("tenant_id"),
            _LEDGER.c.bucket_id == bindparam("bucket_id"),
            _LEDGER.c.kind == "refund",
            MOVEMENT,  # the tenant's rows but its usages' (the unique key's partial index)
        )
        .group_by(_LEDGER.c.idempotency_key)
        .having(func.sum(_LEDGER.c.unrecovered) > 0)
        .order_by(func.min(_LEDGER.c.id))
    )
)
LESS_UNRECOVERED = Statement(
    lambda _: (
        update(_TOPUPS)
        .where(
            _TOPUPS.c.id == bindparam("topup_id"),
            _TOPUPS.c.credits_unrecovered >= bindparam("amount"),
        )
        .values(credits_unrecovered=_TOPUPS.c.credits_unrecovered - bindparam("amount"))
        .returning(_TOPUPS.c.id)
    )
)
_REFUND_ROW = (*(c.name for c in _ENTRY_COLUMNS), "unrecovered")
REFUND_ROW = Statement(lambda _: insert(_LEDGER).values({n: bindparam(n) for n in _REFUND_ROW}))


def unrecovered_topup(sql: Sql, checkout_id: str, bucket_id: int) -> tuple[int, int] | None:
    """The top-up whose bucket this is, locked, if its refunds could not take everything they
    claimed: (top-up id, credits unrecovered); None otherwise."""
    rows = sql.run(UNRECOVERED_TOPUP, {"checkout_id": checkout_id, "bucket_id": bucket_id})
    return (int(rows[0][0]), int(rows[0][1])) if rows else None


def refunds_short(sql: Sql, tenant_id: int, bucket_id: int) -> list[tuple[str, int, int]]:
    """The refunds of a top-up's bucket still short of what they claimed, oldest first:
    (idempotency key, credits unrecovered, the last part written under the key)."""
    rows = sql.run(REFUNDS_SHORT, {"tenant_id": tenant_id, "bucket_id": bucket_id})
    return [(key, int(short), int(part)) for key, short, part in rows]


def less_unrecovered(sql: Sql, topup_id: int, amount: int) -> None:
    """A locked top-up's `credits_unrecovered`, less `amount` taken back since."""
    if not sql.run(LESS_UNRECOVERED, {"topup_id": topup_id, "amount": amount}):
        raise RuntimeError(f"top-up {topup_id} has less than {amount} unrecovered under its lock")


def insert_refund_row(sql: Sql, entry: Entry, unrecovered: int) -> None:
    """A `refund` ledger row, with the change it makes to what its refund could not take."""
    values = {**entry._asdict(), "created_at": sql.time(entry.created_at)}
    sql.run(REFUND_ROW, {**values, "unrecovered": unrecovered})


# --- Top-ups and their refunds (ORM, off the hot path) -------------------------------------------


def topup_by_checkout(
    session: Session, checkout_id: str, *, lock: bool = False
) -> CreditTopup | None:
    """The top-up a Checkout session bought; `lock`: held until the transaction ends, so two
    refunds of it are applied one after the other."""
    query = select(CreditTopup).where(CreditTopup.stripe_checkout_session_id == checkout_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalar(query)


def topup_by_payment_intent(session: Session, payment_intent: str) -> CreditTopup | None:
    return session.scalar(
        select(CreditTopup).where(CreditTopup.stripe_payment_intent_id == payment_intent)
    )


def topups_of(session: Session, tenant_id: int, limit: int) -> list[tuple[CreditTopup, str]]:
    """The tenant's top-ups, newest first, each with its pool's key."""
    rows = session.execute(
        select(CreditTopup, CreditPool.key)
        .join(CreditPool, CreditPool.id == CreditTopup.pool_id)
        .where(CreditTopup.tenant_id == tenant_id)
        .order_by(CreditTopup.created_at.desc(), CreditTopup.id.desc())
        .limit(limit)
    ).all()
    return [(topup, key) for topup, key in rows]


def locked_remaining(session: Session, bucket_id: int) -> int:
    """What a bucket holds, read under lock (as a deduction reads it) until the transaction ends."""
    found = session.execute(
        select(CreditBucket.remaining).where(CreditBucket.id == bucket_id).with_for_update()
    ).scalar_one()
    return int(found)


def take_out(session: Session, bucket_id: int, amount: int) -> None:
    """Take `amount` out of a bucket read under lock; the guard holds because of that lock."""
    taken = session.execute(
        update(CreditBucket)
        .where(CreditBucket.id == bucket_id, CreditBucket.remaining >= amount)
        .values(remaining=CreditBucket.remaining - amount)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise RuntimeError(f"bucket {bucket_id} holds less than {amount} under its lock")
