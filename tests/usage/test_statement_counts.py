"""The hot path's statements, counted where they reach the database driver.

A check is one statement; an enforced usage one read and a write transaction of two statements;
a batch a fixed handful whatever its size. So the client API cannot silently grow again: a new
statement on the hot path makes one of these tests fail, and must be a decision.
"""

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from billplane.app import create_app
from billplane.db import Database
from billplane.settings import Settings
from conftest import ADMIN_TOKEN, fresh_database
from factories import SECRET_KEY


class Statements:
    """Every SQL statement the drivers were handed (hot path and ORM alike), in order."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def count(self, sql: str) -> None:
        self.seen.append(" ".join(sql.split())[:60])

    def take(self) -> list[str]:
        taken, self.seen = self.seen, []
        return taken


def _drain(client: TestClient) -> None:
    """Write now what the hot path keeps for later (the day's check counts, refusals), so that
    its background write cannot land among the statements a test counts."""
    client.app.state.db.drain()  # type: ignore[attr-defined]


class CountingCursor(psycopg.Cursor[Any]):
    statements: Statements

    def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        CountingCursor.statements.count(str(query))
        return super().execute(query, *args, **kwargs)

    def executemany(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        CountingCursor.statements.count(str(query))
        return super().executemany(query, *args, **kwargs)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def counted(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Statements]]:
    """A real app on its own database (no test transaction around it), every statement counted."""
    statements = Statements()
    CountingCursor.statements = statements
    with fresh_database(request.param, tmp_path_factory.mktemp("counted")) as url:
        settings = Settings(
            database_url=url, billplane_admin_token=ADMIN_TOKEN, billplane_secret_key=SECRET_KEY
        )
        db = Database(settings.sqlalchemy_url)

        @event.listens_for(db.engine, "connect")
        def _count(dbapi_connection: Any, _record: Any) -> None:
            if db.is_sqlite:
                dbapi_connection.set_trace_callback(statements.count)
            else:
                dbapi_connection.cursor_factory = CountingCursor

        with TestClient(create_app(settings, db=db)) as client:
            yield client, statements
        db.dispose()


ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _seed(
    client: TestClient, features: int = 1, archived: str | None = None, key: str | None = None
) -> str:
    """A project (`key`, or a new one) with a `limit` feature and `features - 1` on/off ones, 3
    tenants (the one named `archived` archived); its token."""
    admin = ADMIN
    key = key or f"p{secrets.token_hex(4)}"

    def post(path: str, body: dict[str, Any]) -> Any:
        response = client.post(f"/admin/api/projects{path}", json=body, headers=admin)
        assert response.status_code == 201, response.text
        return response.json()

    token = post("", {"key": key, "name": key})["token"]
    post(f"/{key}/features", {"key": "reports", "name": "Reports", "type": "limit"})
    grants: dict[str, Any] = {"reports": {"limit": 1_000_000, "reset": "month"}}
    for i in range(features - 1):
        post(f"/{key}/features", {"key": f"flag{i}", "name": f"F{i}", "type": "boolean"})
        grants[f"flag{i}"] = True
    post(f"/{key}/plans", {"key": "free", "name": "Free", "is_default": True, "features": grants})
    for tenant in ("t0", "t1", "t2"):
        post(f"/{key}/tenants", {"key": tenant})
    if archived is not None:
        patched = client.patch(
            f"/admin/api/projects/{key}/tenants/{archived}",
            json={"status": "archived"},
            headers=admin,
        )
        assert patched.status_code == 200, patched.text
    # Behind us: the one-off "first check" write, and the writer's connection being opened.
    first = client.post("/v1/check", json=_check(), headers=_bearer(token))
    assert first.status_code == 200, first.text
    usage = {**_check("t2"), "idempotency_key": "warm-up"}
    assert client.post("/v1/usage", json=usage, headers=_bearer(token)).status_code == 201
    return str(token)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _check(tenant: str = "t0") -> dict[str, Any]:
    return {"tenant": tenant, "feature": "reports"}


def _kinds(statements: list[str]) -> list[str]:
    return [s.split()[0].upper() for s in statements]


def test_a_check_is_one_statement(counted: tuple[TestClient, Statements]) -> None:
    client, statements = counted
    token = _seed(client)
    _drain(client)
    statements.take()
    answer = client.post("/v1/check", json=_check(), headers=_bearer(token))
    assert answer.status_code == 200, answer.text
    assert _kinds(statements.take()) == ["SELECT"]


def test_a_check_after_a_plan_change_reads_the_plans_once_then_is_one_statement_again(
    counted: tuple[TestClient, Statements],
) -> None:
    """Each worker keeps the project's plans (entitlements/catalogue.py): a change makes the
    next check read them again (three statements more), and the one after is one statement."""
    client, statements = counted
    key = f"p{secrets.token_hex(4)}"
    token = _seed(client, key=key)
    grants = {"features": {"reports": {"limit": 999_999, "reset": "month"}}}
    edited = client.patch(f"/admin/api/projects/{key}/plans/free", json=grants, headers=ADMIN)
    assert edited.status_code == 200, edited.text
    seen = []
    for _ in range(2):
        _drain(client)
        statements.take()
        answer = client.post("/v1/check", json=_check(), headers=_bearer(token))
        assert answer.json()["limit"] == 999_999
        seen.append(_kinds(statements.take()))
    assert seen == [["SELECT"] * 4, ["SELECT"]]


def test_a_check_of_an_archived_tenant_or_feature_is_still_one_statement(
    counted: tuple[TestClient, Statements],
) -> None:
    """Archiving costs the check no statement: the statuses come with the one read."""
    client, statements = counted
    token = _seed(client, archived="t1")
    _drain(client)
    statements.take()
    answer = client.post("/v1/check", json=_check("t1"), headers=_bearer(token))
    assert answer.json()["reason"] == "tenant_archived"
    assert _kinds(statements.take()) == ["SELECT"]


def test_entitlements_of_21_features_is_one_statement(
    counted: tuple[TestClient, Statements],
) -> None:
    client, statements = counted
    token = _seed(client, features=21)
    _drain(client)
    statements.take()
    answer = client.get("/v1/tenants/t0/entitlements", headers=_bearer(token))
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["features"]) == 21
    assert _kinds(statements.take()) == ["SELECT"]


def test_an_enforced_usage_is_one_read_and_one_short_transaction(
    counted: tuple[TestClient, Statements], request: pytest.FixtureRequest
) -> None:
    client, statements = counted
    token = _seed(client)
    _drain(client)
    statements.take()
    body = {**_check(), "idempotency_key": "u1", "enforce": True}
    answer = client.post("/v1/usage", json=body, headers=_bearer(token))
    assert answer.status_code == 201, answer.text
    # The read, then the writer's transaction: the counter's guarded upsert and the event's
    # insert; on PostgreSQL both in one statement (one round trip), on SQLite two in-process.
    writes = ["INSERT", "INSERT"] if "sqlite" in request.node.name else ["WITH"]
    assert _kinds(statements.take()) == ["SELECT", "BEGIN", *writes, "COMMIT"]


def test_only_a_usage_that_crosses_a_threshold_writes_an_event_in_its_transaction(
    counted: tuple[TestClient, Statements], request: pytest.FixtureRequest
) -> None:
    """With an app's endpoint waiting for `tenant.usage.threshold`, a usage below 80% of the
    limit costs what any usage costs; the one that reaches it writes its event (endpoints asked,
    the tenant's sequence, the event, its delivery) before the same COMMIT."""
    client, statements = counted
    key = f"p{secrets.token_hex(4)}"
    token = _seed(client, key=key)
    endpoint = {"url": "https://app.test/hooks", "events": ["tenant.usage.threshold"]}
    created = client.post(
        f"/admin/api/projects/{key}/webhook-endpoints", json=endpoint, headers=ADMIN
    )
    assert created.status_code == 201, created.text
    writes = ["INSERT", "INSERT"] if "sqlite" in request.node.name else ["WITH"]
    counted_usage = []
    for n, quantity in enumerate((799_999, 1)):  # of a limit of 1,000,000
        body = {**_check(), "idempotency_key": f"t{n}", "quantity": quantity}
        statements.take()
        assert client.post("/v1/usage", json=body, headers=_bearer(token)).status_code == 201
        counted_usage.append(_kinds(statements.take()))

    below, reaching = counted_usage
    assert below == ["SELECT", "BEGIN", *writes, "COMMIT"]
    outbox = ["SELECT", "INSERT", "INSERT", "INSERT"]
    assert reaching == ["SELECT", "BEGIN", *writes, *outbox, "COMMIT"]


def test_a_batch_costs_the_same_statements_for_ten_events_or_a_thousand(
    counted: tuple[TestClient, Statements], request: pytest.FixtureRequest
) -> None:
    """On PostgreSQL the same statements, each once; on SQLite the same distinct statements
    (its events' insert is one prepared statement stepped per row, in-process). Counted once
    the tenants' counters exist (a batch that creates counters runs one statement more)."""
    client, statements = counted
    token = _seed(client)
    _drain(client)
    first = [
        {"tenant": f"t{i}", "feature": "reports", "idempotency_key": f"first-{i}"}
        for i in (0, 1, 2)
    ]
    assert client.post("/v1/usage/batch", json={"events": first}, headers=_bearer(token)).is_success
    counts = []
    for size in (10, 1000):
        events = [
            {"tenant": f"t{i % 3}", "feature": "reports", "idempotency_key": f"{size}-{i}"}
            for i in range(size)
        ]
        _drain(client)
        statements.take()
        answer = client.post("/v1/usage/batch", json={"events": events}, headers=_bearer(token))
        assert answer.status_code == 200, answer.text
        assert [item["status"] for item in answer.json()["data"]] == [201] * size
        seen = statements.take()
        counts.append(sorted(set(seen)) if "sqlite" in request.node.name else seen)
    assert counts[0] == counts[1]
    assert len(counts[0]) <= 9, counts[0]


def test_the_counted_path_is_the_production_one(tmp_path: Path) -> None:
    """The fixture above counts at the driver: a statement the hot path runs is seen there."""
    statements = Statements()
    url = f"sqlite:///{tmp_path / 'x.db'}"
    db = Database(url)
    event.listen(db.engine, "connect", lambda conn, _rec: conn.set_trace_callback(statements.count))
    with db.hot.reading() as sql:
        sql.cursor.execute("SELECT 1")
    db.dispose()
    assert statements.take() == ["SELECT 1"]


def test_an_enforced_usage_of_a_credit_priced_feature_costs_no_round_trip_more_on_postgresql(
    counted: tuple[TestClient, Statements], request: pytest.FixtureRequest
) -> None:
    """Credits cost the read nothing (the price comes with the feature's row). The cost is
    taken whole out of the first bucket, then counted, claimed and logged: on PostgreSQL in one
    statement, as a plain usage's; on SQLite (in-process statements) one statement each."""
    client, statements = counted
    key = f"p{secrets.token_hex(4)}"
    token = _seed(client, key=key)
    pool = {"key": "credits", "name": "Credits", "costs": {"reports": 2}}
    made = client.post(f"/admin/api/projects/{key}/credit-pools", json=pool, headers=ADMIN)
    assert made.status_code == 201, made.text
    grant = {"pool": "credits", "amount": 100, "reason": "statement count"}
    path = f"/admin/api/projects/{key}/tenants/t0/credit-grants"
    assert client.post(path, json=grant, headers=ADMIN).status_code == 201
    _drain(client)
    statements.take()
    body = {**_check(), "idempotency_key": "c1", "enforce": True}
    answer = client.post("/v1/usage", json=body, headers=_bearer(token))
    assert answer.status_code == 201, answer.text
    assert answer.json()["balance"] == 98
    sqlite = "sqlite" in request.node.name
    writes = ["UPDATE", "INSERT", "INSERT", "INSERT"] if sqlite else ["WITH"]
    assert _kinds(statements.take()) == ["SELECT", "BEGIN", *writes, "COMMIT"]
