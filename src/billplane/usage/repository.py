"""All SQL about usage events and per-period counters.

The limit is enforced inside one conditional upsert (`used + q <= limit`), which both engines
evaluate under the row's write lock: that statement, not any lock in Python, is what keeps
concurrent requests from passing the limit. The statements of the hot path are Core, compiled
once (see `hotpath`); the operator's views read through the ORM.
"""

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    ClauseElement,
    Table,
    and_,
    bindparam,
    delete,
    func,
    literal,
    select,
    text,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from billplane.credits.repository import TOOK_WHOLE_COLUMNS, TookWhole, take_whole_sql, took_whole
from billplane.errors import present
from billplane.hotpath import Sql, Statement, dumps, from_json, rows_in
from billplane.models import UsageCounter, UsageEvent
from billplane.sql import utc_day

_COUNTERS = cast(Table, UsageCounter.__table__)
_EVENTS = cast(Table, UsageEvent.__table__)
# What an event row is written with (its id is the database's).
_EVENT_COLUMNS = [
    _EVENTS.c[name]
    for name in (
        "tenant_id",
        "feature_id",
        "idempotency_key",
        "quantity",
        "period_key",
        "occurred_at",
        "recorded_at",
        "response",
    )
]


class CounterKey(NamedTuple):
    """One tenant's counter of one feature in one period (a tuple: batches hash thousands)."""

    tenant_id: int
    feature_id: int
    period_key: str

    def values(self) -> dict[str, Any]:
        return self._asdict()


def _add_to_counter(dialect: str, *, guarded: bool) -> ClauseElement:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(_COUNTERS).values(
        tenant_id=bindparam("tenant_id"),
        feature_id=bindparam("feature_id"),
        period_key=bindparam("period_key"),
        used=bindparam("quantity"),
    )
    total = _COUNTERS.c.used + stmt.excluded.used
    return stmt.on_conflict_do_update(
        index_elements=["tenant_id", "feature_id", "period_key"],
        set_={"used": total},
        where=(total <= bindparam("limit")) if guarded else None,
    ).returning(_COUNTERS.c.used)


def _claim_key(dialect: str) -> ClauseElement:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(_EVENTS).values({c.name: bindparam(c.name) for c in _EVENT_COLUMNS})
    return stmt.on_conflict_do_nothing(index_elements=["tenant_id", "idempotency_key"]).returning(
        _EVENTS.c.id
    )


ADD = Statement(lambda dialect: _add_to_counter(dialect, guarded=False))
ADD_WITHIN_LIMIT = Statement(lambda dialect: _add_to_counter(dialect, guarded=True))
CLAIM_KEY = Statement(_claim_key)
TAKE_BACK = Statement(
    lambda _: (
        update(_COUNTERS)
        .where(
            _COUNTERS.c.tenant_id == bindparam("tenant_id"),
            _COUNTERS.c.feature_id == bindparam("feature_id"),
            _COUNTERS.c.period_key == bindparam("period_key"),
        )
        .values(used=_COUNTERS.c.used - bindparam("quantity"))
    )
)
DROP_IF_EMPTY = Statement(
    lambda _: delete(_COUNTERS).where(
        _COUNTERS.c.tenant_id == bindparam("tenant_id"),
        _COUNTERS.c.feature_id == bindparam("feature_id"),
        _COUNTERS.c.period_key == bindparam("period_key"),
        _COUNTERS.c.used == 0,
    )
)
EVENT_BY_KEY = Statement(
    lambda _: select(_EVENTS.c.feature_id, _EVENTS.c.quantity, _EVENTS.c.response).where(
        _EVENTS.c.tenant_id == bindparam("tenant_id"),
        _EVENTS.c.idempotency_key == bindparam("key"),
    )
)


# A batch's statements: one each for all its rows, whatever their number (see `rows_in`).
_KEY_COLUMNS = [_COUNTERS.c.tenant_id, _COUNTERS.c.feature_id, _COUNTERS.c.period_key]
_EVENT_KEY = [_EVENTS.c.tenant_id, _EVENTS.c.idempotency_key]


