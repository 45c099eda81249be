"""The outbox: usage billplane has not confirmed yet, kept in a SQLite file until it is delivered.

A usage event goes in when billplane cannot be reached (or answers 5xx after the retries), with
its idempotency key and the moment it happened; the client replays it later, oldest first, with
that same key, so an event whose first answer was lost still counts once. An event billplane
refuses for good (a 4xx: unknown tenant, a key reused, a timestamp too old) is kept aside with
the reason rather than retried forever; `kept_aside()` lists those, `retry()` and `discard()`
settle them.

The file is opened only when there is something to keep (or to read back), in WAL mode with a
full sync per write: an event the client said it queued survives the process and the machine.
Several processes may share one file; replaying the same event twice is harmless (same key).
"""

import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from billplane_client.types import UsageEvent, parse_time

MEMORY = ":memory:"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    feature TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    queued_at TEXT NOT NULL,
    UNIQUE (tenant, idempotency_key)
);
CREATE INDEX IF NOT EXISTS pending_by_feature ON pending (tenant, feature, occurred_at);
CREATE TABLE IF NOT EXISTS kept_aside (
    tenant TEXT NOT NULL,
    feature TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    queued_at TEXT NOT NULL,
    refused_at TEXT NOT NULL,
    status INTEGER NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (tenant, idempotency_key)
);
"""
# The statements, written out whole (the columns of an event are the same in both tables).
_QUEUE = (
    "INSERT OR IGNORE INTO pending"
    " (tenant, feature, quantity, idempotency_key, occurred_at, queued_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_OLDEST = (
    "SELECT tenant, feature, quantity, idempotency_key, occurred_at, queued_at"
    " FROM pending ORDER BY seq LIMIT ?"
)
_KEEP_ASIDE = (
    "INSERT OR REPLACE INTO kept_aside"
    " (tenant, feature, quantity, idempotency_key, occurred_at, queued_at,"
    " refused_at, status, code, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_KEPT_ASIDE = (
    "SELECT tenant, feature, quantity, idempotency_key, occurred_at, queued_at,"
    " refused_at, status, code, message FROM kept_aside ORDER BY refused_at, rowid"
)
_ONE_KEPT_ASIDE = (
    "SELECT tenant, feature, quantity, idempotency_key, occurred_at, queued_at"
    " FROM kept_aside WHERE tenant = ? AND idempotency_key = ?"
)


@dataclass(frozen=True)
class QueuedEvent:
    """A usage event waiting in the outbox; replayed with this very key and timestamp."""

    tenant: str
    feature: str
    quantity: int
    idempotency_key: str
    occurred_at: datetime
    queued_at: datetime

    def as_usage_event(self) -> UsageEvent:
        # Replayed without `enforce`: the action it stood for has happened (an enforced event
        # is queued only once the client allowed it offline), so the counter must show it.
        return UsageEvent(
            self.tenant,
            self.feature,
            self.quantity,
            self.idempotency_key,
            timestamp=self.occurred_at,
        )


@dataclass(frozen=True)
class KeptAside:
    """An event billplane refused for good on replay, with its answer; never sent again unless
    `Outbox.retry` puts it back."""

    event: QueuedEvent
    refused_at: datetime
    status: int
    code: str
    message: str


@dataclass(frozen=True)
class Flushed:
    """What a replay did: events billplane counted (or had counted), events kept aside, and
    events still waiting."""

    delivered: int
    kept_aside: int
    pending: int


def default_path(base_url: str, identity: str) -> Path:
    """`$XDG_CACHE_HOME/billplane/outbox-<hash>.sqlite3` (`~/.cache/...` by default): one file per
    billplane and project, so a replay never sends one project's usage with another's token."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    digest = hashlib.sha256(f"{base_url}\0{identity}".encode()).hexdigest()[:16]
    return Path(cache) / "billplane" / f"outbox-{digest}.sqlite3"


def _iso(moment: datetime) -> str:
    # One width for every moment, so that the text orders as the time does.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _now() -> datetime:
    return datetime.now(UTC)


