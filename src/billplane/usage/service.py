"""Recording usage: exactly once per idempotency key, and never over a limit when enforced.

A usage call is one read (`entitlements.lookup`: what the tenant may do and has used) and one
short write, `record`, which the hot path's writer runs inside a transaction that it may share
with other requests' writes: `record` answers with an outcome rather than raising, so a refused
request never rolls back its neighbours.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache, partial
from typing import Any, NotRequired, TypedDict, cast

from billplane.appwebhooks import outbox
from billplane.credits import service as credits
from billplane.entitlements import repository as reads
from billplane.entitlements import service as entitlements
from billplane.entitlements.repository import FeatureRow, Found
from billplane.entitlements.rules import Grant, period_for
from billplane.errors import (
    BillplaneError,
    IdempotencyKeyReused,
    InvalidInput,
    PaymentRequired,
    TimestampOutOfRange,
    present,
)
from billplane.hotpath import Sql
from billplane.usage import repository

# When usage may say it happened: Stripe's rule for meter events. A client clock may run a little
# fast; anything further ahead, or older than a billing month and a bit, is a bug on the caller's
# side (and a year 1 or 9999 would not even survive the conversion to UTC).
PAST_WINDOW = timedelta(days=35)
FUTURE_TOLERANCE = timedelta(minutes=5)


# Plain slotted dataclasses: a batch builds thousands, and frozen ones cost twice as much.
@dataclass(slots=True)
class UsageRequest:
    feature: str
    quantity: int
    idempotency_key: str
    enforce: bool = False
    timestamp: datetime | None = None


class Current(TypedDict):
    """The counter as it stands now, for a repeat's answer (its other numbers are the first
    time's): a retry learns that the limit has since been reached."""

    used: int
    limit: int | None
    remaining: int | None
    resets_at: str | None


class UsageAnswer(TypedDict):
    """`/v1/usage`'s body (`schemas.UsageOut`), as stored with the event and answered again to a
    repeat: a plain dict at run time, typed as it is built."""

    tenant: str
    feature: str
    idempotency_key: str
    quantity: int
    recorded: bool
    duplicate: bool
    used: int
    limit: int | None
    remaining: int | None
    resets_at: str | None
    current: NotRequired[Current]  # a repeat's only
    # A credit-priced feature's only (see `credits`): what it cost, the balance after it, and
    # what of the cost went past the balance.
    pool: NotRequired[str]
    cost: NotRequired[int]
    balance: NotRequired[int]
    overage: NotRequired[int]


@dataclass(slots=True)
class Recorded:
    body: UsageAnswer
    created: bool  # False when the key had been seen: nothing was counted this time


@dataclass(slots=True)
class Write:
    """What `record` writes, decided from the read before it."""

    access: entitlements.Access
    project_id: int
    project_key: str
    feature: FeatureRow
    request: UsageRequest
    resets_at: datetime | None
    limit: int | None  # the limit to enforce, if any
    shown_limit: int | None  # the limit the answer reports
    now: datetime
    counter: repository.CounterKey  # the counter it counts into
    price: credits.Priced | None = None  # a credit-priced feature's
    take: credits.WholeTake | None = None  # and its common case, bound with the read

    @property
    def event(self) -> dict[str, Any]:
        """What `repository.count_and_claim` (and its priced variant) counts and claims, but the
        counter and the answer: the quantity within the limit, the key and the moments."""
        request = self.request
        return {
            "quantity": request.quantity,
            "limit": self.limit,
            "key": request.idempotency_key,
            "occurred_at": request.timestamp or self.now,
            "now": self.now,
        }

    @property
    def movement(self) -> dict[str, Any]:
        """How the credits' ledger names what this use takes: its key, feature, quantity and
        moment (see `credits.apply`)."""
        request = self.request
        return {
            "key": request.idempotency_key,
            "feature_id": self.feature.id,
            "quantity": request.quantity,
            "now": self.now,
        }

    @property
    def ident(self) -> tuple[int, str]:
        """The event's key as `repository.Earlier` has it: (tenant id, idempotency key)."""
        return self.counter.tenant_id, self.request.idempotency_key


