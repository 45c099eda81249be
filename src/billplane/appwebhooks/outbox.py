"""Writing events for client apps to the outbox, inside the transaction of the change itself:
if the change rolls back, so does its event, and an event committed is delivered at least once.

An event gets the tenant's next sequence number (its row stays locked until the transaction
ends, so a tenant's numbers follow the order its changes commit in) and one delivery per enabled
endpoint of the project that asked for its type. Nobody asked: nothing is written at all.

Written with the hot path's driver-level statements (`hotpath.Statement`), so that a usage call
that crosses a threshold writes its event in the writer's own transaction; the ORM's callers
reach the same statements through their session's connection (`emit_in`).
"""

import secrets
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final, cast

from sqlalchemy import ClauseElement, Table, bindparam, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from billplane.entitlements.terms import terms_of
from billplane.hotpath import Sql, Statement, from_json
from billplane.models import AppDelivery, AppEvent, AppEventSequence, AppWebhookEndpoint, Project

ENTITLEMENTS_UPDATED: Final = "tenant.entitlements.updated"
USAGE_THRESHOLD: Final = "tenant.usage.threshold"
SUBSCRIPTION_UPDATED: Final = "tenant.subscription.updated"
PAYMENT_FAILED: Final = "invoice.payment_failed"
EVENT_TYPES = (ENTITLEMENTS_UPDATED, USAGE_THRESHOLD, SUBSCRIPTION_UPDATED, PAYMENT_FAILED)

# Percentages of a limit at which `tenant.usage.threshold` is sent, each once per period.
THRESHOLDS = (80, 100)

_ENDPOINTS = cast(Table, AppWebhookEndpoint.__table__)
_SEQUENCES = cast(Table, AppEventSequence.__table__)
_EVENTS = cast(Table, AppEvent.__table__)
_DELIVERIES = cast(Table, AppDelivery.__table__)


def _next_sequence(dialect: str) -> ClauseElement:
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert_(_SEQUENCES).values(tenant_id=bindparam("tenant_id"), last=1)
    return stmt.on_conflict_do_update(
        index_elements=["tenant_id"], set_={"last": _SEQUENCES.c.last + 1}
    ).returning(_SEQUENCES.c.last)


def _insert_event(dialect: str) -> ClauseElement:
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    names = (
        "public_id",
        "project_id",
        "tenant_id",
        "type",
        "sequence",
        "payload",
        "dedupe_key",
        "created_at",
    )
    stmt = insert_(_EVENTS).values({n: bindparam(n) for n in names})
    # A once-only event written twice (the same threshold, say) is dropped the second time.
    return stmt.on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(_EVENTS.c.id)


WATCHERS = Statement(
    lambda _: select(_ENDPOINTS.c.id, _ENDPOINTS.c.events).where(
        _ENDPOINTS.c.project_id == bindparam("project_id"), _ENDPOINTS.c.status == "enabled"
    )
)
NEXT_SEQUENCE = Statement(_next_sequence)
INSERT_EVENT = Statement(_insert_event)
INSERT_DELIVERY = Statement(
    lambda _: insert(_DELIVERIES).values(
        {
            name: bindparam(name)
            for name in (
                "public_id",
                "event_id",
                "endpoint_id",
                "tenant_id",
                "sequence",
                "status",
                "attempts",
                "next_attempt_at",
                "created_at",
            )
        }
    )
)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def watchers(sql: Sql, project_id: int, event_type: str) -> list[int]:
    """The enabled endpoints of the project that asked for `event_type`."""
    rows = sql.run(WATCHERS, {"project_id": project_id})
    return [int(i) for i, events in rows if event_type in from_json(events)]


