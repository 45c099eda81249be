"""Database trouble is a 503 `database_unavailable` with `Retry-After`, never a 500: a pool with
no free connection, a database that cannot be reached, a backend ended under the hot path (whose
connections then come back by themselves). Under load, against real servers:
tests/usage/test_database_faults_e2e.py.
"""

import re
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import errors as pg
from sqlalchemy import exc as sa

from billplane.app import create_app
from billplane.db import Database
from billplane.outage import (
    PREPARED_STATEMENT_LOST,
    describe,
    is_outage,
    prepared_statement_lost,
)
from billplane.settings import Settings
from conftest import ADMIN_TOKEN, PG_URL, fresh_database
from servers import free_port

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _sqlite_error(code: int, name: str) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(name)
    error.sqlite_errorcode, error.sqlite_errorname = code, name  # as sqlite3 sets them
    return error


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (pg.AdminShutdown("terminating connection due to administrator command"), True),
        (psycopg.OperationalError("consuming input failed: server closed the connection"), True),
        (pg.TooManyConnections("sorry, too many clients already"), True),
        (pg.CannotConnectNow("the database system is starting up"), True),
        (pg.DeadlockDetected("deadlock detected"), True),
        (pg.LockNotAvailable("could not obtain lock"), True),
        (sa.TimeoutError("QueuePool limit of size 4 overflow 6 reached"), True),
        (sa.OperationalError("SELECT 1", {}, pg.AdminShutdown("terminating")), True),
        (_sqlite_error(5, "SQLITE_BUSY"), True),
        (_sqlite_error(14, "SQLITE_CANTOPEN"), True),
        # Bugs, not outages: they stay 500s.
        (pg.UndefinedTable('relation "tenants" does not exist'), False),
        (pg.UniqueViolation("duplicate key value"), False),
        (pg.StatementTooComplex("stack depth limit exceeded"), False),
        (sa.ProgrammingError("SELECT x", {}, pg.UndefinedColumn("column x")), False),
        (_sqlite_error(1, "SQLITE_ERROR"), False),  # no such table
        # A pooler that does not keep prepared statements: a setting to change (see below).
        (
            pg.ProtocolViolation(
                'bind message supplies 14 parameters, but prepared statement "_pg3_0" requires 10'
            ),
            False,
        ),
        (ValueError("not a database error"), False),
    ],
)
def test_an_outage_is_told_from_a_bug(error: Exception, outage: bool) -> None:
    assert is_outage(error) is outage


@pytest.mark.parametrize(
    "error",
    [
        pg.DuplicatePreparedStatement('prepared statement "_pg3_0" already exists'),
        pg.InvalidSqlStatementName('prepared statement "_pg3_2" does not exist'),
        sa.ProgrammingError("SELECT 1", {}, pg.InvalidSqlStatementName('"_pg3_1" does not exist')),
    ],
)
def test_a_prepared_statement_lost_to_a_pooler_is_told_apart(error: Exception) -> None:
    """PgBouncer in transaction mode before 1.21 with prepared statements left on: the log
    names the setting to change (tests/test_scale_out.py runs it with the setting)."""
    assert prepared_statement_lost(error)
    assert not is_outage(error)
    assert "BILLPLANE_DB_PREPARED_STATEMENTS=false" in PREPARED_STATEMENT_LOST


def test_the_log_line_leaves_out_the_statement_and_its_parameters() -> None:
    error = sa.OperationalError(
        "SELECT * FROM tokens WHERE digest = %(d)s", {"d": "s3cr3t"}, pg.AdminShutdown("ended")
    )
    assert describe(error) == "AdminShutdown: ended"


def _assert_unavailable(answer: Any) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "database_unavailable"
    assert answer.headers["Retry-After"] == "1"


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database("postgresql", tmp_path_factory.mktemp("outage")) as url:
        yield url


def _served(url: str, **engine: Any) -> tuple[TestClient, Database]:
    settings = Settings(database_url=url, billplane_admin_token=ADMIN_TOKEN)
    db = Database(settings.sqlalchemy_url, **engine)
    return TestClient(create_app(settings, db=db), raise_server_exceptions=False), db


