"""`billplane serve`'s production defaults: quiet, within PostgreSQL's connection limit, never on
an unmigrated database, draining requests on SIGTERM, and no worker outliving its supervisor."""

import asyncio
import fcntl
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import psycopg
import pytest

from billplane.db import CONNECTIONS_PER_WORKER
from conftest import ADMIN_TOKEN, fresh_database
from servers import BIN, free_port, running_server, wait_until_up

# Several multi-worker servers: one at a time on PostgreSQL (`make test` runs two processes).
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("many_connections")]


def test_the_access_log_is_off_unless_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for asked in (False, True):
        log = tmp_path / f"server-{asked}.log"
        monkeypatch.setenv("BP_SERVER_LOG", str(log))
        with (
            fresh_database("sqlite", tmp_path) as url,
            running_server(url, ADMIN_TOKEN, access_log=asked) as base_url,
        ):
            assert httpx.get(f"{base_url}/docs").status_code == 200
        assert ("GET /docs" in log.read_text()) is asked, log.read_text()


def test_four_workers_under_load_stay_within_postgres_connections(tmp_path: Path) -> None:
    """The README's `--workers 4`, hammered through the client API and the admin API at once:
    every answer a success, and never more connections than the workers' budget."""
    workers, requests = 4, 400
    with (
        fresh_database("postgresql", tmp_path) as url,
        running_server(url, ADMIN_TOKEN, workers=workers) as base_url,
    ):
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        token = _seed(base_url, admin)
        database = url.rsplit("/", 1)[1]
        peak, stop = [0], threading.Event()
        watcher = threading.Thread(target=_watch, args=(url, database, peak, stop))
        watcher.start()
        try:
            statuses = asyncio.run(_load(base_url, token, admin, requests))
        finally:
            stop.set()
            watcher.join()
    assert statuses == Counter({201: requests // 2, 200: requests // 2}), statuses
    assert 0 < peak[0] <= workers * CONNECTIONS_PER_WORKER, peak


def _seed(base_url: str, admin: dict[str, str]) -> str:
    with httpx.Client(base_url=base_url, headers=admin, timeout=60) as client:
        token = client.post("/admin/api/projects", json={"key": "p", "name": "P"}).json()["token"]
        steps = [
            ("features", {"key": "reports", "name": "Reports", "type": "limit"}),
            ("plans", {"key": "free", "name": "Free", "is_default": True,
                       "features": {"reports": {"limit": 100000}}}),
            ("tenants", {"key": "acme"}),
        ]  # fmt: skip
        for path, body in steps:
            response = client.post(f"/admin/api/projects/p/{path}", json=body)
            assert response.status_code == 201, response.text
    return str(token)


async def _load(base_url: str, token: str, admin: dict[str, str], requests: int) -> Counter[int]:
    limits = httpx.Limits(max_connections=requests, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120) as client:

        async def usage(i: int) -> httpx.Response:
            body = {"tenant": "acme", "feature": "reports", "idempotency_key": f"k{i}"}
            return await client.post(
                "/v1/usage", json=body, headers={"Authorization": f"Bearer {token}"}
            )

        async def listing() -> httpx.Response:
            return await client.get("/admin/api/projects/p/tenants/acme", headers=admin)

        calls = [usage(i) if i % 2 else listing() for i in range(requests)]
        return Counter(r.status_code for r in await asyncio.gather(*calls))


def _watch(url: str, database: str, peak: list[int], stop: threading.Event) -> None:
    """The most connections the server held to its database at any moment of the load."""
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        while not stop.wait(0.02):
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)
            ).fetchone()
            peak[0] = max(peak[0], int(row[0]) if row else 0)


def test_the_budget_is_what_the_readme_promises() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"at most {CONNECTIONS_PER_WORKER} PostgreSQL connections" in readme