def emit(
    sql: Sql,
    *,
    project: tuple[int, str],
    tenant: tuple[int, str],
    event_type: str,
    data: dict[str, Any],
    now: datetime,
    dedupe_key: str | None = None,
) -> str | None:
    """Write the event (`project` and `tenant` are (id, key)) for every endpoint that asked for
    it; returns its id (`webhook-id`), or None when nobody asked or it was a repeat."""
    endpoints = watchers(sql, project[0], event_type)
    if not endpoints:
        return None
    ((sequence,),) = sql.run(NEXT_SEQUENCE, {"tenant_id": tenant[0]})
    public_id = new_id("msg")
    payload = {
        "type": event_type,
        "timestamp": iso(now),
        "data": {"project": project[1], "tenant": tenant[1], "sequence": int(sequence), **data},
    }
    written = sql.run(
        INSERT_EVENT,
        {
            "public_id": public_id,
            "project_id": project[0],
            "tenant_id": tenant[0],
            "type": event_type,
            "sequence": int(sequence),
            "payload": sql.json(payload),
            "dedupe_key": dedupe_key,
            "created_at": sql.time(now),
        },
    )
    if not written:
        return None
    for endpoint_id in endpoints:
        sql.run(
            INSERT_DELIVERY,
            {
                "public_id": new_id("dlv"),
                "event_id": int(written[0][0]),
                "endpoint_id": endpoint_id,
                "tenant_id": tenant[0],
                "sequence": int(sequence),
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": sql.time(now),
                "created_at": sql.time(now),
            },
        )
    return public_id


def sql_of(session: Session) -> Sql:
    """The session's own connection, for the outbox's statements (pending ORM changes first)."""
    session.flush()
    return Sql(session.connection().connection.cursor(), session.get_bind().dialect)


def emit_in(
    session: Session,
    *,
    project: tuple[int, str],
    tenant: tuple[int, str],
    event_type: str,
    data: dict[str, Any],
    now: datetime,
    dedupe_key: str | None = None,
) -> str | None:
    """`emit` in an ORM transaction."""
    return emit(
        sql_of(session),
        project=project,
        tenant=tenant,
        event_type=event_type,
        data=data,
        now=now,
        dedupe_key=dedupe_key,
    )


@contextmanager
def entitlements_change(
    session: Session,
    project: Project,
    *,
    now: datetime,
    grace_days: int,
    tenant_ids: Collection[int] | None = None,
) -> Iterator[None]:
    """Around a change that may alter what tenants may do (of the project, or `tenant_ids`):
    `tenant.entitlements.updated` for each tenant whose plan, grants or status it altered, as
    the event tells them (archiving a feature a tenant was not granted, or editing the grants of
    an archived tenant, alters nothing it may do).

    Costs one statement when no endpoint of the project asked for the event."""
    if not watchers(sql_of(session), project.id, ENTITLEMENTS_UPDATED):
        yield
        return
    before = terms_of(session, project.id, now, grace_days, tenant_ids)
    yield
    session.flush()
    after = terms_of(session, project.id, now, grace_days, tenant_ids)
    for tenant_id in sorted(after):  # sequence rows locked in one order by every writer
        terms, earlier = after[tenant_id], before.get(tenant_id)
        if earlier is not None and terms.rendered() == earlier.rendered():
            continue
        emit_in(
            session,
            project=(project.id, project.key),
            tenant=(tenant_id, terms.tenant_key),
            event_type=ENTITLEMENTS_UPDATED,
            data={**terms.rendered(), "previous_plan": earlier.plan if earlier else None},
            now=now,
        )


def thresholds_crossed(before: int, after: int, limit: int | None) -> tuple[int, ...]:
    """The percentages of `limit` that going from `before` to `after` reached."""
    if not limit:
        return ()  # no limit, or nothing allowed at all: nothing to warn of
    return tuple(p for p in THRESHOLDS if before * 100 < p * limit <= after * 100)


def usage_threshold(
    sql: Sql,
    *,
    project: tuple[int, str],
    tenant: tuple[int, str],
    feature: tuple[int, str],
    period: tuple[str, datetime | None],
    percent: int,
    used: int,
    limit: int,
    now: datetime,
) -> str | None:
    """`tenant.usage.threshold` for one percentage of one feature's limit, once per period."""
    period_key, resets_at = period
    return emit(
        sql,
        project=project,
        tenant=tenant,
        event_type=USAGE_THRESHOLD,
        data={
            "feature": feature[1],
            "threshold": percent,
            "used": used,
            "limit": limit,
            "period": period_key,
            "resets_at": iso(resets_at) if resets_at else None,
        },
        now=now,
        dedupe_key=f"{USAGE_THRESHOLD}:{tenant[0]}:{feature[0]}:{period_key}:{percent}",
    )


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
