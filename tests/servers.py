"""Real billplane servers for end-to-end tests: `billplane serve` in a subprocess, free port."""

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

BIN = Path(sys.executable).parent


# Each pytest-xdist worker hands out ports from a range of its own, below the kernel's ephemeral
# range (32768-60999 on Linux): a port one worker found free is never handed to another worker
# before its server has bound it (asking the kernel for "any free port" raced exactly so).
PORTS_PER_WORKER = 1000
FIRST_PORT = 20000
# Where in its range this process starts: two test sessions on one machine (each with its own
# gw0) would otherwise both begin at the range's first port, and a server that lost the race
# to bind it leaves its test talking to the other session's server.
_next_port = random.randrange(PORTS_PER_WORKER)


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # "gw3" under xdist
    return int(worker.removeprefix("gw")) if worker.startswith("gw") else 0


def free_port() -> int:
    """A port of this worker's range that nothing listens on or holds now."""
    global _next_port
    base = FIRST_PORT + _worker_index() * PORTS_PER_WORKER
    for _ in range(PORTS_PER_WORKER):
        port = base + _next_port
        _next_port = (_next_port + 1) % PORTS_PER_WORKER
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken, or still in TIME_WAIT from an earlier server
            return port
    raise RuntimeError(f"no free port in {base}-{base + PORTS_PER_WORKER - 1}")


@contextmanager
def running_server(
    database_url: str,
    admin_token: str,
    *,
    workers: int = 1,
    extra_env: dict[str, str] | None = None,
    port: int | None = None,
    access_log: bool = False,
    args: Sequence[str] = (),
    started: list["subprocess.Popen[str]"] | None = None,
) -> Iterator[str]:
    """Serve billplane on `database_url` until the block ends; yields the base URL. Pass `port`
    (from `free_port()`) to know the URL beforehand, e.g. for BILLPLANE_PUBLIC_URL; `args` are
    more options of `billplane serve`; `started` gets the process (to kill it, say)."""
    port = port or free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "BILLPLANE_ADMIN_TOKEN": admin_token,
        # What seals app webhook endpoints' secrets (`factories.SECRET_KEY`).
        "BILLPLANE_SECRET_KEY": "tests-secret-key-" + "s" * 32,
        **(extra_env or {}),
    }
    # BP_SERVER_LOG names a file to keep the server's log in, when a test needs looking into.
    with (
        open(os.environ.get("BP_SERVER_LOG", os.devnull), "w") as log,
        serving(
            [
                *[str(BIN / "billplane"), "serve", "--port", str(port), "--workers", str(workers)],
                *(["--access-log"] if access_log else []),
                *args,
            ],
            f"http://127.0.0.1:{port}",
            probe=lambda base_url: httpx.get(f"{base_url}/healthz", timeout=1),
            env=env,
            log=log,
            name="billplane serve",
            started=started,
            # Every worker imports the app at once: on 2 cores, more workers start slower.
            within=30 + 10 * workers,
        ) as base_url,
    ):
        yield base_url


@contextmanager
def serving(
    argv: list[str],
    base_url: str,
    *,
    probe: Callable[[str], httpx.Response],
    name: str,
    env: dict[str, str] | None = None,
    log: IO[str] | None = None,
    started: list["subprocess.Popen[str]"] | None = None,
    within: float = 30,
) -> Iterator[str]:
    """Run a server process until the block ends, once `probe(base_url)` answers 200; yields
    the base URL. Without a `log`, the process's stderr is kept to explain an early exit."""
    process = subprocess.Popen(
        argv,
        env=env,
        stdout=log or subprocess.DEVNULL,
        stderr=log or subprocess.PIPE,
        text=True,
    )
    if started is not None:
        started.append(process)
    try:
        wait_until_up(base_url, process, probe, name, within)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def wait_until_up(
    base_url: str,
    process: "subprocess.Popen[str]",
    probe: Callable[[str], httpx.Response],
    name: str,
    within: float = 30,
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read() if process.stderr else ""
            raise RuntimeError(f"{name} exited with {process.returncode}: {error[-2000:]}")
        try:
            if probe(base_url).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer on {base_url} within {within:.0f} s")