def prepare(
    sql: Sql,
    found: Found,
    request: UsageRequest,
    now: datetime,
    grace_days: int,
    access: entitlements.Access | None = None,
) -> Write | Recorded:
    """Validate the request against what was read; a refusal that is a repeat is answered now.

    Raises the request's errors (404 feature, 400 on/off feature, 422 timestamp, 402).
    `access` may be given when already worked out from `found` (a batch's events share it).
    """
    feature = countable_feature(sql, found, request.feature)
    moment = request.timestamp
    if moment is not None and not now - PAST_WINDOW <= moment <= now + FUTURE_TOLERANCE:
        raise _out_of_range(moment, now)
    access = access or entitlements.access_of(sql, found, now, grace_days)
    # A countable feature always has a period.
    period = present(entitlements.period_of(access, feature, now), f"{feature.key}'s period")
    grant = access.grants.get(feature.id)
    limit = grant.limit if grant and grant.enabled and feature.type == "limit" else None
    used = access.used.get(feature.id, 0)
    if request.enforce and not _fits(access, feature, grant, limit, used, request):
        decision = entitlements.decide(access, feature, used, request.quantity, now)
        if not decision.allowed:
            # A retry of a request that was counted before the limit filled is still a repeat.
            earlier = repository.event_by_key(sql, access.tenant_id, request.idempotency_key)
            if earlier is None:
                raise _refusal(decision, feature, access.tenant_key, request)
            return _repeat(earlier, feature, request, _current(limit, used, period.resets_at))
    price = credits.priced(feature)  # judged in the write, on the buckets under lock
    take = None
    if price is not None:
        take = credits.whole_take(
            sql, price, access, _allowance_keys(access, now), key=request.idempotency_key,
            feature_id=feature.id, quantity=request.quantity, now=now,
        )  # fmt: skip
    return Write(
        access=access,
        project_id=found.project_id,
        project_key=found.project_key,
        feature=feature,
        request=request,
        resets_at=period.resets_at,
        limit=limit if request.enforce else None,
        shown_limit=limit,
        now=now,
        counter=repository.CounterKey(access.tenant_id, feature.id, period.key),
        price=price,
        take=take,
    )


def _out_of_range(moment: datetime, now: datetime) -> TimestampOutOfRange:
    # Comparing aware datetimes never overflows; converting year 1 at +14:00 to UTC would.
    when = "in the future" if moment > now else "too long ago"
    return TimestampOutOfRange(
        f"'timestamp' lies {when}: usage may be dated at most {PAST_WINDOW.days} days back and "
        f"{FUTURE_TOLERANCE.seconds // 60} minutes ahead of billplane's clock "
        f"({now.isoformat(timespec='seconds').replace('+00:00', 'Z')}).",
        extra={"param": "timestamp"},
    )


def _fits(
    access: entitlements.Access,
    feature: FeatureRow,
    grant: Grant | None,
    limit: int | None,
    used: int,
    request: UsageRequest,
) -> bool:
    """The common case of `entitlements.decide`, without building its answer."""
    if grant is None or not grant.enabled or access.tenant_archived or feature.archived:
        return False
    return limit is None or used + request.quantity <= limit


