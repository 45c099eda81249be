"""Real billplane servers for end-to-end tests: `billplane serve` in a subprocess, free port."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_server(
    database_url: str,
    admin_token: str,
    *,
    workers: int = 1,
    extra_env: dict[str, str] | None = None,
    port: int | None = None,
) -> Iterator[str]:
    """Serve billplane on `database_url` until the block ends; yields the base URL. Pass `port`
    (from `free_port()`) to know the URL beforehand, e.g. for BILLPLANE_PUBLIC_URL."""
    port = port or free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "BILLPLANE_ADMIN_TOKEN": admin_token,
        **(extra_env or {}),
    }
    # BP_SERVER_LOG names a file to keep the server's log in, when a test needs looking into.
    with open(os.environ.get("BP_SERVER_LOG", os.devnull), "w") as log:
        process = subprocess.Popen(
            [str(BIN / "billplane"), "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=log,
            stderr=log,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(base_url, process)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_up(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"billplane serve exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"billplane did not answer on {base_url} within 30 s")