def _ensure_counters(dialect: str) -> ClauseElement:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    rows = rows_in(dialect, "counters", _KEY_COLUMNS)
    # `WHERE true`: SQLite cannot otherwise tell an upsert's ON from a join's.
    chosen = select(*rows.c, literal(0).label("used")).where(true())
    return (
        insert(_COUNTERS)
        .from_select([*(c.name for c in _KEY_COLUMNS), "used"], chosen)
        .on_conflict_do_nothing(index_elements=[c.name for c in _KEY_COLUMNS])
    )


def _counters_of(dialect: str) -> ClauseElement:
    c = _COUNTERS.c
    rows = rows_in(dialect, "counters", _KEY_COLUMNS)
    query = (
        select(c.tenant_id, c.feature_id, c.period_key, c.used)
        .where(tuple_(c.tenant_id, c.feature_id, c.period_key).in_(select(*rows.c)))
        .order_by(c.tenant_id, c.feature_id, c.period_key)
    )
    # SQLite's write transaction holds the whole database; PostgreSQL locks the rows, in order.
    return query.with_for_update() if dialect == "postgresql" else query


def _set_counters(dialect: str) -> ClauseElement:
    c = _COUNTERS.c
    rows = rows_in(dialect, "totals", [*_KEY_COLUMNS, c.used])
    return (
        update(_COUNTERS)
        .where(
            c.tenant_id == rows.c.tenant_id,
            c.feature_id == rows.c.feature_id,
            c.period_key == rows.c.period_key,
        )
        .values(used=rows.c.used)
    )


def _drop_empty(dialect: str) -> ClauseElement:
    c = _COUNTERS.c
    rows = rows_in(dialect, "counters", _KEY_COLUMNS)
    return delete(_COUNTERS).where(
        tuple_(c.tenant_id, c.feature_id, c.period_key).in_(select(*rows.c)), c.used == 0
    )


ENSURE_COUNTERS = Statement(_ensure_counters)
COUNTERS_OF = Statement(_counters_of)
SET_COUNTERS = Statement(_set_counters)
DROP_EMPTY = Statement(_drop_empty)


def _events_of(dialect: str) -> ClauseElement:
    keys = rows_in(dialect, "keys", _EVENT_KEY)
    e = _EVENTS.c
    # Driven by the keys: one index probe on (tenant_id, idempotency_key) per key asked.
    on = and_(e.tenant_id == keys.c.tenant_id, e.idempotency_key == keys.c.idempotency_key)
    return select(e.tenant_id, e.idempotency_key, e.feature_id, e.quantity, e.response).select_from(
        keys.join(_EVENTS, on)
    )


EVENTS_OF = Statement(_events_of)


def lock_counters(
    sql: Sql,
    counters: list[CounterKey],
    existing: set[CounterKey] | frozenset[CounterKey] = frozenset(),
) -> dict[CounterKey, int]:
    """Make sure each counter exists, then read them all under lock: what a batch starts from.

    `existing` are counters known to exist already (no statement creates them). Counters this
    creates stay at zero unless the batch counts into them (see `drop_empty`).
    """
    ordered = sorted(set(counters))
    missing = [k.values() for k in ordered if k not in existing]
    if missing:
        sql.run(ENSURE_COUNTERS, sql.rows("counters", _KEY_COLUMNS, missing))
    locked = [k.values() for k in ordered]
    rows = sql.run(COUNTERS_OF, sql.rows("counters", _KEY_COLUMNS, locked))
    return {CounterKey(int(t), int(f), p): int(u) for t, f, p, u in rows}


def set_counters(sql: Sql, totals: dict[CounterKey, int]) -> None:
    """Write the totals a batch reached; the rows are locked since `lock_counters`."""
    if not totals:
        return
    records = [{**k.values(), "used": used} for k, used in totals.items()]
    sql.run(SET_COUNTERS, sql.rows("totals", [*_KEY_COLUMNS, _COUNTERS.c.used], records))


def drop_empty(sql: Sql, counters: list[CounterKey]) -> None:
    """Remove these counters if they are at zero (`lock_counters` made them for nothing)."""
    if not counters:
        return
    records = [k.values() for k in set(counters)]
    sql.run(DROP_EMPTY, sql.rows("counters", _KEY_COLUMNS, records))