class Outbox:
    """Undelivered usage in the SQLite file at `path` (`":memory:"` keeps it in this process
    only). Thread-safe; the client drives it, an app reads `pending()` and `kept_aside()`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._count: int | None = None  # pending events, as far as this process knows
        self._pid = os.getpid()

    # --- what the client asks -------------------------------------------------------------------

    def add(self, event: UsageEvent) -> QueuedEvent:
        """Keep `event` (its idempotency key already fixed); adding one key twice keeps one."""
        if not event.idempotency_key:
            raise ValueError("an event is queued with its idempotency key fixed")
        now = _now()
        queued = QueuedEvent(
            event.tenant,
            event.feature,
            event.quantity,
            event.idempotency_key,
            event.timestamp or now,
            now,
        )
        with self._file() as db:
            added = db.execute(_QUEUE, _row(queued)).rowcount
            if self._count is not None:
                self._count += added
        return queued

    def count(self) -> int:
        """How many events wait (read from the file)."""
        with self._db(create=False) as db:
            self._count = 0 if db is None else _one(db, "SELECT count(*) FROM pending")
        return self._count

    @property
    def counted(self) -> bool:
        """Whether this process knows the count without reading the file."""
        return self._count is not None

    def has_pending(self) -> bool:
        """Whether events wait; read from the file once, then kept up to date by this process."""
        if self._count is None:
            with self._db(create=False) as db:
                self._count = 0 if db is None else _one(db, "SELECT count(*) FROM pending")
        return self._count > 0

    def oldest(self, limit: int) -> list[QueuedEvent]:
        with self._db(create=False) as db:
            if db is None:
                return []
            rows = db.execute(_OLDEST, (limit,)).fetchall()
        return [_event(row) for row in rows]

    def queued_quantity(self, tenant: str, feature: str, since: datetime | None = None) -> int:
        """How much of `feature` waits for `tenant` (that happened at or after `since`)."""
        if not self.has_pending():
            return 0
        query = "SELECT coalesce(sum(quantity), 0) FROM pending WHERE tenant = ? AND feature = ?"
        with self._db(create=False) as db:
            if db is None:
                return 0
            if since is None:
                return _one(db, query, tenant, feature)
            return _one(db, query + " AND occurred_at >= ?", tenant, feature, _iso(since))

    def settle(
        self, delivered: Iterable[QueuedEvent], refused: Iterable[tuple[QueuedEvent, int, str, str]]
    ) -> None:
        """Forget what billplane counted; keep aside what it refused (status, code, message)."""
        now = _iso(_now())
        with self._file() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                for event in delivered:
                    _delete(db, event)
                for event, status, code, message in refused:
                    _delete(db, event)
                    db.execute(_KEEP_ASIDE, (*_row(event), now, status, code, message))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            # Another process may have added events meanwhile: count again.
            self._count = _one(db, "SELECT count(*) FROM pending")

    # --- what an app reads and settles ---------------------------------------------------------

    def pending(self) -> list[QueuedEvent]:
        """Every event waiting for billplane, oldest first."""
        return self.oldest(-1)

    def kept_aside(self) -> list[KeptAside]:
        """Every event billplane refused for good on replay, oldest refusal first."""
        with self._db(create=False) as db:
            if db is None:
                return []
            rows = db.execute(_KEPT_ASIDE).fetchall()
        return [
            KeptAside(_event(row[:6]), _time(row[6]), int(row[7]), str(row[8]), str(row[9]))
            for row in rows
        ]

    def retry(self, tenant: str, idempotency_key: str) -> bool:
        """Put a kept-aside event back in line (once its cause is fixed: the tenant created,
        say); it is replayed with its key and timestamp. False if no such event."""
        return self._take_aside(tenant, idempotency_key, back_in_line=True)

    def discard(self, tenant: str, idempotency_key: str) -> bool:
        """Drop a kept-aside event for good. False if no such event."""
        return self._take_aside(tenant, idempotency_key, back_in_line=False)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    # --- the file -----------------------------------------------------------------------------

    def _take_aside(self, tenant: str, key: str, *, back_in_line: bool) -> bool:
        with self._db(create=False) as db:
            if db is None:
                return False
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(_ONE_KEPT_ASIDE, (tenant, key)).fetchone()
                if row is not None:
                    db.execute(
                        "DELETE FROM kept_aside WHERE tenant = ? AND idempotency_key = ?",
                        (tenant, key),
                    )
                    if back_in_line:
                        db.execute(_QUEUE, row)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._count = _one(db, "SELECT count(*) FROM pending")
        return row is not None

    @contextmanager
    def _file(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock, the file created if need be."""
        with self._lock:
            self._after_fork()
            if self._connection is None:
                self._connection = self._open(create=True)
            if self._connection is None:
                raise RuntimeError(f"the outbox {self.path} could not be opened")
            yield self._connection

    @contextmanager
    def _db(self, *, create: bool) -> Iterator[sqlite3.Connection | None]:
        """The connection, under the lock; None when the file does not exist and `create` is
        False (a client that never met an outage leaves no file behind)."""
        with self._lock:
            self._after_fork()
            if self._connection is None:
                self._connection = self._open(create)
            yield self._connection

    def _after_fork(self) -> None:
        # A connection opened before a fork (a server's workers) is not the child's to use.
        if self._pid != os.getpid():
            self._connection, self._count, self._pid = None, None, os.getpid()

    def _open(self, create: bool) -> sqlite3.Connection | None:
        if self.path != MEMORY:
            path = Path(self.path)
            if not create and not path.exists():
                return None
            path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        if self.path != MEMORY:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")  # a queued event survives a power cut
        db.executescript(_SCHEMA)
        return db


def _row(event: QueuedEvent) -> tuple[str, str, int, str, str, str]:
    return (
        event.tenant,
        event.feature,
        event.quantity,
        event.idempotency_key,
        _iso(event.occurred_at),
        _iso(event.queued_at),
    )


def _event(row: tuple[object, ...] | sqlite3.Row) -> QueuedEvent:
    tenant, feature, quantity, key, occurred_at, queued_at = row
    return QueuedEvent(
        str(tenant),
        str(feature),
        int(str(quantity)),
        str(key),
        _time(occurred_at),
        _time(queued_at),
    )


def _time(value: object) -> datetime:
    moment = parse_time(value)
    if moment is None:
        raise ValueError("the outbox's times are never empty")
    return moment


def _delete(db: sqlite3.Connection, event: QueuedEvent) -> None:
    db.execute(
        "DELETE FROM pending WHERE tenant = ? AND idempotency_key = ?",
        (event.tenant, event.idempotency_key),
    )


def _one(db: sqlite3.Connection, query: str, *params: object) -> int:
    return int(db.execute(query, params).fetchone()[0])
