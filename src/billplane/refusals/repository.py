"""The refusal log's rows: written in batches on the hot path's writer, read by the operator."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Select, Table, bindparam, delete, select
from sqlalchemy.orm import Session

from billplane.hotpath import Sql, Statement
from billplane.models import Refusal


class Noted(NamedTuple):
    """A refusal as the edge answered it, in the table's column order."""

    project_id: int
    tenant: str
    feature: str
    reason: str
    source: str  # check | usage
    quantity: int
    limit: int | None
    used: int | None
    at: datetime


COLUMNS = Noted._fields
_TABLE = cast(Table, Refusal.__table__)


def store(sql: Sql, noted: Sequence[Noted]) -> None:
    stored = sql.times(as_text=False)
    sql.insert_rows(_TABLE, COLUMNS, [(*n[:-1], stored(n.at)) for n in noted])


PRUNE_BEFORE = Statement(lambda _: delete(Refusal).where(Refusal.at < bindparam("before")))


def prune_before(sql: Sql, before: datetime) -> None:
    sql.run(PRUNE_BEFORE, {"before": sql.time(before)})


def _beyond(_: str) -> Any:
    newest_kept = (
        select(Refusal.id)
        .where(Refusal.project_id == bindparam("project_id"))
        .order_by(Refusal.id.desc())
        .limit(1)
        .offset(bindparam("most"))
        .scalar_subquery()
    )
    return delete(Refusal).where(
        Refusal.project_id == bindparam("project_id"), Refusal.id <= newest_kept
    )


PRUNE_BEYOND = Statement(_beyond)


def prune_beyond(sql: Sql, project_id: int, most: int) -> None:
    """Keep the project's `most` newest rows: the one `most` rows past the newest goes, and
    every older one."""
    sql.run(PRUNE_BEYOND, {"project_id": project_id, "most": most})


def recent(
    session: Session,
    project_id: int,
    *,
    tenant: str | None,
    feature: str | None,
    reason: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    starting_after: int | None,
) -> list[Refusal]:
    """The newest first, one more than `limit` (the caller tells `has_more` by it)."""
    query: Select[Refusal] = select(Refusal).where(Refusal.project_id == project_id)
    for column, value in ((Refusal.tenant, tenant), (Refusal.feature, feature)):
        if value is not None:
            query = query.where(column == value)
    if reason is not None:
        query = query.where(Refusal.reason == reason)
    if since is not None:
        query = query.where(Refusal.at >= since)
    if until is not None:
        query = query.where(Refusal.at < until)
    if starting_after is not None:
        query = query.where(Refusal.id < starting_after)
    return list(session.scalars(query.order_by(Refusal.id.desc()).limit(limit + 1)))