# Events recorded before, by (tenant id, idempotency key): (feature id, quantity, answer).
# A stored answer is the JSON `usage.service` built (its `UsageAnswer`), read back as a mapping.
Stored = Mapping[str, Any]
Earlier = dict[tuple[int, str], tuple[int, int, Stored]]


def events_of(sql: Sql, keys: list[tuple[int, str]]) -> Earlier:
    """The events already recorded under these (tenant id, idempotency key) pairs."""
    if not keys:
        return {}
    pairs = [{"tenant_id": t, "idempotency_key": k} for t, k in sorted(set(keys))]
    rows = sql.run(EVENTS_OF, sql.rows("keys", _EVENT_KEY, pairs))
    return {(int(t), k): (int(f), int(q), from_json(r)) for t, k, f, q, r in rows}


# The order of `insert_events`' tuples: the table's own (SQLite binds them in that order).
EVENT_ROW = tuple(c.name for c in _EVENT_COLUMNS)


def insert_events(sql: Sql, rows: list[tuple[Any, ...]]) -> None:
    """New events with their answers, each a tuple in `EVENT_ROW` order (times and JSON as
    `Sql.insert_rows` takes them); a key recorded meanwhile makes this fail (and the batch be
    judged again)."""
    sql.insert_rows(_EVENTS, EVENT_ROW, rows)


def _count_and_claim_pg(*, guarded: bool) -> ClauseElement:
    # `guard` is one of two constants; every value is a bound parameter.
    guard = "WHERE c.used + excluded.used <= :limit" if guarded else ""
    return text(
        f"""
        WITH bumped AS (
          INSERT INTO usage_counters AS c (tenant_id, feature_id, period_key, used)
          VALUES (:tenant_id, :feature_id, :period_key, :quantity)
          ON CONFLICT (tenant_id, feature_id, period_key)
          DO UPDATE SET used = c.used + excluded.used {guard}
          RETURNING c.used
        ), claimed AS (
          INSERT INTO usage_events (tenant_id, feature_id, idempotency_key, quantity,
                                    period_key, occurred_at, recorded_at, response)
          SELECT :tenant_id, :feature_id, :key, :quantity, :period_key, :occurred_at,
                 :recorded_at,
                 CAST(CAST(:answer AS jsonb) || jsonb_build_object(
                   'used', bumped.used,
                   'remaining', CASE WHEN CAST(:shown_limit AS bigint) IS NULL THEN NULL
                                ELSE GREATEST(CAST(:shown_limit AS bigint) - bumped.used, 0) END
                 ) AS json)
          FROM bumped
          ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
          RETURNING id
        )
        SELECT (SELECT used FROM bumped), (SELECT id FROM claimed)
        """  # noqa: S608 -- see `guard` above
    )


# PostgreSQL: the counter's guarded upsert and the event's insert as one statement, one round
# trip (its data-modifying CTEs run in one snapshot; the answer's numbers are filled in by SQL).
COUNT_AND_CLAIM = Statement(lambda _: _count_and_claim_pg(guarded=False))
COUNT_AND_CLAIM_WITHIN_LIMIT = Statement(lambda _: _count_and_claim_pg(guarded=True))


def count_and_claim(
    sql: Sql,
    counter: CounterKey,
    *,
    quantity: int,
    limit: int | None,
    key: str,
    occurred_at: datetime,
    now: datetime,
    answer: Callable[[int], Stored],
) -> tuple[Stored | None, bool]:
    """Count `quantity` (within `limit`, when given) and record the event under `key` with its
    answer, `answer(new total)`. Returns that answer (None: over the limit, nothing changed)
    and whether the key was claimed (False: it was taken; the caller gives the count back)."""
    if limit is not None and quantity > limit:
        return None, False  # a counter created by the upsert would start above the limit
    if sql.is_sqlite:  # in-process statements: two cost no round trip
        total = _count(sql, counter, quantity, limit)
        if total is None:
            return None, False
        body = answer(total)
        claimed = claim_idempotency_key(
            sql, counter, key=key, quantity=quantity, occurred_at=occurred_at, now=now,
            response=body,
        )  # fmt: skip
        return body, claimed
    template = answer(0)
    values = {
        **counter.values(),
        "quantity": quantity,
        "key": key,
        "occurred_at": sql.time(occurred_at),
        "recorded_at": sql.time(now),
        "answer": dumps(template),
        "shown_limit": template["limit"],
    }
    if limit is None:
        rows = sql.run(COUNT_AND_CLAIM, values)
    else:
        rows = sql.run(COUNT_AND_CLAIM_WITHIN_LIMIT, {**values, "limit": limit})
    total, event_id = rows[0]
    if total is None:
        return None, False
    return answer(int(total)), event_id is not None


