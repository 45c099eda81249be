"""The hot path's writer on PostgreSQL: a write that PostgreSQL rolls back to break a deadlock
runs again, rather than answering its caller 503 (`hotpath._worth_again`).

A writer's group locks rows as its jobs go, in the order `usage.service.lock_order` gives them,
which keeps deadlocks between workers rare; a credit-priced usage (bucket, counter, then its
overage's counter) racing a batch could still close a circle. Here a circle is closed on
purpose: another transaction holds row 2 and waits for row 1, which the writer's job holds
while it asks for row 2."""

import asyncio
import threading
import time
from pathlib import Path

import psycopg

from billplane.db import Database
from billplane.hotpath import Sql
from billplane.settings import Settings
from conftest import fresh_database

# Whether the other side's backend waits for a lock this one holds (other databases' waits,
# of tests running beside this one, do not count).
BLOCKS_OTHER = "SELECT pg_backend_pid() = ANY(pg_blocking_pids(%s))"


def test_a_write_picked_to_break_a_deadlock_runs_again(tmp_path: Path) -> None:
    with fresh_database("postgresql", tmp_path) as url:
        with psycopg.connect(url, autocommit=True) as setup:
            setup.execute("CREATE TABLE rows_to_lock (id int PRIMARY KEY, n int NOT NULL)")
            setup.execute("INSERT INTO rows_to_lock VALUES (1, 0), (2, 0)")
        database = Database(Settings(database_url=url).sqlalchemy_url)
        other = psycopg.connect(url)
        try:
            # The other side waits 30 s before it looks for a deadlock, the writer's 1 s (the
            # default): PostgreSQL rolls back the writer's transaction, not the other's.
            other.execute("SET deadlock_timeout = '30s'")
            other.execute("UPDATE rows_to_lock SET n = n + 10 WHERE id = 2")
            other_pid = other.info.backend_pid
            tries: list[int] = []

            def job(sql: Sql) -> int:
                tries.append(len(tries) + 1)
                if len(tries) > 1:
                    # Run again only once the other side, woken by the rollback, has committed:
                    # on a busy machine its backend may wake after this job took row 1 anew,
                    # and the two would close the same circle once more.
                    waiting.join(timeout=30)
                sql.cursor.execute("UPDATE rows_to_lock SET n = n + 1 WHERE id = 1")
                if len(tries) == 1:
                    waiting.start()  # the other asks for row 1, which this job holds
                    deadline = time.monotonic() + 10
                    while not sql.cursor.execute(BLOCKS_OTHER, (other_pid,)).fetchall()[0][0]:
                        assert time.monotonic() < deadline, "the other side never waited"
                        time.sleep(0.01)
                sql.cursor.execute("UPDATE rows_to_lock SET n = n + 1 WHERE id = 2")
                return len(tries)

            def other_side() -> None:
                other.execute("UPDATE rows_to_lock SET n = n + 10 WHERE id = 1")
                other.commit()

            waiting = threading.Thread(target=other_side)
            answer = asyncio.run(database.hot.write(job))
            waiting.join(timeout=30)

            assert answer == 2  # rolled back to break the deadlock, then run again and committed
            with psycopg.connect(url) as check:
                rows = check.execute("SELECT id, n FROM rows_to_lock ORDER BY id").fetchall()
            assert rows == [(1, 11), (2, 11)]  # each side's write landed once
        finally:
            other.close()
            database.dispose()
