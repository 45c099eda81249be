"""The ledger's unique key leaves a usage's own rows out (a partial index, one page fewer per
credit-priced usage); the queries that look movements up by key say so, and use it. So does
the tenant's index, which leaves out the rows chained to their bucket: the ledger shown finds
the others there and walks the chains, never reading the whole ledger."""

from typing import Any

import pytest

from billplane.credits import repository
from billplane.db import Database
from billplane.hotpath import Statement, _params

INDEX = "uq_credit_ledger_movement"
TENANT_INDEX = "ix_credit_ledger_tenant_id_pool_id_id"
VALUES = {
    "tenant_id": 1,
    "pool_id": 1,
    "limit": 50,
    "key": "reservation:r_1",
    "bucket_id": 1,
    "public_id": "r_1",
}


@pytest.mark.parametrize(
    "statement",
    [repository.HELD_PARTS, repository.SETTLING_BUCKETS, repository.REFUNDS_SHORT],
    ids=["held-parts", "settling-buckets", "refunds-short"],
)
def test_a_lookup_by_movement_uses_the_partial_unique_index(
    database: Database, statement: Statement
) -> None:
    assert INDEX in _plan(database, statement)


def test_the_ledger_shown_uses_the_tenants_index_and_reads_no_whole_table(
    database: Database,
) -> None:
    plan = _plan(database, repository.LEDGER_OF)
    assert TENANT_INDEX in plan
    whole = "SCAN credit_ledger" if database.is_sqlite else "Seq Scan on credit_ledger"
    assert whole not in plan, plan


def _plan(database: Database, statement: Statement) -> str:
    dialect = database.engine.dialect
    sql, names, constants, _ = statement.compiled(dialect)
    raw: Any = database.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if dialect.name == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", _params(VALUES, names, constants))
            return "\n".join(str(row[-1]) for row in cursor.fetchall())
        cursor.execute("SET enable_seqscan = off")  # a tiny table: the plan a big one gets
        cursor.execute(f"EXPLAIN {sql}", _params(VALUES, names, constants))
        return "\n".join(str(row[0]) for row in cursor.fetchall())
    finally:
        raw.rollback()
        raw.close()
