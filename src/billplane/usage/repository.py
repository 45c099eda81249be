"""All SQL about usage events and per-period counters.

The limit is enforced inside one conditional upsert (`used + q <= limit`), which both engines
evaluate under the row's write lock: that statement, not any lock in Python, is what keeps
concurrent requests from passing the limit. The statements of the hot path are Core, compiled
once (see `hotpath`); the operator's views read through the ORM.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import ClauseElement, Table, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from billplane.hotpath import Sql, Statement, from_json, one_of, pairs_in
from billplane.models import UsageCounter, UsageEvent

_COUNTERS = cast(Table, UsageCounter.__table__)
_EVENTS = cast(Table, UsageEvent.__table__)


class CounterKey(NamedTuple):
    """One tenant's counter of one feature in one period (a tuple: batches hash thousands)."""

    tenant_id: int
    feature_id: int
    period_key: str

    def values(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "feature_id": self.feature_id,
            "period_key": self.period_key,
        }


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
    stmt = insert(_EVENTS).values(
        {
            name: bindparam(name)
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
        }
    )
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


# A batch's statements: one each for all its events, whatever their number.
def _ensure_counter(dialect: str) -> ClauseElement:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(_COUNTERS)
        .values(
            tenant_id=bindparam("tenant_id"),
            feature_id=bindparam("feature_id"),
            period_key=bindparam("period_key"),
            used=0,
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "feature_id", "period_key"])
    )


def _counters_of(dialect: str) -> ClauseElement:
    c = _COUNTERS.c
    query = (
        select(c.tenant_id, c.feature_id, c.period_key, c.used)
        .where(
            one_of(dialect, c.tenant_id, "tenant_ids"),
            one_of(dialect, c.feature_id, "feature_ids"),
            one_of(dialect, c.period_key, "period_keys"),
        )
        .order_by(c.tenant_id, c.feature_id, c.period_key)
    )
    # SQLite's write transaction holds the whole database; PostgreSQL locks the rows, in order.
    return query.with_for_update() if dialect == "postgresql" else query


ENSURE_COUNTER = Statement(_ensure_counter)
COUNTERS_OF = Statement(_counters_of)
SET_COUNTER = Statement(
    lambda _: (
        update(_COUNTERS)
        .where(
            _COUNTERS.c.tenant_id == bindparam("tenant_id"),
            _COUNTERS.c.feature_id == bindparam("feature_id"),
            _COUNTERS.c.period_key == bindparam("period_key"),
        )
        .values(used=bindparam("used"))
    )
)
EVENTS_OF = Statement(
    lambda d: select(
        _EVENTS.c.tenant_id,
        _EVENTS.c.idempotency_key,
        _EVENTS.c.feature_id,
        _EVENTS.c.quantity,
        _EVENTS.c.response,
    ).where(pairs_in(d, (_EVENTS.c.tenant_id, _EVENTS.c.idempotency_key), "keys"))
)
INSERT_EVENT = Statement(
    lambda _: insert(_EVENTS).values(
        {
            name: bindparam(name)
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
        }
    )
)


def lock_counters(sql: Sql, counters: list[CounterKey]) -> dict[CounterKey, int]:
    """Make sure each counter exists, then read them all under lock: what a batch starts from.

    Counters this creates stay at zero unless the batch counts into them (see `drop_empty`).
    """
    ordered = sorted(set(counters), key=lambda k: (k.tenant_id, k.feature_id, k.period_key))
    sql.run_many(ENSURE_COUNTER, [k.values() for k in ordered])
    rows = sql.run(
        COUNTERS_OF,
        {
            "tenant_ids": sql.values_list(sorted({k.tenant_id for k in ordered})),
            "feature_ids": sql.values_list(sorted({k.feature_id for k in ordered})),
            "period_keys": sql.values_list(sorted({k.period_key for k in ordered})),
        },
    )
    wanted = set(ordered)
    found = {CounterKey(int(t), int(f), p): int(u) for t, f, p, u in rows}
    return {k: v for k, v in found.items() if k in wanted}


def set_counters(sql: Sql, totals: dict[CounterKey, int]) -> None:
    """Write the totals a batch reached; the rows are locked since `lock_counters`."""
    sql.run_many(SET_COUNTER, [{**k.values(), "used": used} for k, used in totals.items()])


def drop_empty(sql: Sql, counters: list[CounterKey]) -> None:
    sql.run_many(DROP_IF_EMPTY, [k.values() for k in set(counters)])


def events_of(
    sql: Sql, keys: list[tuple[int, str]]
) -> dict[tuple[int, str], tuple[int, int, dict[str, Any]]]:
    """The events already recorded under these (tenant id, idempotency key) pairs."""
    if not keys:
        return {}
    rows = sql.run(EVENTS_OF, sql.pairs("keys", sorted(set(keys))))
    return {(int(t), k): (int(f), int(q), from_json(r)) for t, k, f, q, r in rows}


def insert_events(sql: Sql, events: list[dict[str, Any]]) -> None:
    """New events with their answers; a key recorded meanwhile makes this fail (and the batch
    be judged again)."""
    times: dict[datetime, Any] = {}  # a batch's events mostly share one moment

    def stored(moment: datetime) -> Any:
        if moment not in times:
            times[moment] = sql.time(moment)
        return times[moment]

    sql.run_many(
        INSERT_EVENT,
        [
            {
                **e,
                "occurred_at": stored(e["occurred_at"]),
                "recorded_at": stored(e["recorded_at"]),
                "response": sql.json(e["response"]),
            }
            for e in events
        ],
    )


def add_to_counter(sql: Sql, counter: CounterKey, quantity: int, limit: int | None) -> int | None:
    """Add `quantity` to the period's counter, only if it stays within `limit` (when given).

    Returns the new total, or None when the limit would be passed (nothing changed).
    """
    if limit is not None and quantity > limit:
        return None  # a counter created by this very statement would start above the limit
    values = {**counter.values(), "quantity": quantity}
    if limit is None:
        rows = sql.run(ADD, values)
    else:
        rows = sql.run(ADD_WITHIN_LIMIT, {**values, "limit": limit})
    return int(rows[0][0]) if rows else None


def take_back(sql: Sql, counter: CounterKey, quantity: int) -> None:
    """Undo `add_to_counter` inside the same transaction (the row is still locked by it).

    A counter at zero can only be one that `add_to_counter` just created: it goes too, so a
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
    response: dict[str, Any],
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


def event_by_key(sql: Sql, tenant_id: int, key: str) -> tuple[int, int, dict[str, Any]] | None:
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
