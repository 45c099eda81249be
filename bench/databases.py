"""Throwaway databases for one bench run: a fresh SQLite file or a fresh PostgreSQL database."""

import secrets
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import psycopg

# The maintenance connection; the bench database lives beside `test` on the same server.
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
ENGINES = ("sqlite", "postgresql")


class DatabaseUnavailable(Exception):
    """The engine asked for cannot be reached or refused the throwaway database; one sentence."""


@contextmanager
def fresh_database(engine: str, workdir: Path) -> Iterator[str]:
    """The DATABASE_URL of a new, empty database on `engine`, removed when the block ends."""
    if engine == "sqlite":
        yield f"sqlite:///{workdir / 'bench.db'}"  # the file dies with `workdir`
    elif engine == "postgresql":
        with _postgres_database() as url:
            yield url
    else:
        raise ValueError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")


@contextmanager
def _postgres_database() -> Iterator[str]:
    name = f"billplane_bench_{secrets.token_hex(6)}"
    _admin_execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        # FORCE: a server killed mid-request may leave a connection behind.
        _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin_execute(sql: str) -> None:
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.encode())
    except psycopg.OperationalError as exc:
        # Also raised by the server for a refused statement, e.g. CREATE DATABASE while another
        # session is connected to template1: quote the server's own first line.
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DatabaseUnavailable(
            f"PostgreSQL at {POSTGRES_ADMIN_URL} did not run `{sql}`: {reason}"
        ) from None


def usage_totals(url: str, feature: str) -> tuple[int, int]:
    """For one feature: the sum of every usage counter, and the sum of every recorded event.

    Read straight from the database once the load has stopped. Both must agree exactly (each
    counted unit has its event, each event was counted once), whatever the answers said.
    """
    # One statement, so one snapshot: a request still in flight when the load stops may commit
    # between two statements and be seen in one sum but not the other.
    both = (
        "SELECT (SELECT coalesce(sum(c.used), 0) FROM usage_counters c "
        "JOIN features f ON f.id = c.feature_id WHERE f.key = {p}), "
        "(SELECT coalesce(sum(e.quantity), 0) FROM usage_events e "
        "JOIN features f ON f.id = e.feature_id WHERE f.key = {p})"
    )
    if url.startswith("sqlite:///"):
        import sqlite3

        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            row = conn.execute(both.format(p="?"), (feature, feature)).fetchone()
    else:
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute(both.format(p="%s").encode(), (feature, feature)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def ids(url: str, tenant: str, feature: str) -> tuple[int, int]:
    """The row ids of a tenant and a feature (for pgbench, which speaks SQL)."""
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute(
            b"SELECT t.id, f.id FROM tenants t JOIN features f ON f.project_id = t.project_id "
            b"WHERE t.key = %s AND f.key = %s",
            (tenant, feature),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])
