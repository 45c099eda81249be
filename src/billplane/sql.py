"""Small SQL building blocks that differ between SQLite and PostgreSQL."""

from typing import Any

from sqlalchemy import ColumnElement, Insert, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignoring_conflict(
    session: Session, table: Any, values: dict[str, Any], conflict_columns: list[str]
) -> Insert:
    """An INSERT that does nothing when a row with the same unique columns already exists.

    On PostgreSQL it waits for a concurrent insert of the same key to commit or roll back, so
    the caller learns the truth rather than a guess.
    """
    if session.get_bind().dialect.name == "postgresql":
        pg = postgresql.insert(table).values(**values)
        return pg.on_conflict_do_nothing(index_elements=conflict_columns)
    lite = sqlite.insert(table).values(**values)
    return lite.on_conflict_do_nothing(index_elements=conflict_columns)


def utc_day(dialect: str, column: Any) -> ColumnElement[str]:
    """The UTC day of a stored time, as `YYYY-MM-DD` text, on either engine (SQLite keeps
    times as naive UTC text; PostgreSQL as `timestamptz`, shown in the session's zone)."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)
