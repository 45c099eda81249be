"""Statements bound before the writer's turn (`Statement.bind`) run as `Sql.run` would run them,
with the values the turn learns bound last."""

import sqlite3

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, bindparam, create_engine, insert, select
from sqlalchemy.dialects import sqlite

from billplane.hotpath import Sql, Statement

MOVES = Table(
    "moves",
    MetaData(),
    Column("tenant", Integer),
    Column("amount", Integer),
    Column("bucket", Integer),
)
# The bucket last, whatever the table's order: the turn binds it (as the credits' ledger row).
INSERT = Statement(
    lambda _: insert(MOVES).from_select(
        ["tenant", "amount", "bucket"], select(bindparam("t"), bindparam("a"), bindparam("b"))
    )
)
SELECT = Statement(lambda _: select(MOVES).where(MOVES.c.tenant == bindparam("t")))


@pytest.fixture
def sql() -> Sql:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE moves (tenant INTEGER, amount INTEGER, bucket INTEGER)")
    return Sql(conn.cursor(), sqlite.dialect())


def test_a_statement_bound_with_its_last_value_left_for_later_writes_that_value(sql: Sql) -> None:
    bound = sql.bind(INSERT, {"t": 7, "a": -3}, later=1)
    assert bound.params == (7, -3)
    assert not bound.returns_rows
    assert sql.run_bound(bound, 42) == ()
    assert sql.run(SELECT, {"t": 7}) == [(7, -3, 42)]


def test_a_statement_bound_whole_answers_its_rows(sql: Sql) -> None:
    sql.run(INSERT, {"t": 1, "a": 5, "b": 9})
    bound = sql.bind(SELECT, {"t": 1})
    assert bound.returns_rows
    assert sql.run_bound(bound) == [(1, 5, 9)]


def test_only_a_positional_paramstyle_leaves_values_for_later() -> None:
    # psycopg's named parameters are a dict: no order to bind the rest after.
    dialect = create_engine("postgresql+psycopg://").dialect
    with pytest.raises(ValueError, match="positional"):
        INSERT.bind(dialect, {"t": 1, "a": 5}, later=1)
    assert INSERT.bind(dialect, {"t": 1, "a": 5, "b": 9}).params == {"t": 1, "a": 5, "b": 9}
