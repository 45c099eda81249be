"""Engines and sessions: SQLite (WAL, immediate write transactions) or PostgreSQL.

The transaction belongs to the edge: request handlers and CLI commands open a session with
`session_scope`, which commits or rolls back; services never commit.
"""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from contextlib import contextmanager
from functools import cached_property
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from billplane import metrics
from billplane.hotpath import HotPath, Job, Later
from billplane.settings import DB_MAX_OVERFLOW, DB_POOL_SIZE, DB_POOL_TIMEOUT, Settings

# Write transactions on SQLite must take the write lock when they begin: a deferred transaction
# that reads first and writes later cannot wait for the lock (SQLITE_BUSY_SNAPSHOT), so under
# concurrency it would fail instead of queueing behind the other writer.
WRITE = {"billplane_write": True}

# PostgreSQL connections one process keeps at most, by default: the ORM's pool (admin API,
# dashboard, webhooks) plus the hot path's reader and writer. `billplane serve --workers N` then
# needs N x this under the server's max_connections (100 by default): 8 workers fit.
HOT_CONNECTIONS = 2  # the reader and the writer
CONNECTIONS_PER_WORKER = DB_POOL_SIZE + DB_MAX_OVERFLOW + HOT_CONNECTIONS


def connections_per_worker(settings: Settings) -> int:
    """The most PostgreSQL connections one worker process keeps with these settings."""
    return settings.billplane_db_pool_size + settings.billplane_db_max_overflow + HOT_CONNECTIONS


def create_db_engine(
    url: str,
    *,
    pool_size: int = DB_POOL_SIZE,
    max_overflow: int = DB_MAX_OVERFLOW,
    pool_timeout: float = DB_POOL_TIMEOUT,
    prepared_statements: bool = True,
    **kwargs: Any,
) -> Engine:
    """An engine for `url`; the pool's sizes and `prepared_statements` apply to PostgreSQL."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs
        )
        _prepare_sqlite(engine)
        return engine
    connect_args = kwargs.pop("connect_args", {})
    if not prepared_statements:
        # psycopg prepares a statement run five times on a connection (see the setting).
        connect_args = {**connect_args, "prepare_threshold": None}
    # A pre-ping costs the ORM a round trip per checkout (the hot path keeps its own
    # connections and never pays it): after a restart of PostgreSQL, an operator's click or a
    # Stripe delivery gets a fresh connection instead of a 503.
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        connect_args=connect_args,
        **kwargs,
    )


def engine_options(settings: Settings) -> dict[str, Any]:
    """`create_db_engine`'s options as the settings give them."""
    return {
        "pool_size": settings.billplane_db_pool_size,
        "max_overflow": settings.billplane_db_max_overflow,
        "pool_timeout": settings.billplane_db_pool_timeout,
        "prepared_statements": settings.billplane_db_prepared_statements,
    }


def count_pool_use(engine: Engine) -> None:
    """Keep `/metrics`' gauges of the engine's pool: connections open, and checked out.

    The hot path takes its connections out of the pool for good (`detach`): from then on they
    are its own, counted in neither gauge."""
    pool = engine.pool
    event.listen(pool, "connect", lambda *_: metrics.DB_OPEN.inc())
    event.listen(pool, "close", lambda *_: metrics.DB_OPEN.dec())
    event.listen(pool, "checkout", lambda *_: metrics.DB_CHECKED_OUT.inc())
    event.listen(pool, "checkin", lambda *_: metrics.DB_CHECKED_OUT.dec())

    @event.listens_for(pool, "detach")
    def _detached(*_: Any) -> None:
        metrics.DB_OPEN.dec()
        metrics.DB_CHECKED_OUT.dec()


def _prepare_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event (below) emit BEGIN itself, as pysqlite's own is lazy.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get("billplane_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """An engine and its session factory."""

    @classmethod
    def from_settings(cls, settings: Settings) -> "Database":
        """The configured database, its pool sized as the settings say."""
        return cls(settings.sqlalchemy_url, **engine_options(settings))

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = create_db_engine(url, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Same pool; its transactions begin as writers (see WRITE). Like every session, one from
        # here touches the database only at its first statement, in the thread that runs it.
        self.write_sessions = sessionmaker(
            self.engine.execution_options(**WRITE), expire_on_commit=False
        )

    @cached_property
    def hot(self) -> HotPath:
        """The client API's driver-level connections (made on first use, in the worker)."""
        return HotPath(self.engine)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session_scope(self, *, write: bool = False) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        with (self.write_sessions if write else self.sessions)() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def drain(self) -> None:
        """Write what the hot path keeps for later (see `hotpath.Later`) before the process
        ends; nothing to do if it never served a client call."""
        if "hot" in self.__dict__:
            self.hot.drain()

    def dispose(self) -> None:
        if "hot" in self.__dict__:
            self.hot.close()
            del self.__dict__["hot"]
        self.engine.dispose()


class Transactions:
    """The one way an edge reaches the database: each `with` block is one committed transaction
    (`read()`, `write()`: an ORM session), and the client API's hot reads and writes run whole
    jobs on the driver (`hot_read`, `hot_write`). Requests get it as `billplane.http.Tx`; the CLI
    builds it on its `Database`.

    Endpoints open their transactions inside their own body, so a transaction never outlives
    the thread that runs it: one that kept SQLite's write lock (or a pooled connection) while
    FastAPI queued for another worker thread — to validate the response, say — could wait
    behind requests that are themselves waiting for that lock: a deadlock under load.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def read(self) -> ContextManager[Session]:
        return self.db.session_scope(write=False)

    def write(self) -> ContextManager[Session]:
        return self.db.session_scope(write=True)

    async def hot_read(self, job: Job) -> Any:
        """A client API read, `job(sql)`: statements run on the driver, outside any ORM session
        (see `hotpath.HotPath.read`)."""
        return await self.db.hot.read(job)

    async def hot_write(self, job: Job, order: tuple[Any, ...] = ()) -> Any:
        """A client API write, run in a transaction by the writer (see `hotpath.Writer`)."""
        return await self.db.hot.write(job, order)

    def later(
        self,
        name: str,
        job_of: Callable[[list[Any]], Job],
        item: Any,
        *,
        every: float,
        most: int,
    ) -> None:
        """Write `item` soon, with others, by nobody's wait: the writer runs `job_of(items)`
        within `every` seconds or at `most` items (see `hotpath.Later`). The first `job_of`
        given under a `name` serves the process from then on."""
        made = self.db.hot.later(name, lambda writer: Later(writer, job_of, every, most))
        made.add(item)
