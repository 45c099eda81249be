"""Driver-level database access for the client API's hot path (`/v1/check`, `/v1/usage`).

Written for speed, and saying so: a check is one statement and an enforced usage one short write
transaction, so the ORM's per-call statement building, entity loading and session bookkeeping
would cost more than the database itself. Here statements are SQLAlchemy Core compiled once per
dialect and run on the DBAPI connection directly:

- reads run on the caller's thread (the event loop: an indexed read on loopback is shorter than
  a hop to a worker thread) on connections kept in a small per-process pool;
- writes go to one writer thread per process, which runs the writes that arrived together in one
  transaction and answers each only after its commit (group commit). SQLite allows one writer at
  a time anyway; queueing inside the process replaces dozens of threads sleeping in SQLite's busy
  handler. Correctness still comes from the database: guarded updates and unique keys.

Everything else (admin API, dashboard, webhooks, CLI) stays on the ORM, through `db.Database`.
"""

import asyncio
import fcntl
import functools
import operator
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol, TypeVar
from typing import cast as typed

import orjson
from sqlalchemy import (
    Column,
    ColumnElement,
    Engine,
    Select,
    Subquery,
    Table,
    any_,
    bindparam,
    cast,
    column,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from billplane.errors import present
from billplane.logs import billplane_logger
from billplane.models.base import UTCDateTime

log = billplane_logger()


class Cursor(Protocol):
    """The part of a DBAPI cursor the hot path uses (sqlite3 and psycopg both have it)."""

    def execute(self, sql: str, params: Any = ..., /) -> Any: ...
    def executemany(self, sql: str, params: Any, /) -> Any: ...
    def fetchall(self) -> Sequence[Sequence[Any]]: ...
    @property
    def description(self) -> Any: ...


Job = Callable[["Sql"], Any]
T = TypeVar("T")


class Statement:
    """A Core statement compiled once per dialect, bound from a dict of plain values.

    `build` gets the dialect's name, for the constructs that differ (e.g. `ON CONFLICT`).
    """

    def __init__(self, build: Callable[[str], ClauseElement]) -> None:
        self._build = build
        self._compiled: dict[str, Compiled] = {}

    def compiled(self, dialect: Dialect) -> "Compiled":
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = typed(SQLCompiler, self._build(dialect.name).compile(dialect=dialect))
            # Positional drivers (sqlite3's qmark) need the names in order; named ones the dict.
            positions = compiled.positiontup if compiled.positional else None
            names = tuple(positions) if positions is not None else None
            # Known here rather than asked of the cursor per call: psycopg builds a `Column` per
            # result column each time `description` is read (a tenth of an entitlements call).
            writes = compiled.isinsert or compiled.isupdate or compiled.isdelete
            returns_rows = not writes or bool(compiled.effective_returning)
            found = Compiled(compiled.string, names, compiled.params, returns_rows)
            self._compiled[dialect.name] = found
        return found

    def bind(self, dialect: Dialect, values: Mapping[str, Any], *, later: int = 0) -> "Bound":
        """The statement with `values`, as the driver takes them: bound on the event loop, so
        that the writer's turn (serial on SQLite) only runs it (`Sql.run_bound`). The last
        `later` parameters (positional paramstyles only) are left for the turn to bind."""
        sql, names, constants, returns_rows = self.compiled(dialect)
        if later:
            if names is None:
                raise ValueError("only a positional paramstyle binds parameters later")
            names = names[:-later]
        return Bound(sql, _params(values, names, constants), returns_rows)


class Bound(NamedTuple):
    """A statement and its values, as the driver takes them (see `Statement.bind`)."""

    sql: str
    params: Any
    returns_rows: bool


class Compiled(NamedTuple):
    """A statement as the driver runs it."""

    sql: str
    names: tuple[str, ...] | None  # the parameters' order, for a positional paramstyle
    constants: dict[str, Any]  # values written into the statement (a LIMIT, a fixed string)
    returns_rows: bool  # a SELECT, or a write with RETURNING


def one_of(dialect: str, column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    """`column` is one of the values of the list bound as `name` (see `Sql.values_list`): an
    array on PostgreSQL, a JSON array on SQLite; one statement for any number of values."""
    if dialect == "postgresql":
        return column == any_(cast(bindparam(name), postgresql.ARRAY(column.type)))
    listed: Select[Any] = select(literal_column("value")).select_from(
        func.json_each(bindparam(name))
    )
    return column.in_(listed.scalar_subquery())


def rows_in(dialect: str, name: str, columns: Sequence[Column[Any]]) -> Subquery:
    """Many rows bound as one JSON parameter (see `Sql.rows`), as a subquery whose columns carry
    the names and types of `columns`: a single statement inserts or updates them all.

    JSON because both engines parse it in C: PostgreSQL's `json_to_recordset`, SQLite's
    `json_each` (an array per row). The driver then sends one string, not one array per column.
    """
    if dialect == "postgresql":
        typed_columns = [column(c.name, c.type) for c in columns]
        records = func.json_to_recordset(bindparam(name)).table_valued(*typed_columns)
        return select(*records.render_derived(with_types=True).c).subquery()
    row = func.json_each(bindparam(name)).table_valued("value")
    picked = (
        func.json_extract(row.c.value, f"$[{i}]").label(c.name) for i, c in enumerate(columns)
    )
    return select(*picked).subquery()


class Sql:
    """A DBAPI cursor with the dialect's conventions: run compiled statements, convert values."""

    def __init__(self, cursor: Cursor, dialect: Dialect) -> None:
        self.cursor = cursor
        self.dialect = dialect
        self.is_sqlite = dialect.name == "sqlite"

    def run(self, statement: Statement, values: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
        # Not through `bind`: a `Bound` made only to be unpacked costs every hot statement.
        sql, names, constants, returns_rows = statement.compiled(self.dialect)
        return self._execute(sql, _params(values, names, constants), returns_rows)

    def bind(self, statement: Statement, values: Mapping[str, Any], *, later: int = 0) -> Bound:
        return statement.bind(self.dialect, values, later=later)

    def run_bound(self, bound: Bound, *later: Any) -> Sequence[Sequence[Any]]:
        """Run a statement bound before (`bind`); `later` are the values of the parameters it
        left for now, in their order."""
        params = (*bound.params, *later) if later else bound.params
        return self._execute(bound.sql, params, bound.returns_rows)

    def _execute(self, sql: str, params: Any, returns_rows: bool) -> Sequence[Sequence[Any]]:
        self.cursor.execute(sql, params)
        # A statement without RETURNING has no rows to fetch (psycopg would raise).
        return self.cursor.fetchall() if returns_rows else ()

    def insert_rows(
        self, table: Table, columns: tuple[str, ...], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Many new rows of `table`, each a tuple in `columns` order with values as `time` and
        `json` of this engine store them (see `stored_json`), in one go.

        PostgreSQL gets them by `COPY`: one stream, no statement or JSON document to parse per
        batch, and it fails whole on any conflict, as a plain `INSERT` would. SQLite steps one
        prepared insert per row, in-process.
        """
        if not rows:
            return
        if self.is_sqlite:
            text, names, _, _ = _insert_statement(table, columns).compiled(self.dialect)
            if names != columns:  # the rows' tuples bind in `columns`' order
                raise ValueError(f"{table.name}: binds {names}, rows hold {columns}")
            self.cursor.executemany(text, rows)
            return
        quote = self.dialect.identifier_preparer.quote  # a column may be a keyword: `limit`
        copy = f"COPY {quote(table.name)} ({', '.join(map(quote, columns))}) FROM STDIN"
        with typed(Any, self.cursor).copy(copy) as stream:
            for row in rows:
                stream.write_row(row)

    def stored_json(self, value: Any) -> str:
        """A JSON value as `insert_rows` takes it on either engine: its text."""
        return dumps(value)

    def rows(
        self, name: str, columns: Sequence[Column[Any]], records: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        """The parameter `rows_in` binds under `name`: the records as one JSON document, with
        datetimes as this engine stores them."""
        names = [c.name for c in columns]
        times = [c.name for c in columns if isinstance(c.type, UTCDateTime)]
        if times:
            stored = self.times()
            records = [{**r, **{n: stored(r[n]) for n in times}} for r in records]
        if self.is_sqlite:
            return {name: dumps([[r[n] for n in names] for r in records])}
        return {name: dumps([{n: r[n] for n in names} for r in records])}

    def times(self, *, as_text: bool = True) -> Callable[[datetime], Any]:
        """`time`, remembered per moment (a batch's events mostly share one); `as_text` gives
        PostgreSQL's as ISO text, for a JSON document."""
        seen: dict[datetime, Any] = {}

        def stored(moment: datetime) -> Any:
            if moment not in seen:
                value = self.time(moment)
                seen[moment] = value.isoformat() if as_text and not self.is_sqlite else value
            return seen[moment]

        return stored

    def values_list(self, values: Sequence[Any]) -> Any:
        """A list bound as one parameter (see `one_of`)."""
        return dumps(list(values)) if self.is_sqlite else list(values)

    def time(self, moment: datetime) -> Any:
        """A datetime as `models.base.UTCDateTime` stores it (naive UTC text on SQLite)."""
        if self.is_sqlite:
            return _sqlite_time(moment)
        return moment.astimezone(UTC)

    def json(self, value: Any) -> Any:
        return dumps(value) if self.is_sqlite else _pg_json(value)


@functools.lru_cache(maxsize=64)  # a write stores its moment several times (event, ledger...)
def _sqlite_time(moment: datetime) -> str:
    # isoformat pads the year to four digits; strftime's %Y may not
    utc_moment = moment.astimezone(UTC).replace(tzinfo=None)
    return utc_moment.isoformat(sep=" ", timespec="microseconds")


@functools.cache
def _insert_statement(table: Table, columns: tuple[str, ...]) -> Statement:
    """`INSERT INTO table (columns) VALUES (?, ...)`, its placeholders in `columns` order."""
    return Statement(lambda _: insert(table).values({c: bindparam(c) for c in columns}))


def _params(
    values: Mapping[str, Any], names: tuple[str, ...] | None, constants: dict[str, Any]
) -> Any:
    """What the driver binds: a tuple in the statement's order for a positional paramstyle
    (sqlite3's qmark), else a dict. Constants written into the statement (a LIMIT, a fixed
    string) are bound like values."""
    merged = {**constants, **values} if constants else values
    return merged if names is None else _picker(names)(merged)


@functools.cache
def _picker(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """The values of `names` from a dict, as a tuple in their order, picked in C. A tuple built
    in Python, testing each name, cost 3.3 us for a take's 16 against 1.8 us with this."""
    if len(names) == 1:  # `itemgetter` of one name gives the value itself
        (name,) = names
        return lambda values: (values[name],)
    return operator.itemgetter(*names) if names else lambda _: ()


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def utc(value: Any) -> datetime | None:
    """A stored datetime as an aware UTC datetime, whatever the driver returned."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"not a time: {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def from_json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _pg_json(value: Any) -> Any:
    from psycopg.types.json import Json

    return Json(value)


def lost(conn: Any) -> bool:
    """Whether the driver found the connection gone: psycopg's `broken` (the server closed it,
    restarted, or an operator ended its backend), which stays true once the connection is
    closed, unlike a connection closed on purpose. sqlite3's connections are never lost."""
    return bool(getattr(conn, "broken", False))


class ReadPool:
    """Idle DBAPI connections for reads, in autocommit mode; one per thread that reads at once.

    An event loop runs one read at a time, so a worker process holds one connection.
    """

    def __init__(self, connect: Callable[[], Any], driver_error: type[Exception]) -> None:
        self._connect = connect
        self._driver_error = driver_error
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False

    def run(self, use: Callable[[Any], T]) -> T:
        """`use(conn)` on a connection; if one kept idle turns out lost (PostgreSQL restarted,
        or its backend was ended, while it waited), once more on a new one: a read has nothing
        to undo, and the first read after an outage then succeeds instead of failing."""
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:  # a new connection: its failure is the answer
                conn = self._connect()
                with self._lent(conn):
                    return use(conn)
            try:
                with self._lent(conn):
                    return use(conn)
            except self._driver_error:
                if not lost(conn):
                    raise
                self._drop_idle()  # lost with it, most likely; the loop ends at a new one

    @contextmanager
    def connection(self) -> Iterator[Any]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect()
        with self._lent(conn):
            yield conn

    @contextmanager
    def _lent(self, conn: Any) -> Iterator[None]:
        try:
            yield
        except BaseException as exc:
            if not isinstance(exc, Exception) or isinstance(exc, self._driver_error):
                # It may be broken (a server restart, say): never hand it out again.
                with suppress(Exception):
                    conn.close()
                raise
            self._give_back(conn)  # an answer of the caller's (401, 404...): the connection is fine
            raise
        self._give_back(conn)

    def _drop_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            with suppress(Exception):
                conn.close()

    def _give_back(self, conn: Any) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._drop_idle()


@dataclass
class _Pending:
    job: Job
    order: tuple[Any, ...]
    loop: asyncio.AbstractEventLoop | None  # None: nobody waits (see `Writer.run_later`)
    future: "asyncio.Future[Any] | None"
    answered: bool = False
    done: threading.Event | None = None  # set once a job run later is committed (or failed)


_STOP = object()


class _LostWhileIdle(Exception):
    """The writer's connection was gone at a group's first BEGIN (see `Writer._run`)."""


class Writer:
    """One thread that runs every hot write of this process, committing them in groups.

    A job is a function of `Sql` that runs inside an open transaction and returns its answer.
    Jobs queued while a transaction runs share the next one; each is answered only once that
    transaction committed. If a group fails (a database error in any job, or at commit), it is
    rolled back and each of its jobs is run again alone, so one bad job never sinks the others.
    """

    MAX_GROUP = 128
    ATTEMPTS = 3  # of a lone job that conflicted with a concurrent transaction's insert

    def __init__(
        self,
        connect: Callable[[], Any],
        dialect: Dialect,
        begin: str,
        turn: Callable[[], AbstractContextManager[Any]] = nullcontext,
        after_turn: Callable[[], None] = lambda: None,
    ) -> None:
        self._connect = connect
        self._dialect = dialect
        self._begin = begin
        self._turn = turn
        self._after_turn = after_turn
        self._again = _worth_again(dialect)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    async def run(self, job: Job, order: tuple[Any, ...] = ()) -> Any:
        """Run `job` in a transaction; answers once committed. Jobs that share a transaction
        run sorted by `order` (stable: equal orders keep their arrival order)."""
        loop = asyncio.get_running_loop()
        pending = _Pending(job, order, loop, loop.create_future())
        self._submit(pending)
        return await typed("asyncio.Future[Any]", pending.future)

    def run_later(self, job: Job, done: threading.Event | None = None) -> None:
        """Run `job` in a coming transaction, with nobody waiting for it (see `Later`); it
        shares a group with the hot writes like any job. A failure is logged, not raised;
        `done` is set once it is committed or has failed."""
        self._submit(_Pending(job, (), None, None, done=done))

    def _submit(self, pending: _Pending) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._serve, name="billplane-writer", daemon=True
                    )
                    self._thread.start()
        self._queue.put(pending)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=10)
            self._thread = None

    def _serve(self) -> None:
        conn = None
        while True:
            first = self._queue.get()
            if first is _STOP:
                break
            group = [first]
            while len(group) < self.MAX_GROUP:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    self._queue.put(_STOP)
                    break
                group.append(more)
            conn = self._run(conn, group)
        if conn is not None:
            with suppress(Exception):
                conn.close()

    def _run(self, conn: Any, group: list[_Pending]) -> Any:
        """Run a group on `conn` (None: a new connection); returns the connection to keep.

        A connection found gone at the group's first BEGIN died while it waited (PostgreSQL
        restarted, or an operator ended its backend): nothing of the group ran, so the group
        runs on a new connection. Lost later, the group's jobs not yet answered get the error
        (a 503): a COMMIT cut off may or may not have landed, and only the caller's retry with
        the same idempotency key can tell.
        """
        while True:
            fresh = conn is None
            try:
                if conn is None:
                    conn = self._connect()
                self._run_group(conn, group)
            except Exception as exc:
                with suppress(Exception):
                    if conn is not None:
                        conn.close()
                conn = None
                if isinstance(exc, _LostWhileIdle) and not fresh:
                    continue
                error = exc.__cause__ if isinstance(exc, _LostWhileIdle) else exc
                for pending in group:
                    if not pending.answered:
                        _answer(pending, False, error)
                return None
            if lost(conn) or getattr(conn, "closed", False):
                return None  # psycopg noticed the server went away: reconnect next time
            return conn

    def _run_group(self, conn: Any, group: list[_Pending]) -> None:
        try:
            with self._turn():
                self._run_group_in_turn(conn, group)
        finally:
            self._after_turn()

    def _run_group_in_turn(self, conn: Any, group: list[_Pending]) -> None:
        sql = Sql(conn.cursor(), self._dialect)
        # Row locks in one order across workers, so that transactions seldom wait for each
        # other in a circle (a deadlock PostgreSQL breaks only after a second, by rolling one
        # back: its jobs then run alone, and again if need be).
        group.sort(key=lambda pending: pending.order)
        self._begin_first(conn, sql)
        if len(group) > 1:
            try:
                results = [pending.job(sql) for pending in group]
                sql.cursor.execute("COMMIT")
            except Exception:
                _rollback(sql)
            else:
                for pending, result in zip(group, results, strict=True):
                    _answer(pending, True, result)
                return
        begun = len(group) == 1  # a lone job runs in the transaction just begun
        for pending in group:  # alone: a lone job, or each job of a failed group
            self._run_alone(sql, pending, begun=begun)

    def _begin_first(self, conn: Any, sql: Sql) -> None:
        """BEGIN the group's first transaction on `conn`, which may have died while idle."""
        try:
            sql.cursor.execute(self._begin)
        except Exception as exc:
            if lost(conn):
                raise _LostWhileIdle from exc
            raise

    def _run_alone(self, sql: Sql, pending: _Pending, *, begun: bool = False) -> None:
        """One job in its own transaction (`begun` already). A job whose insert lost a race
        for a unique key to another transaction (committed after the job looked) runs once
        more: it now sees the other's row, e.g. answers a usage event as the repeat it is. So
        does a job PostgreSQL rolled back to break a deadlock (see `_worth_again`)."""
        for attempt in range(1, self.ATTEMPTS + 1):
            try:
                if not begun:
                    sql.cursor.execute(self._begin)
                begun = False
                result = pending.job(sql)
                sql.cursor.execute("COMMIT")
            except Exception as exc:
                _rollback(sql)
                if isinstance(exc, self._again) and attempt < self.ATTEMPTS:
                    continue
                _answer(pending, False, exc)
            else:
                _answer(pending, True, result)
            return


def _worth_again(dialect: Dialect) -> tuple[type[Exception], ...]:
    """The errors after which a lone job runs again: a unique key another transaction took
    meanwhile, and on PostgreSQL a deadlock it was picked to break (rolled back whole, nothing
    of it written). The order of `Writer.run` keeps deadlocks rare, not impossible: a job
    takes its locks as it goes (a credit-priced usage its bucket, its counter, then its
    overage's counter), and a batch's events are many jobs in one."""
    dbapi = dialect.loaded_dbapi
    deadlock = getattr(getattr(dbapi, "errors", None), "DeadlockDetected", None)
    return (dbapi.IntegrityError, deadlock) if deadlock else (dbapi.IntegrityError,)


def _rollback(sql: Sql) -> None:
    with suppress(Exception):
        sql.cursor.execute("ROLLBACK")


def _answer(pending: _Pending, ok: bool, value: Any) -> None:
    pending.answered = True
    future = pending.future
    if future is None or pending.loop is None:  # run later, nobody waiting: only a failure tells
        if not ok:
            log.error("A background write failed: %s", value)
        if pending.done is not None:
            pending.done.set()
        return

    def settle() -> None:
        if future.done():  # the request was cancelled (its client went away)
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    with suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
        pending.loop.call_soon_threadsafe(settle)


class Later:
    """Items worth writing, but not worth a request's wait: kept in the process and handed to
    the writer together, after `every` seconds or at `most` items, as one job that `job_of`
    makes of them. A crash loses what was not handed over yet — for diagnosis, never billing.
    """

    def __init__(
        self, writer: Writer, job_of: Callable[[list[Any]], Job], every: float, most: int
    ) -> None:
        self._writer = writer
        self._job_of = job_of
        self._every = every
        self._most = most
        self._items: list[Any] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def add(self, item: Any) -> None:
        with self._lock:
            self._items.append(item)
            if len(self._items) >= self._most:
                items = self._take()
            else:
                items = []
                if self._timer is None:
                    self._timer = threading.Timer(self._every, self.flush)
                    self._timer.daemon = True
                    self._timer.start()
        if items:
            self._writer.run_later(self._job_of(items))

    def flush(self) -> None:
        with self._lock:
            items = self._take()
        if items:
            self._writer.run_later(self._job_of(items))

    def _take(self) -> list[Any]:
        items, self._items = self._items, []
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return items


class WriterTurn:
    """SQLite's writers of every worker process queue here, in the kernel, for their turn.

    SQLite admits one writer at a time and makes the others poll, sleeping ever longer (up to
    100 ms a try): the multi-second tails of the first version. An exclusive `flock` on a file
    beside the database wakes the next writer the moment the last one is done. It only orders
    the writers: `BEGIN IMMEDIATE` still takes SQLite's own lock, which alone guarantees
    correctness (the CLI, the admin API and other tools never take this turn).
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd: int | None = None

    @contextmanager
    def __call__(self) -> Iterator[None]:
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Checkpointer:
    """Copies SQLite's write-ahead log back into the database on a thread and connection of its
    own, so that no writer holds its turn meanwhile.

    SQLite checkpoints by itself inside the COMMIT that takes the log past 1,000 pages, fsyncs
    and all, while that writer holds the turn every worker's writer queues for. Measured on
    `make bench` (SQLite, 2 workers), that was most of what a credit-priced usage cost beyond
    a plain one, as it dirties a bucket and three ledger index pages as well: its share of
    COMMIT was 80-100 us with the checkpoint inside, 21-24 us without (a plain usage's: 17-23
    us). So the hot writer's connection never checkpoints (`wal_autocheckpoint=0`); each group
    it commits wakes this thread instead, which runs a PASSIVE checkpoint (it waits for no
    reader or writer) at most every `EVERY` seconds. Other connections (the ORM's) keep
    SQLite's own checkpoints.

    A writer starts the log over only once all of it has been copied back and no reader still
    reads from it: under steady load there is never such a moment, and the log grew without
    bound (3.1 GB after 70 s of `/v1/usage`), every COMMIT writing to a new end of the file.
    So once the log holds more than `RESTART_PAST` pages, this thread takes the writers' `turn`
    (the hot writers of every process queue for it meanwhile) and runs a RESTART checkpoint: it
    copies back the little written since the last one and waits for the readers to leave the
    log, so that the next writer starts it over. The file keeps its size, overwritten from its
    start. Measured (SQLite, 2 workers, one machine, the same hour): the log stays at 68 MB;
    the turn is held 4.5 ms (at most 9) about once a second; the writer's CPU per usage falls
    from 126-134 to 107 us, a credit-priced one's from 193-199 to 142-152 us. A reader that
    stays in the log (an export, a backup) is waited for `RESTART_WAIT` seconds at most, and
    not again before `RESTART_RETRY`: it holds up the writers a fraction of the time.
    """

    EVERY = 0.05  # seconds: about as often as 1,000 pages fill under load
    RESTART_PAST = 16_384  # pages in the log: 64 MiB of 4 KiB pages
    RESTART_WAIT = 0.02  # seconds; the checkpointer's connection's busy timeout
    RESTART_RETRY = 1.0  # seconds

    def __init__(
        self,
        database: str,
        connect: Callable[[str], Any],
        turn: "WriterTurn | None" = None,
    ) -> None:
        self._database = database
        self._connect = connect
        self._turn = turn
        self._restart_after = 0.0  # a monotonic time
        self._due = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def wake(self) -> None:
        """A write was committed: checkpoint soon."""
        if self._thread is None:
            with self._start_lock:
                if self._thread is None and not self._closing.is_set():
                    self._thread = threading.Thread(
                        target=self._serve, name="billplane-checkpointer", daemon=True
                    )
                    self._thread.start()
        self._due.set()

    def _serve(self) -> None:
        conn = None
        while True:
            self._due.wait()
            if self._closing.is_set():
                break
            self._due.clear()
            try:
                if conn is None:
                    conn = self._connect(self._database)
                self._checkpoint(conn)
            except Exception as exc:  # the next commit wakes it again, on a new connection
                log.warning("The WAL checkpoint failed: %s", exc)
                with suppress(Exception):
                    if conn is not None:
                        conn.close()
                conn = None
            if self._closing.wait(self.EVERY):
                break
        if conn is not None:
            with suppress(Exception):
                conn.close()

    def _checkpoint(self, conn: Any) -> None:
        _, pages, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        due = pages > self.RESTART_PAST and time.monotonic() >= self._restart_after
        if not due or self._turn is None:
            return
        with self._turn():
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        if busy:  # a reader stayed in the log, or a writer of the ORM's held the database
            self._restart_after = time.monotonic() + self.RESTART_RETRY

    def close(self) -> None:
        self._closing.set()
        self._due.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._turn is not None:
            self._turn.close()


class HotPath:
    """The hot path's connections to one database: a read pool and a group-committing writer."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        sqlite = self.dialect.name == "sqlite"
        self.reads = ReadPool(self._connection, self.dialect.loaded_dbapi.Error)
        database = engine.url.database if sqlite else None
        on_disk = bool(database) and database != ":memory:"
        lock = f"{database}-writer.lock"
        self.turn = WriterTurn(lock) if on_disk else None
        # The checkpointer's turn on a file descriptor of its own: `flock` would let it share
        # the turn with this process's writer, which holds it on the same descriptor.
        self.checkpointer = (
            Checkpointer(database, self._plain_connection, WriterTurn(lock))
            if database and on_disk
            else None
        )
        begin = "BEGIN IMMEDIATE" if sqlite else "BEGIN"
        self.writer = Writer(
            self._writer_connection,
            self.dialect,
            begin,
            self.turn or nullcontext,
            self.checkpointer.wake if self.checkpointer else lambda: None,
        )
        self._later: dict[str, Later] = {}
        self._later_lock = threading.Lock()

    def later(self, name: str, make: Callable[[Writer], Later]) -> Later:
        """The process's `Later` called `name`, made by `make` on first use."""
        found = self._later.get(name)
        if found is None:
            with self._later_lock:
                found = self._later.get(name)
                if found is None:
                    found = self._later[name] = make(self.writer)
        return found

    def _connection(self) -> Any:
        # Made by the engine (so SQLite gets the same PRAGMAs), then taken out of its pool: the
        # hot path keeps it for good, in autocommit mode, and begins transactions itself.
        proxied = self.engine.raw_connection()
        proxied.detach()
        conn = present(proxied.dbapi_connection, "the driver's connection")
        if self.dialect.name == "sqlite":
            conn.isolation_level = None
        else:
            conn.autocommit = True
        return conn

    def _writer_connection(self) -> Any:
        conn = self._connection()
        if self.checkpointer is not None:  # it checkpoints instead, off the turn
            conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    def _plain_connection(self, database: str) -> Any:
        # The checkpointer's: no statement of its own, so none of the engine's PRAGMAs either.
        return self.dialect.loaded_dbapi.connect(
            database, isolation_level=None, timeout=Checkpointer.RESTART_WAIT
        )

    @contextmanager
    def reading(self) -> Iterator[Sql]:
        with self.reads.connection() as conn:
            yield Sql(conn.cursor(), self.dialect)

    async def read(self, job: Job) -> Any:
        """`job(sql)` on a read connection, on the event loop's own thread.

        Measured: a PostgreSQL round trip held on the loop beats handing the read to a thread
        (0.57-0.63x of /healthz against 0.35-0.48x for /v1/check, `make bench` on 2 cores),
        as the hop costs more CPU than the loop would win back while the database answers.
        """
        return self.reads.run(lambda conn: job(Sql(conn.cursor(), self.dialect)))

    async def write(self, job: Job, order: tuple[Any, ...] = ()) -> Any:
        return await self.writer.run(job, order)

    def drain(self, timeout: float = 10.0) -> None:
        """Write what waits in every `Later` now, and return once the writer has (a server
        shutting down loses none of it)."""
        if not self._later:
            return
        for later in list(self._later.values()):
            later.flush()
        written = threading.Event()  # set once committed, with every job queued before it
        self.writer.run_later(lambda _sql: None, done=written)
        written.wait(timeout)

    def close(self) -> None:
        self.drain()
        self.writer.close()
        if self.checkpointer is not None:
            self.checkpointer.close()
        self.reads.close()
        if self.turn is not None:
            self.turn.close()