def record(sql: Sql, write: Write) -> Recorded | BillplaneError:
    """Count the usage and claim its key, in the writer's open transaction.

    The counter goes first (its guarded upsert decides whether the quantity fits), then the
    event with its answer; a key that turns out to be taken gives the quantity back, still
    inside the same transaction, so a repeat never counts.
    """
    request = write.request
    if write.take is not None:
        fast = _record_priced_whole(sql, write, write.take)
        if fast is not None:
            return fast
    taken = None
    if write.price is not None:  # decided on the pool's buckets, read under lock
        taken = credits.deduction(
            sql, write.price, write.access, request.quantity, write.now, enforce=request.enforce
        )
        if taken.refused:
            return _refused_credits(sql, write, taken)
    body, claimed = repository.count_and_claim(
        sql, write.counter, **write.event, answer=partial(_answer, write, taken=taken)
    )
    if body is None:
        return _over_limit(sql, write)
    if claimed:
        if taken is not None:
            _charge(sql, write, taken)
        _tell_thresholds(sql, write, body["used"] - request.quantity, body["used"])
        return Recorded(cast(UsageAnswer, body), created=True)  # the answer just stored
    return _repeated(sql, write, body["used"])


def _over_limit(sql: Sql, write: Write) -> Recorded | BillplaneError:
    """Nothing was counted, the limit being reached: a repeat of a key counted before is
    answered as that event; anything else is refused with the reason."""
    request, feature = write.request, write.feature
    used = reads.counter(sql, **write.counter.values())
    earlier = repository.event_by_key(sql, write.access.tenant_id, request.idempotency_key)
    if earlier is not None:
        return _outcome_of_repeat(earlier, feature, request, _current_of(write, used))
    decision = entitlements.decide(write.access, feature, used, request.quantity, write.now)
    return _refusal(decision, feature, write.access.tenant_key, request)


def _repeated(sql: Sql, write: Write, used: int) -> Recorded | BillplaneError:
    """The usage was counted (to `used`) but its key was taken by an event this transaction can
    see: the count is given back, still inside the transaction, and the earlier event answers."""
    request = write.request
    repository.take_back(sql, write.counter, request.quantity)
    earlier = present(
        repository.event_by_key(sql, write.access.tenant_id, request.idempotency_key),
        "the earlier event",
    )
    current = _current_of(write, used - request.quantity)
    return _outcome_of_repeat(earlier, write.feature, request, current)


def _record_priced_whole(
    sql: Sql, write: Write, take: credits.WholeTake
) -> Recorded | BillplaneError | None:
    """The common case of a credit-priced usage: the cost taken whole out of one bucket, then
    counted and claimed as any usage, then its ledger row. PostgreSQL does it in one statement
    (`repository.count_claim_and_charge`), SQLite in its in-process statements, the take first
    (`credits.take_whole`). A usage that does not count (over its limit, or a repeat) puts the
    credits back in the same transaction. None when the common case does not hold (the cost
    passes the first bucket, one expired with credits left, the period's allowance is not in
    its bucket yet): nothing was written, `record` goes on."""
    request, cost = write.request, take.cost
    if sql.is_sqlite:
        took = credits.take_whole(sql, take)
        if took is None:
            return None
        spent = credits.numbers(took.pool, cost, took.balance)
        body, claimed = repository.count_and_claim(
            sql, write.counter, **write.event, answer=partial(_charged_answer, write, spent, 0)
        )
        if body is not None and claimed:
            credits.log_whole_take(sql, take, took)
    else:
        template = _charged_answer(write, credits.numbers("", cost, 0), 0, 0)  # SQL fills it
        charged = repository.count_claim_and_charge(
            sql, write.counter, **write.event, template=template, take=take.values
        )
        if charged is None:
            return None
        took, total, claimed = charged
        spent = credits.numbers(took.pool, cost, took.balance)
        body = None if total is None else _charged_answer(write, spent, 0, total)
    if body is None or not claimed:
        credits.put_back_whole(sql, took, cost)
        return _over_limit(sql, write) if body is None else _repeated(sql, write, body["used"])
    _tell_thresholds(sql, write, body["used"] - request.quantity, body["used"])
    return Recorded(cast(UsageAnswer, body), created=True)


def _allowance_keys(access: entitlements.Access, now: datetime) -> tuple[str, str, str]:
    """The keys of the periods a plan's allowance may reset by: the day's, the month's and the
    billing period's."""
    keys = entitlements.period_keys(now)
    billing = period_for("billing_period", now, access.subscription)
    return keys["day_key"], keys["month_key"], billing.key