def _count(sql: Sql, counter: CounterKey, quantity: int, limit: int | None) -> int | None:
    """Add `quantity` to the period's counter, only if it stays within `limit` (when given;
    `count_and_claim` has refused a quantity above it). Returns the new total, or None when the
    limit would be passed (nothing changed)."""
    values = {**counter.values(), "quantity": quantity}
    if limit is None:
        rows = sql.run(ADD, values)
    else:
        rows = sql.run(ADD_WITHIN_LIMIT, {**values, "limit": limit})
    return int(rows[0][0]) if rows else None


def count(sql: Sql, counter: CounterKey, quantity: int) -> int:
    """Add `quantity` to the period's counter, unguarded; returns the new total."""
    return present(_count(sql, counter, quantity, None), "the counter")


def take_back(sql: Sql, counter: CounterKey, quantity: int) -> None:
    """Undo `count_and_claim`'s count inside the same transaction (the row is still locked).

    A counter at zero can only be one that `count_and_claim` just created: it goes too, so a
    refused repeat leaves every table as it was.
    """
    sql.run(TAKE_BACK, {**counter.values(), "quantity": quantity})
    sql.run(DROP_IF_EMPTY, counter.values())


def claim_idempotency_key(
    sql: Sql,
    counter: CounterKey,
    *,
    key: str,
    quantity: int,
    occurred_at: datetime,
    now: datetime,
    response: Stored,
) -> bool:
    """Insert the event for `key` with its answer; False when an event with that key exists.

    On PostgreSQL it waits for a concurrent insert of the same key to commit or roll back, so
    the caller learns the truth rather than a guess.
    """
    values = {
        **counter.values(),
        "idempotency_key": key,
        "quantity": quantity,
        "occurred_at": sql.time(occurred_at),
        "recorded_at": sql.time(now),
        "response": sql.json(response),
    }
    return bool(sql.run(CLAIM_KEY, values))


def event_by_key(sql: Sql, tenant_id: int, key: str) -> tuple[int, int, Stored] | None:
    """The feature id, quantity and stored answer of the event recorded under `key`."""
    rows = sql.run(EVENT_BY_KEY, {"tenant_id": tenant_id, "key": key})
    if not rows:
        return None
    feature_id, quantity, response = rows[0]
    return int(feature_id), int(quantity), from_json(response)


def recent_events(session: Session, tenant_id: int, limit: int = 20) -> Sequence[UsageEvent]:
    return session.scalars(
        select(UsageEvent)
        .where(UsageEvent.tenant_id == tenant_id)
        .order_by(UsageEvent.id.desc())
        .limit(limit)
    ).all()


def daily_usage(session: Session, tenant_id: int, since: datetime) -> list[tuple[int, str, int]]:
    """A tenant's usage since `since`, summed per (feature id, UTC day of occurrence)."""
    day = utc_day(session.get_bind().dialect.name, UsageEvent.occurred_at)
    query = (
        select(UsageEvent.feature_id, day, func.sum(UsageEvent.quantity))
        .where(UsageEvent.tenant_id == tenant_id, UsageEvent.occurred_at >= since)
        .group_by(UsageEvent.feature_id, day)
    )
    return [(feature_id, day_, int(total)) for feature_id, day_, total in session.execute(query)]


