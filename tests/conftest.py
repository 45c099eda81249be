"""Shared fixtures: every database test runs on SQLite and on PostgreSQL, schema from migrations.

Each test runs inside a transaction that is rolled back at its end (SAVEPOINTs stand in for the
commits the edges make), so tests are independent and fast.
"""

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
import pytest
import typer.testing
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

import factories
from apps import lend_app
from billplane.db import Database, Transactions
from billplane.hotpath import Job, Sql
from billplane.http import get_transactions
from billplane.migrate import upgrade
from billplane.settings import Settings
from documented import undocumented

ADMIN_TOKEN = "admin-" + "x" * 26
PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("BILLPLANE_REQUIRE_POSTGRES") == "1"


# The fixtures whose parameter is the engine a test runs on.
ENGINE_PARAMS = ("database_url", "target")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`@pytest.mark.pg_sample(every=n)`: the whole table on SQLite, every n-th case of it on
    PostgreSQL (the engines run the same code; a sample still meets PostgreSQL's own types and
    constraints on every kind of case)."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    seen: dict[str, int] = {}
    for item in items:
        marker = item.get_closest_marker("pg_sample")
        callspec = getattr(item, "callspec", None)
        if (
            marker is None
            or callspec is None
            or "postgresql" not in (callspec.params.get(name) for name in ENGINE_PARAMS)
        ):
            kept.append(item)
            continue
        # (A schemathesis case names its operation in `originalname` too.)
        name = (item.originalname if isinstance(item, pytest.Function) else item.name).split("[")[0]
        index = seen[name] = seen.get(name, -1) + 1
        (kept if index % marker.kwargs["every"] == 0 else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session", autouse=True)
def _cli_built_once() -> Iterator[None]:
    """Typer's test runner builds the whole click command tree on every `invoke` (about 40 ms,
    most of a short command's run); billplane's tree never changes while tests run."""
    built = cache(typer.testing._get_command)  # type: ignore[attr-defined]  # private to Typer
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(typer.testing, "_get_command", built)
        yield


def postgres_answers() -> bool:
    try:
        psycopg.connect(PG_URL, connect_timeout=3).close()
    except psycopg.OperationalError:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL at {PG_URL} does not answer (BILLPLANE_REQUIRE_POSTGRES=1)")
        return False
    return True


@contextmanager
def fresh_database(engine: str, tmp_dir: Path) -> Iterator[str]:
    """A new, empty, migrated database on `engine`; its URL while the block runs."""
    if engine == "sqlite":
        url = f"sqlite:///{tmp_dir / f'billplane-{secrets.token_hex(4)}.db'}"
        upgrade(url)
        yield url
        return
    if not postgres_answers():
        pytest.skip(f"PostgreSQL at {PG_URL} does not answer")
    name = f"billplane_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_URL.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    try:
        upgrade(Settings(database_url=url).sqlalchemy_url)
        yield url
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with fresh_database(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="session")
def database(database_url: str) -> Iterator[Database]:
    db = Database(Settings(database_url=database_url).sqlalchemy_url)
    yield db
    db.dispose()


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    connection = database.engine.connect()
    outer = connection.begin()
    db_session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    yield db_session
    db_session.close()
    outer.rollback()
    connection.close()


class Clock:
    """A controlled clock: tests move time explicitly."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 21, 12, 0, tzinfo=UTC))


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        billplane_admin_token=ADMIN_TOKEN,
        billplane_past_due_grace_days=3,
        billplane_secret_key=factories.SECRET_KEY,
    )


@pytest.fixture
def client(
    settings: Settings, database: Database, session: Session, clock: Clock
) -> Iterator[TestClient]:
    lent = lend_app(settings, database, clock)
    app = lent.app
    app.dependency_overrides[get_transactions] = lambda: SavepointTransactions(session)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
    # Each answer the test got is one /openapi.json documents (see `documented`).
    missing = undocumented(app, lent.answers)
    assert not missing, "answers /openapi.json does not list:\n" + "\n".join(missing)


class SavepointTransactions(Transactions):
    """Stands in for the edge's transactions: SAVEPOINTs inside the test's own transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @contextmanager
    def _savepoint(self) -> Iterator[Session]:
        with self.session.begin_nested():
            yield self.session

    read = write = _savepoint

    async def hot_read(self, job: Job) -> Any:
        return job(self._sql())

    async def hot_write(self, job: Job, order: tuple[Any, ...] = ()) -> Any:
        with self.session.begin_nested():
            return job(self._sql())

    def later(self, name: str, job_of: Callable[[list[Any]], Job], item: Any, **_: Any) -> None:
        """At once, in the test's transaction: the test reads what was written next."""
        with self.session.begin_nested():
            job_of([item])(self._sql())

    def _sql(self) -> Sql:
        return Sql(self.session.connection().connection.cursor(), self.session.get_bind().dialect)


@pytest.fixture
def admin(client: TestClient) -> "Admin":
    return Admin(client)


class Admin:
    """The admin API, as a test speaks it: raises on any unexpected status. Its create helpers
    are for tests of the admin API itself; a test that only needs the rows uses `seed`."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = self.client.request(method, path, headers=self.headers, **kwargs)
        assert response.status_code == expect, response.text
        return response.json()

    def project(self, key: str = "realtyos", **extra: Any) -> dict[str, Any]:
        body = {"key": key, "name": key.title(), "origins": ["https://app.realtyos.test"]}
        return self.call("POST", "/admin/api/projects", 201, json=body | extra)  # type: ignore[no-any-return]

    def feature(self, project: str, key: str, type: str, **extra: Any) -> dict[str, Any]:
        body = {"key": key, "name": key, "type": type} | extra
        return self.call("POST", f"/admin/api/projects/{project}/features", 201, json=body)  # type: ignore[no-any-return]

    def plan(self, project: str, key: str, **extra: Any) -> dict[str, Any]:
        body = {"key": key, "name": key.title()} | extra
        return self.call("POST", f"/admin/api/projects/{project}/plans", 201, json=body)  # type: ignore[no-any-return]

    def tenant(self, project: str, key: str, **extra: Any) -> dict[str, Any]:
        body = {"key": key} | extra
        return self.call("POST", f"/admin/api/projects/{project}/tenants", 201, json=body)  # type: ignore[no-any-return]


class Client:
    """A client app holding one token."""

    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def post(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.client.post(path, json=body, headers=self.headers | kwargs.pop("headers", {}))

    def get(self, path: str) -> Any:
        return self.client.get(path, headers=self.headers)


@pytest.fixture
def seed(session: Session, settings: Settings, clock: Clock) -> factories.Seed:
    """The admin API's create calls without HTTP, in the test's transaction (which the `client`
    app shares): for rows a test needs, where the admin call is not what it tests."""
    return factories.Seed(session, settings, clock)


@pytest.fixture
def realtyos(
    admin: Admin,
    seed: factories.Seed,
    client: TestClient,
    session: Session,
    settings: Settings,
    clock: Clock,
) -> "Setup":
    """A project with a boolean, a limit and a metered feature, a free default and a pro plan,
    and the tenant `acme` (see `factories.realtyos`; the admin API's own tests make theirs by
    HTTP)."""
    token = factories.realtyos(session, settings, clock())
    return Setup(admin=admin, seed=seed, api=Client(client, token), token=token)


class Setup:
    def __init__(self, *, admin: Admin, seed: factories.Seed, api: Client, token: str) -> None:
        self.admin = admin
        self.seed = seed
        self.api = api
        self.token = token


Factory = Callable[..., Any]