def _charge(sql: Sql, write: Write, taken: credits.Deduction) -> None:
    """Take the credits of a usage just claimed; an overage the plan allows is counted as usage
    of its metered feature, in the billing period (metered use's default reset)."""
    credits.apply(sql, taken, **write.movement)
    overage, feature_id = taken.spread.overage, taken.pool.overage_feature_id
    if overage and feature_id is not None:
        period = period_for("billing_period", write.now, write.access.subscription)
        counter = repository.CounterKey(write.access.tenant_id, feature_id, period.key)
        repository.count(sql, counter, overage)


def _refused_credits(sql: Sql, write: Write, taken: credits.Deduction) -> Recorded | BillplaneError:
    """A credit-priced use that does not fit the balance: a repeat of a key counted before is
    answered as such; anything else is refused (402 `insufficient_credits`), nothing written."""
    request = write.request
    earlier = repository.event_by_key(sql, write.access.tenant_id, request.idempotency_key)
    if earlier is not None:
        used = reads.counter(sql, **write.counter.values())
        return _outcome_of_repeat(earlier, write.feature, request, _current_of(write, used))
    balance = taken.spread.available
    return PaymentRequired(
        "insufficient_credits",
        f"Recording {request.quantity} of '{write.feature.key}' costs {taken.cost} "
        f"'{taken.pool.pool_key}' credits; the balance is {balance}.",
        extra={**taken.numbers, "balance": balance},
    )


class BatchWrite:
    """The write of a batch's events, a job for the hot path's writer (see `record_batch`).

    The events already recorded under the batch's keys are looked up with the read, outside
    the write's transaction. Should another transaction record one of those keys meanwhile,
    the insert fails and the writer runs the job again: that run looks again, inside its own
    transaction, and answers the event as the repeat it now is.
    """

    def __init__(self, sql: Sql, writes: list[Write]) -> None:
        self.writes = writes
        self._earlier: repository.Earlier | None = repository.events_of(sql, self._idents())

    def _idents(self) -> list[tuple[int, str]]:
        return [w.ident for w in self.writes]

    def __call__(self, sql: Sql) -> list[Recorded | BillplaneError]:
        earlier, self._earlier = self._earlier, None
        if earlier is None:
            earlier = repository.events_of(sql, self._idents())
        return record_batch(sql, self.writes, earlier)


def record_batch(
    sql: Sql, writes: list[Write], earlier: repository.Earlier
) -> list[Recorded | BillplaneError]:
    """A batch's writes: those of credit-priced features one by one, as `record` writes them
    (each takes credits under the pool's lock), before the others (see `_record_counted`).

    Priced first: a lone usage locks the pool's buckets, its counter, then its overage's
    counter; a batch that locked the overage's counter for a direct use first could wait for
    that usage's counter while the usage waits for the overage's (a PostgreSQL deadlock). Only
    a priced event that repeats an earlier plain event's key comes after the plain ones, as the
    repeat it is. The priced events go by tenant (in their order within each tenant, whose
    events alone touch its buckets and counters), so that two batches lock buckets in one
    order."""
    if all(w.price is None for w in writes):
        return _record_counted(sql, writes, earlier)
    # Of two events under one key, the batch's first is counted and the other is its repeat,
    # whichever is priced: a priced event whose key a plain one took first waits for it.
    first: dict[tuple[int, str], Write] = {}
    for write in writes:
        first.setdefault(write.ident, write)
    priced, plain, after = [], [], []
    for index, write in enumerate(writes):
        if write.price is None:
            plain.append(index)
        elif first[write.ident].price is None:
            after.append(index)
        else:
            priced.append(index)
    priced.sort(key=lambda index: writes[index].counter.tenant_id)  # stable
    outcomes: list[Recorded | BillplaneError | None] = [None] * len(writes)
    for index in priced:
        write = writes[index]
        outcome = outcomes[index] = record(sql, write)
        if isinstance(outcome, Recorded) and outcome.created:  # a later event's key: a repeat
            earlier[write.ident] = (write.feature.id, write.request.quantity, outcome.body)
    if plain:
        counted = _record_counted(sql, [writes[i] for i in plain], earlier)
        for index, outcome in zip(plain, counted, strict=True):
            outcomes[index] = outcome
    for index in after:  # repeats of a plain event's key, found taken in this transaction
        outcomes[index] = record(sql, writes[index])
    return [o for o in outcomes if o is not None]  # every index got its outcome