# PostgreSQL, a credit-priced usage in one round trip in the common case: the cost taken whole
# out of the first bucket (`TAKE_WHOLE_SQL`, whose guards decide whether the common case holds:
# no row, nothing written, and the caller takes the general path), then the counter's guarded
# upsert and the event's claim as `COUNT_AND_CLAIM`, then the take's ledger row (chained to its
# bucket, see `CreditEntry.previous_id`), only if the key was claimed. A take whose use did not
# count (over the limit, or a repeat) is given back by the caller, in the same transaction. Its
# row locks come in the order of every credit-priced use: the bucket, then the counter.
_CHARGE_PG = f"""
WITH taken (id, balance, pool, ledger_id, previous_id) AS ({take_whole_sql("postgresql")}
), bumped AS (
  INSERT INTO usage_counters AS c (tenant_id, feature_id, period_key, used)
  SELECT :tenant_id, :feature_id, :period_key, :quantity FROM taken
  ON CONFLICT (tenant_id, feature_id, period_key)
  DO UPDATE SET used = c.used + excluded.used
  WHERE CAST(:limit AS bigint) IS NULL OR c.used + excluded.used <= CAST(:limit AS bigint)
  RETURNING c.used
), claimed AS (
  INSERT INTO usage_events (tenant_id, feature_id, idempotency_key, quantity,
                            period_key, occurred_at, recorded_at, response)
  SELECT :tenant_id, :feature_id, :key, :quantity, :period_key, :occurred_at, :recorded_at,
         CAST(CAST(:answer AS jsonb) || jsonb_build_object(
           'used', bumped.used,
           'remaining', CASE WHEN CAST(:shown_limit AS bigint) IS NULL THEN NULL
                        ELSE GREATEST(CAST(:shown_limit AS bigint) - bumped.used, 0) END,
           'pool', taken.pool,
           'balance', taken.balance
         ) AS json)
  FROM bumped, taken
  ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
  RETURNING id
), logged AS (
  INSERT INTO credit_ledger (id, tenant_id, pool_id, bucket_id, kind, part, amount,
                             idempotency_key, feature_id, quantity, reason, actor, created_at,
                             previous_id)
  SELECT taken.ledger_id, :tenant_id, :pool_id, taken.id, 'deduction', 0,
         -CAST(:cost AS bigint), :key, :feature_id, :quantity, NULL, NULL, :recorded_at,
         taken.previous_id
  FROM taken WHERE EXISTS (SELECT 1 FROM claimed)
  RETURNING id
)
SELECT taken.id, taken.balance, taken.pool, taken.ledger_id, taken.previous_id,
       (SELECT used FROM bumped), (SELECT id FROM claimed), (SELECT count(*) FROM logged)
FROM taken
"""  # noqa: S608 -- `TAKE_WHOLE_SQL` is a constant; every value is a bound parameter
CHARGE_PG = Statement(lambda _: text(_CHARGE_PG))


class Charged(NamedTuple):
    """What `count_claim_and_charge` did, when its common case held."""

    took: TookWhole  # the credits taken (given back by the caller if the use did not count)
    total: int | None  # the counter's new total; None: over the usage limit, not counted
    claimed: bool  # False: the key was taken (the caller gives the count back)


def count_claim_and_charge(
    sql: Sql,
    counter: CounterKey,
    *,
    quantity: int,
    limit: int | None,
    key: str,
    occurred_at: datetime,
    now: datetime,
    template: Stored,
    take: Mapping[str, Any],
) -> Charged | None:
    """PostgreSQL: a credit-priced usage in one statement (see `_CHARGE_PG`), its take bound
    as `take` (`credits.repository.take_whole_values`); the event stores `template` with its
    numbers filled in. None: the common case does not hold, nothing was written."""
    if limit is not None and quantity > limit:
        return None  # a counter created by the upsert would start above the limit
    values = {
        **counter.values(),
        "quantity": quantity,
        "key": key,
        "occurred_at": sql.time(occurred_at),
        "recorded_at": sql.time(now),
        "answer": dumps(template),
        "shown_limit": template["limit"],
        "limit": limit,
        **take,
    }
    rows = sql.run(CHARGE_PG, values)
    if not rows:
        return None
    total, event_id, logged = rows[0][TOOK_WHOLE_COLUMNS:]
    if event_id is not None and logged != 1:
        raise RuntimeError(f"a claimed use of {take['cost']} credits wrote {logged} ledger rows")
    return Charged(took_whole(rows[0]), None if total is None else int(total), event_id is not None)
