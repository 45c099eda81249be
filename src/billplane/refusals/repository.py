"""The refusal log's rows: written in batches on the hot path's writer, read by the operator."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Select, Table, bindparam, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from billplane.hotpath import Sql, Statement
from billplane.models import DailyChecks, Project, Refusal
from billplane.sql import utc_day


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


def _add_checks(dialect: str) -> Any:
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    insert = dialect_insert(DailyChecks).values(
        project_id=bindparam("project_id"),
        day=bindparam("day"),
        checks=bindparam("checks"),
        refused=bindparam("refused"),
    )
    return insert.on_conflict_do_update(
        index_elements=["project_id", "day"],
        set_={
            "checks": DailyChecks.checks + insert.excluded.checks,
            "refused": DailyChecks.refused + insert.excluded.refused,
        },
    )


ADD_CHECKS = Statement(_add_checks)


def add_checks(sql: Sql, project_id: int, day: str, checks: int, refused: int) -> None:
    values = {"project_id": project_id, "day": day, "checks": checks, "refused": refused}
    sql.run(ADD_CHECKS, values)


def daily_checks(session: Session, since: str) -> list[tuple[str, str, int, int]]:
    """Every project's days from `since` (YYYY-MM-DD) on: (project key, day, checks, refused)."""
    query = (
        select(Project.key, DailyChecks.day, DailyChecks.checks, DailyChecks.refused)
        .join(Project, Project.id == DailyChecks.project_id)
        .where(DailyChecks.day >= since)
    )
    return [
        (key, day, int(checks), int(refused))
        for key, day, checks, refused in session.execute(query)
    ]


def daily_refusals(
    session: Session, project_id: int, tenant: str, since: datetime
) -> list[tuple[str, str, int]]:
    """A tenant's refusals since `since`, counted per (feature, UTC day)."""
    day = utc_day(session.get_bind().dialect.name, Refusal.at)
    query = (
        select(Refusal.feature, day, func.count())
        .where(Refusal.project_id == project_id, Refusal.tenant == tenant, Refusal.at >= since)
        .group_by(Refusal.feature, day)
    )
    return [(feature, day_, int(count)) for feature, day_, count in session.execute(query)]