def _record_counted(
    sql: Sql, writes: list[Write], earlier: repository.Earlier
) -> list[Recorded | BillplaneError]:
    """A batch's writes in one go, judged in their order, in the writer's open transaction.

    `earlier` holds the events recorded before under the writes' keys. The counters are read
    under lock and every event is judged against the running totals (so a batch that crosses a
    limit admits exactly what fits), then the new events are inserted and the totals written:
    a handful of statements for a thousand events, the fewest that hold the counters' locks.
    """
    keys = [w.counter for w in writes]
    # A counter the read saw above zero exists: it is only ever removed at zero.
    seen = {w.counter for w in writes if w.access.used.get(w.counter.feature_id, 0) > 0}
    totals = repository.lock_counters(sql, keys, seen)
    before = dict(totals)
    outcomes: list[Recorded | BillplaneError] = []
    rows: list[tuple[Any, ...]] = []
    stored_time = sql.times(as_text=False)
    for write, key in zip(writes, keys, strict=True):
        request, ident = write.request, write.ident
        if ident in earlier:
            current = _current_of(write, totals[key])
            outcomes.append(_outcome_of_repeat(earlier[ident], write.feature, request, current))
            continue
        used = totals[key]
        if write.limit is not None and used + request.quantity > write.limit:
            decision = entitlements.decide(
                write.access, write.feature, used, request.quantity, write.now
            )
            outcomes.append(_refusal(decision, write.feature, write.access.tenant_key, request))
            continue
        used = totals[key] = used + request.quantity
        body = _answer(write, used)
        earlier[ident] = (key.feature_id, request.quantity, body)  # a repeat later in the batch
        rows.append(
            (  # in `repository.EVENT_ROW` order
                key.tenant_id,
                key.feature_id,
                request.idempotency_key,
                request.quantity,
                key.period_key,
                stored_time(request.timestamp or write.now),
                stored_time(write.now),
                sql.stored_json(body),
            )
        )
        outcomes.append(Recorded(body, created=True))
        _tell_thresholds(sql, write, used - request.quantity, used)
    repository.insert_events(sql, rows)
    repository.set_counters(sql, {k: v for k, v in totals.items() if v != before[k]})
    repository.drop_empty(sql, [k for k, v in totals.items() if v == 0])
    return outcomes


def _tell_thresholds(sql: Sql, write: Write, before: int, after: int) -> None:
    """`tenant.usage.threshold` for each share of the limit (80%, 100%) this use reached, in
    the write's own transaction; once per period (`outbox.usage_threshold`). The common case,
    far from the limit, costs two comparisons and no statement."""
    limit = write.shown_limit
    if not limit or 5 * after < 4 * limit or before >= limit:
        return
    for percent in outbox.thresholds_crossed(before, after, limit):
        outbox.usage_threshold(
            sql,
            project=(write.project_id, write.project_key),
            tenant=(write.access.tenant_id, write.access.tenant_key),
            feature=(write.feature.id, write.feature.key),
            period=(write.counter.period_key, write.resets_at),
            percent=percent,
            used=after,
            limit=limit,
            now=write.now,
        )


def lock_order(write: Write) -> tuple[int, int, str]:
    """The order the writer runs concurrent writes in: PostgreSQL's row locks are then taken
    in one order by every worker, so two transactions seldom wait for each other in a circle.
    A credit-priced write locks its tenant's bucket first, so it runs before the writes that
    lock that tenant's counters (see `credits.lock_order`)."""
    if write.price is not None:
        return credits.lock_order(write.counter.tenant_id)
    return write.counter


