"""The real billplane server, as production starts it: `db upgrade`, then `serve --workers N`."""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent  # the venv's bin, where `billplane` is installed
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


class ServerFailed(Exception):
    """The server did not migrate or did not come up; the message ends with its log's tail."""


@dataclass(frozen=True)
class RunningServer:
    base_url: str
    admin_token: str
    log_path: Path
    pid: int  # the uvicorn supervisor, leader of the server's process group


SECRET_KEY = secrets.token_urlsafe(32)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(database_url: str, admin_token: str, src: Path | None = None) -> dict[str, str]:
    # Run from a scratch directory so a developer's `.env` cannot leak settings (Stripe keys…)
    # into the benchmark; the two settings that matter come from the environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "BILLPLANE_"))}
    env |= {
        "DATABASE_URL": database_url,
        "BILLPLANE_ADMIN_TOKEN": admin_token,
        # Seals the secret of the backlog scenario's webhook endpoint: one per bench run.
        "BILLPLANE_SECRET_KEY": SECRET_KEY,
    }
    if src is not None:  # another source tree first on the path: measure that code instead
        env["PYTHONPATH"] = str(src.resolve())
    return env


def migrate(database_url: str, admin_token: str, workdir: Path, src: Path | None = None) -> None:
    done = subprocess.run(
        [str(BIN / "billplane"), "db", "upgrade"],
        cwd=workdir,
        env=server_env(database_url, admin_token, src),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise ServerFailed(f"`billplane db upgrade` failed:\n{done.stdout}{done.stderr}")


SERVERS = ("uvicorn", "granian")


def serve_command(server: str, port: int, workers: int) -> list[str]:
    """`billplane serve` (uvicorn), or the same app factory under granian, to compare them."""
    if server == "granian":
        return [
            str(BIN / "granian"), "--interface", "asgi", "--factory", "--no-access-log",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "billplane.app:create_served_app",
        ]  # fmt: skip
    return [
        str(BIN / "billplane"), "serve", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers),
    ]  # fmt: skip


@contextmanager
def running_server(
    database_url: str,
    admin_token: str,
    workdir: Path,
    workers: int,
    src: Path | None = None,
    server: str = "uvicorn",
) -> Iterator[RunningServer]:
    """Serve on a free port of 127.0.0.1 until the block ends (also on errors and Ctrl-C)."""
    port = free_port()
    log_path = workdir / f"server-{port}.log"
    command = serve_command(server, port, workers)
    with log_path.open("wb") as log:
        # A session of its own: the uvicorn supervisor and its workers are stopped as one group.
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=server_env(database_url, admin_token, src),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base_url = f"http://127.0.0.1:{port}"
        _wait_until_healthy(process, base_url, log_path)
        yield RunningServer(base_url, admin_token, log_path, process.pid)
    finally:
        stop(process)


def _wait_until_healthy(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(f"the server exited with {process.returncode}:\n{tail(log_path)}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    waited = f"{STARTUP_TIMEOUT_S:.0f} s"
    raise ServerFailed(f"no answer on {base_url}/healthz after {waited}:\n{tail(log_path)}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (ours: it leads it), then SIGKILL whatever lingers."""
    _signal_group(process, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT_S)
    # Also when the supervisor is gone: a worker it failed to reap must not outlive the run.
    _signal_group(process, signal.SIGKILL)
    process.wait(timeout=5.0)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def error_lines(path: Path) -> list[str]:
    """The server log's error lines (tracebacks, unhandled exceptions), access log excluded."""
    found = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(("ERROR", "CRITICAL", "Traceback")) or "unhandled" in line:
            found.append(line)
    return found