def test_serve_refuses_a_database_that_is_not_migrated(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"}
    done = subprocess.run(
        [str(BIN / "billplane"), "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 1
    assert done.stdout == ""
    (sentence,) = done.stderr.splitlines()
    assert sentence.startswith("billplane cannot serve: the database has no billplane schema")
    assert "run `billplane db upgrade` first, or serve with --migrate." in sentence


def test_serve_with_migrate_migrates_first(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    with running_server(url, ADMIN_TOKEN, args=["--migrate"]) as base_url:
        assert httpx.get(f"{base_url}/readyz").status_code == 200


def test_sigterm_lets_the_request_in_flight_finish(tmp_path: Path) -> None:
    """A usage call waits for SQLite's write lock (held here) when the server is told to stop:
    it still gets its answer, and is counted, before the server exits — and refusals the
    workers kept to write later (the refusal log) are written before they exit too."""
    with fresh_database("sqlite", tmp_path) as url, supervisor(url, workers=2) as (server, base):
        token = _seed(base, {"Authorization": f"Bearer {ADMIN_TOKEN}"})
        for _ in range(3):
            refused = httpx.post(
                f"{base}/v1/check",
                json={"tenant": "acme", "feature": "nope"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert refused.json()["reason"] == "unknown_feature"
        database = url.removeprefix("sqlite:///")
        holder = sqlite3.connect(database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        answers: list[httpx.Response] = []

        def record_usage() -> None:
            body = {"tenant": "acme", "feature": "reports", "idempotency_key": "in-flight"}
            headers = {"Authorization": f"Bearer {token}"}
            answers.append(httpx.post(f"{base}/v1/usage", json=body, headers=headers, timeout=60))

        call = threading.Thread(target=record_usage)
        call.start()
        _wait_for_the_writer(Path(f"{database}-writer.lock"))

        server.send_signal(signal.SIGTERM)
        time.sleep(1)
        assert server.poll() is None, "the server stopped with a request in flight"
        holder.execute("ROLLBACK")
        holder.close()
        call.join(timeout=30)
        assert server.wait(timeout=30) == 0

    assert [a.status_code for a in answers] == [201]
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM usage_events").fetchone() == (1,)
        assert db.execute("SELECT count(*) FROM refusals").fetchone() == (3,)
        assert db.execute("SELECT sum(checks), sum(refused) FROM daily_checks").fetchone() == (
            3,
            3,
        )


def _wait_for_the_writer(lock: Path) -> None:
    """Until a worker's writer holds its turn (see `hotpath.WriterTurn`): the call is in flight,
    waiting for SQLite's lock."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if lock.exists():
            with lock.open("rb") as file:
                try:
                    fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return
                fcntl.flock(file, fcntl.LOCK_UN)
        time.sleep(0.05)
    raise AssertionError("the usage call never reached the writer")


def test_the_workers_die_with_their_supervisor(tmp_path: Path) -> None:
    """SIGKILL leaves the supervisor no time to stop its workers: the kernel tells them, and they
    leave the port free for the next server."""
    with fresh_database("sqlite", tmp_path) as url, supervisor(url, workers=2) as (server, base):
        children = _children(server.pid)
        assert len(children) >= 2  # the workers (and multiprocessing's resource tracker)

        server.kill()
        server.wait()

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and [pid for pid in children if _alive(pid)]:
            time.sleep(0.1)
        assert not [pid for pid in children if _alive(pid)], "orphaned workers"
        port = int(base.rsplit(":", 1)[1])
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))  # raises if an orphan still listens
            sock.listen()


@contextmanager
def supervisor(url: str, *, workers: int) -> Iterator[tuple["subprocess.Popen[str]", str]]:
    """`billplane serve` and its base URL, in a session of its own: whatever is left of it is
    killed when the block ends."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "BILLPLANE_ADMIN_TOKEN": ADMIN_TOKEN}
    argv = [str(BIN / "billplane"), "serve", "--port", str(port), "--workers", str(workers)]
    server = subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, server, lambda u: httpx.get(f"{u}/healthz", timeout=1), "serve")
        yield server, base
    finally:
        with suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:  # the parent's pid, after the state
                found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for a parent to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