def _answer(write: Write, total: int, taken: credits.Deduction | None = None) -> UsageAnswer:
    if taken is not None:
        return _charged_answer(write, taken.numbers, taken.spread.overage, total)
    limit = write.shown_limit
    answer: UsageAnswer = {
        "tenant": write.access.tenant_key,
        "feature": write.feature.key,
        "idempotency_key": write.request.idempotency_key,
        "quantity": write.request.quantity,
        "recorded": True,
        "duplicate": False,
        "used": total,
        "limit": limit,
        "remaining": None if limit is None else max(limit - total, 0),
        "resets_at": _iso(write.resets_at),
    }
    return answer


def _charged_answer(
    write: Write, spent: credits.CreditNumbers, overage: int, total: int
) -> UsageAnswer:
    """A credit-priced usage's answer: `_answer` with what it cost and the balance left."""
    answer = _answer(write, total)
    answer.update(spent)  # type: ignore[typeddict-item]
    answer["overage"] = overage
    return answer


@lru_cache(maxsize=256)  # a batch's events share a handful of periods
def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def countable_feature(sql: Sql, found: Found, key: str) -> FeatureRow:
    feature = next((f for f in found.features if f.key == key), None)
    if feature is None:
        raise entitlements.unknown_feature(sql, found, key)
    if feature.type == "boolean":
        raise InvalidInput(
            f"Feature '{key}' is an on/off feature; only limit and metered features count usage.",
            extra={"param": "feature"},
        )
    return feature


def _outcome_of_repeat(
    earlier: tuple[int, int, repository.Stored],
    feature: FeatureRow,
    request: UsageRequest,
    current: Current,
) -> Recorded | BillplaneError:
    try:
        return _repeat(earlier, feature, request, current)
    except IdempotencyKeyReused as exc:
        return exc


def _repeat(
    earlier: tuple[int, int, repository.Stored],
    feature: FeatureRow,
    request: UsageRequest,
    current: Current,
) -> Recorded:
    """The first answer again, marked `duplicate`, with the counter as it is now."""
    feature_id, quantity, response = earlier
    if feature_id != feature.id or quantity != request.quantity:
        raise IdempotencyKeyReused(
            f"Idempotency key '{request.idempotency_key}' was already used for a different "
            "feature or quantity.",
            extra={"param": "idempotency_key"},
        )
    body = cast(UsageAnswer, {**response, "duplicate": True, "current": current})
    return Recorded(body, created=False)


def _current_of(write: Write, used: int) -> Current:
    return _current(write.shown_limit, used, write.resets_at)


def _current(limit: int | None, used: int, resets_at: datetime | None) -> Current:
    remaining = None if limit is None else max(limit - used, 0)
    return {"used": used, "limit": limit, "remaining": remaining, "resets_at": _iso(resets_at)}


def _refusal(
    decision: entitlements.Decision, feature: FeatureRow, tenant_key: str, request: UsageRequest
) -> PaymentRequired:
    messages = {
        "limit_reached": f"Recording {request.quantity} more would pass the limit of "
        f"{decision.limit} for '{feature.key}'.",
        "not_in_plan": f"Tenant '{tenant_key}''s plan does not include '{feature.key}'.",
        "no_plan": f"Tenant '{tenant_key}' has no plan.",
        "subscription_inactive": f"Tenant '{tenant_key}''s subscription is not active.",
        "tenant_archived": f"Tenant '{tenant_key}' is archived; restore it to record usage.",
        "feature_archived": f"Feature '{feature.key}' is archived; restore it to record usage.",
    }
    extra = {
        "limit": decision.limit,
        "used": decision.used,
        "remaining": decision.remaining,
    }
    return PaymentRequired(decision.reason, messages[decision.reason], extra=extra)
