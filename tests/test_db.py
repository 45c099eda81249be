"""The database's settings reach its engine: pool sizes, the wait for a connection, and whether
psycopg may prepare statements (off behind an older PgBouncer in transaction mode); SQLite's
write-ahead log is checkpointed off the hot writer."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.pool import QueuePool

from billplane.db import CONNECTIONS_PER_WORKER, Database, connections_per_worker
from billplane.hotpath import Checkpointer
from billplane.settings import Settings
from conftest import fresh_database


def test_the_pool_is_sized_and_timed_as_the_settings_say() -> None:
    settings = Settings(
        database_url="postgresql://billplane@db.internal/billplane",
        billplane_db_pool_size=3,
        billplane_db_max_overflow=1,
        billplane_db_pool_timeout=2.5,
    )
    pool = Database.from_settings(settings).engine.pool
    assert isinstance(pool, QueuePool)
    assert (pool.size(), pool._max_overflow, pool._timeout) == (3, 1, 2.5)
    assert connections_per_worker(settings) == 3 + 1 + 2  # + the hot path's reader and writer


def test_the_default_budget_fits_eight_workers_under_postgres_default_limit() -> None:
    defaults = Settings(database_url="postgresql://billplane@db.internal/billplane")
    assert connections_per_worker(defaults) == CONNECTIONS_PER_WORKER == 12
    assert 8 * CONNECTIONS_PER_WORKER <= 100 - 3  # max_connections less the superuser's reserve


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database("postgresql", tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.mark.parametrize("prepared", [True, False])
def test_prepared_statements_can_be_turned_off(prepared: bool, pg_url: str) -> None:
    """Everywhere: the ORM's pool and the hot path's own connections."""
    db = Database.from_settings(
        Settings(database_url=pg_url, billplane_db_prepared_statements=prepared)
    )
    try:
        with db.engine.connect() as conn:
            driver: Any = conn.connection.dbapi_connection
            assert (driver.prepare_threshold is not None) is prepared
        with db.hot.reads.connection() as hot:
            assert (hot.prepare_threshold is not None) is prepared
    finally:
        db.dispose()


def test_sqlite_takes_the_same_settings_without_complaint(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'b.db'}",
        billplane_db_pool_size=1,
        billplane_db_prepared_statements=False,
    )
    Database.from_settings(settings).dispose()


def test_sqlite_hot_writes_reach_the_database_file_by_the_checkpointer(tmp_path: Path) -> None:
    """The hot writer's COMMIT never checkpoints (it holds the writers' turn), and a few pages
    are far below SQLite's own threshold: the checkpointer's thread copies them soon after."""
    path = tmp_path / "c.db"
    db = Database(f"sqlite:///{path}")
    try:
        _written(db, "CREATE TABLE kept (x)")
        deadline = time.monotonic() + 10
        while b"CREATE TABLE kept" not in path.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert b"CREATE TABLE kept" in path.read_bytes()
    finally:
        db.dispose()


def test_sqlite_write_ahead_log_is_started_over_under_steady_reads_and_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Readers always in the log and a writer always committing: SQLite alone never finds the
    moment to start the log over, and the file grows by every page written. The checkpointer
    starts it over once it passes `RESTART_PAST` pages, so the file stays near that size."""
    monkeypatch.setattr(Checkpointer, "RESTART_PAST", 100)
    monkeypatch.setattr(Checkpointer, "EVERY", 0.01)
    monkeypatch.setattr(Checkpointer, "RESTART_RETRY", 0.01)  # a busy machine's slow reader
    path = tmp_path / "w.db"
    db = Database(f"sqlite:///{path}")
    stop = threading.Event()

    def read() -> None:
        with db.hot.reading() as sql:
            while not stop.is_set():
                sql.cursor.execute("SELECT length(x) FROM t WHERE rowid = 1").fetchall()

    try:
        _written(db, "CREATE TABLE t (x)")
        readers = [threading.Thread(target=read) for _ in range(2)]
        for reader in readers:
            reader.start()
        for _ in range(3000):  # a page each, and the table's pages above it
            _written(db, "INSERT INTO t VALUES (randomblob(3000))")
        stop.set()
        for reader in readers:
            reader.join(10)
        wal = Path(f"{path}-wal").stat().st_size
        # Measured: 1-2 MB; 34-38 MB without the checkpointer starting the log over.
        assert wal < 40 * 100 * 4096
    finally:
        stop.set()
        db.dispose()


def test_a_reader_that_stays_in_the_log_holds_the_writers_up_briefly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A RESTART checkpoint holds the writers' turn while it waits for the readers to leave the
    log; one that stays (an export, a backup) is waited for `RESTART_WAIT` (20 ms), not the
    driver's 5 s, and not again before `RESTART_RETRY`."""
    monkeypatch.setattr(Checkpointer, "RESTART_PAST", 20)
    monkeypatch.setattr(Checkpointer, "EVERY", 0.01)
    monkeypatch.setattr(Checkpointer, "RESTART_RETRY", 0.1)
    path = tmp_path / "r.db"
    db = Database(f"sqlite:///{path}")
    try:
        _written(db, "CREATE TABLE t (x)")
        with db.hot.reading() as reader:
            reader.cursor.execute("BEGIN")
            reader.cursor.execute("SELECT count(*) FROM t").fetchall()  # in the log, and stays
            slowest = 0.0
            deadline = time.monotonic() + 2  # a dozen attempts at RESTART, each one busy
            while time.monotonic() < deadline:
                began = time.monotonic()
                _written(db, "INSERT INTO t VALUES (randomblob(3000))")
                slowest = max(slowest, time.monotonic() - began)
            reader.cursor.execute("ROLLBACK")
        assert slowest < 2.5  # with the driver's busy timeout: 5 s, the first time
    finally:
        db.dispose()


def _written(db: Database, statement: str) -> None:
    """`statement` run by the hot path's writer, once it is committed."""
    done = threading.Event()
    db.hot.writer.run_later(lambda sql: sql.cursor.execute(statement), done)
    assert done.wait(10)


def test_the_readme_documents_every_database_setting() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    names = [n.upper() for n in Settings.model_fields if n.startswith("billplane_db_")]
    assert len(names) == 4
    assert [n for n in names if f"`{n}`" not in readme] == []