def _project(client: TestClient) -> str:
    """A project with a limit feature of a million, a default plan and the tenant acme."""
    key = f"p{secrets.token_hex(4)}"
    steps: list[tuple[str, dict[str, Any]]] = [
        ("", {"key": key, "name": key}),
        (f"/{key}/features", {"key": "reports", "name": "Reports", "type": "limit"}),
        (f"/{key}/plans", {"key": "free", "name": "Free", "is_default": True,
                           "features": {"reports": {"limit": 1_000_000}}}),
        (f"/{key}/tenants", {"key": "acme"}),
    ]  # fmt: skip
    answers = [client.post(f"/admin/api/projects{p}", json=b, headers=ADMIN) for p, b in steps]
    assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
    return str(answers[0].json()["token"])


def test_a_pool_with_no_connection_free_in_time_answers_503(pg_url: str) -> None:
    client, db = _served(pg_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    with client:
        held = db.engine.connect()  # the pool's only connection
        try:
            _assert_unavailable(client.get("/admin/api/projects", headers=ADMIN))
        finally:
            held.close()
        assert client.get("/admin/api/projects", headers=ADMIN).status_code == 200
    db.dispose()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_database_that_cannot_be_reached_answers_503_to_every_kind_of_call(
    engine: str, tmp_path: Path
) -> None:
    if engine == "sqlite":  # a directory that does not exist: SQLite cannot open the file
        url = f"sqlite:///{tmp_path / 'gone' / 'billplane.db'}"
    else:  # nothing listens there: refused, as while PostgreSQL restarts
        url = f"{PG_URL.rsplit('@', 1)[0]}@127.0.0.1:{free_port()}/billplane"
    client, db = _served(url)
    token = {"Authorization": "Bearer bp_" + "x" * 40}
    with client:
        _assert_unavailable(
            client.post("/v1/check", json={"tenant": "a", "feature": "f"}, headers=token)
        )
        usage = {"tenant": "a", "feature": "f", "idempotency_key": "k"}
        _assert_unavailable(client.post("/v1/usage", json=usage, headers=token))
        _assert_unavailable(client.get("/admin/api/projects", headers=ADMIN))
        scraped = client.get("/metrics")  # what an operator needs most now: the rest is there
        assert scraped.status_code == 200
        assert "billplane_http_request_duration_seconds" in scraped.text
        assert "billplane_app_webhook_deliveries_pending" not in scraped.text
    db.dispose()


def _end_backends(url: str) -> int:
    """End every connection to `url`'s database, as `pg_terminate_backend` by an operator or a
    failover would; how many there were."""
    database = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return len(rows)


def test_the_hot_path_comes_back_by_itself_after_its_backends_are_ended(pg_url: str) -> None:
    """The reader and the writer each keep a connection for good: one found ended while it
    waited is replaced, and the very next check and usage succeed."""
    client, db = _served(pg_url)
    with client:
        token = {"Authorization": f"Bearer {_project(client)}"}
        check = {"tenant": "acme", "feature": "reports"}
        for round_ in range(2):
            assert client.post("/v1/check", json=check, headers=token).status_code == 200
            usage = {**check, "idempotency_key": f"before-{round_}", "enforce": True}
            assert client.post("/v1/usage", json=usage, headers=token).status_code == 201

            assert _end_backends(pg_url) >= 2  # the reader and the writer, at least

            assert client.post("/v1/check", json=check, headers=token).status_code == 200
            usage = {**check, "idempotency_key": f"after-{round_}", "enforce": True}
            answer = client.post("/v1/usage", json=usage, headers=token)
            assert answer.status_code == 201, answer.text
        assert client.post("/v1/check", json=check, headers=token).json()["used"] == 4
    db.dispose()


def test_the_dashboard_answers_an_outage_with_a_503_page(pg_url: str) -> None:
    client, db = _served(pg_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    with client:
        form = client.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf is not None, form
        login = {"csrf": csrf[1], "token": ADMIN_TOKEN, "next": "/"}
        assert client.post("/login", data=login, follow_redirects=False).status_code == 303
        held = db.engine.connect()  # the pool's only connection
        try:
            page = client.get("/projects")
        finally:
            held.close()
        assert page.status_code == 503, page.text[:500]
        assert page.headers["Retry-After"] == "1"
        assert "cannot reach its database" in page.text
        assert client.get("/projects").status_code == 200
    db.dispose()
