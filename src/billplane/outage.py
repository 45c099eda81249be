"""Database trouble that is an outage, not a bug: answered 503 `database_unavailable` with
`Retry-After`, never 500.

A terminated backend, a restart of PostgreSQL, "too many clients", no pooled connection free in
time, a deadlock, SQLite's lock held past its busy timeout: the call did not happen (or, for a
commit cut off mid-way, may have), and the same call retried is safe — a usage event with the
same idempotency key is counted once either way.
"""

import sqlite3

import psycopg
from sqlalchemy import exc as sa

RETRY_AFTER_SECONDS = 1
MESSAGE = (
    "billplane cannot reach its database right now; retry in a moment (a usage call with the "
    "same idempotency key is counted once)."
)

# PostgreSQL's SQLSTATE classes of trouble with the server rather than with the statement:
# connection exception, transaction rollback (serialization failure, deadlock), insufficient
# resources (too many clients, disk full), operator intervention (terminated backend,
# shutdown, still starting up, query cancelled), system error; and a lock not available.
PG_OUTAGE_CLASSES = ("08", "40", "53", "57", "58")
PG_OUTAGE_STATES = ("55P03",)
# SQLite's: the database is locked or busy past the busy timeout, or cannot be read or written.
SQLITE_OUTAGES = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_FULL")

# The exceptions that may be an outage: the ORM's (wrapped by SQLAlchemy, and its pool's
# timeout) and the hot path's (the drivers' own, see `hotpath`).
CANDIDATES: tuple[type[Exception], ...] = (
    sa.TimeoutError,
    sa.DBAPIError,
    psycopg.Error,
    sqlite3.Error,
)


def is_outage(error: BaseException) -> bool:
    """Whether `error` says the database is unavailable for now, rather than that a statement
    is wrong (a bug, which stays a 500)."""
    if isinstance(error, sa.TimeoutError):  # the pool had no connection free in time
        return True
    if isinstance(error, sa.DBAPIError):
        if error.connection_invalidated:  # SQLAlchemy saw the connection drop
            return True
        return error.orig is not None and is_outage(error.orig)
    if isinstance(error, psycopg.Error):
        if prepared_statement_lost(error):
            return False  # a setting to change, not an outage to wait out
        state = error.sqlstate
        if state is None:  # psycopg's own: refused, lost, closed or timed out connections
            return isinstance(error, psycopg.OperationalError)
        return state.startswith(PG_OUTAGE_CLASSES) or state in PG_OUTAGE_STATES
    if isinstance(error, sqlite3.OperationalError):
        return getattr(error, "sqlite_errorname", "").startswith(SQLITE_OUTAGES)
    return False


# What psycopg names the statements it prepares, and what billplane logs when one went missing.
PSYCOPG_PREPARED = '"_pg3_'
PREPARED_STATEMENT_LOST = (
    "a statement psycopg prepared on one server connection ran on another: behind PgBouncer in "
    "transaction mode older than 1.21 (or with max_prepared_statements = 0), set "
    "BILLPLANE_DB_PREPARED_STATEMENTS=false"
)


def prepared_statement_lost(error: BaseException) -> bool:
    """Whether `error` is psycopg's prepared statement missing (or clashing) on the server
    connection that ran it: a connection pooler that does not keep prepared statements."""
    cause = error.orig if isinstance(error, sa.DBAPIError) and error.orig else error
    return isinstance(cause, psycopg.Error) and PSYCOPG_PREPARED in str(cause)


def describe(error: BaseException) -> str:
    """The outage in the driver's words, for the log: never SQLAlchemy's rendering, which
    carries the statement and its parameters (a token's digest, say)."""
    cause = error.orig if isinstance(error, sa.DBAPIError) and error.orig else error
    first_line = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {first_line}" if first_line else type(cause).__name__
