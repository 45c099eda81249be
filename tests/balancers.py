"""PgBouncer and HAProxy (Debian's packages) for the scale-out test, as an operator runs them in
front of billplane: each with a configuration of its own written into a temporary directory,
listening on a free port, stopped when the block ends."""

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg

from servers import free_port, serving


def _installed(name: str) -> str:
    """Where Debian installed `name` (in /usr/sbin, which a user's PATH may lack), or ''."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin") or ""


PGBOUNCER = _installed("pgbouncer")
HAPROXY = _installed("haproxy")

# What billplane needs of PgBouncer: transaction pooling (no session state is relied on), room
# for every worker's connections, and the database under the name billplane is told.
PGBOUNCER_INI = """\
[databases]
billplane = host={host} port={port} dbname={dbname} user={user}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen_port}
unix_socket_dir =
auth_type = trust
auth_file = {auth_file}
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
"""


def pgbouncer_version() -> str:
    """`PgBouncer 1.18.0`: the first line of `pgbouncer --version`."""
    done = subprocess.run([PGBOUNCER, "--version"], capture_output=True, text=True, check=True)
    return done.stdout.splitlines()[0].strip()


@contextmanager
def running_pgbouncer(database_url: str, workdir: Path) -> Iterator[str]:
    """PgBouncer in transaction pooling mode in front of `database_url`; yields the URL that
    reaches the same database through it."""
    target = urlsplit(database_url)
    user = target.username or "postgres"
    port = free_port()
    (workdir / "userlist.txt").write_text(f'"{user}" ""\n')
    ini = workdir / "pgbouncer.ini"
    ini.write_text(
        PGBOUNCER_INI.format(
            host=target.hostname,
            port=target.port or 5432,
            dbname=target.path.lstrip("/"),
            user=user,
            listen_port=port,
            auth_file=workdir / "userlist.txt",
        )
    )
    # PgBouncer refuses to run as root: it reads its files first, then becomes `nobody`.
    as_user = ["-u", "nobody"] if os.geteuid() == 0 else []
    url = f"postgresql://{user}@127.0.0.1:{port}/billplane"
    with (
        (workdir / "pgbouncer.log").open("w") as log,
        subprocess.Popen([PGBOUNCER, *as_user, str(ini)], stdout=log, stderr=log) as process,
    ):
        try:
            _wait_for_postgres(url, process, workdir / "pgbouncer.log")
            yield url
        finally:
            process.terminate()
            process.wait(timeout=15)


def _wait_for_postgres(url: str, process: "subprocess.Popen[bytes]", log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited with {process.returncode}: {log.read_text()}")
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            time.sleep(0.1)
    raise RuntimeError(f"pgbouncer did not answer on {url} within 30 s: {log.read_text()}")


HAPROXY_CFG = """\
global
    maxconn 4000

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s

frontend billplane
    bind 127.0.0.1:{port}
    default_backend servers

backend servers
    balance roundrobin
    option httpchk GET /readyz
    # Which server answered, for the tests to see that both did.
    http-response set-header X-Served-By %s
{servers}
"""


@contextmanager
def running_haproxy(servers: list[str], workdir: Path) -> Iterator[str]:
    """HAProxy balancing HTTP round-robin over `servers` (base URLs); yields its own. Each
    server is named by its place, `s0`, `s1`... in the `X-Served-By` header."""
    port = free_port()
    lines = [
        f"    server s{i} {urlsplit(url).netloc} check inter 1s" for i, url in enumerate(servers)
    ]
    cfg = workdir / "haproxy.cfg"
    cfg.write_text(HAPROXY_CFG.format(port=port, servers="\n".join(lines)))
    with (
        (workdir / "haproxy.log").open("w") as log,
        serving(
            [HAPROXY, "-db", "-f", str(cfg)],  # -db: in the foreground
            f"http://127.0.0.1:{port}",
            probe=lambda base_url: httpx.get(f"{base_url}/healthz", timeout=1),
            name="haproxy",
            log=log,
        ) as base_url,
    ):
        yield base_url
