"""localstripe (PyPI), a Stripe fake nobody here wrote, served in a subprocess on 127.0.0.1.

Its own `localstripe --port N` listens on every interface and reloads state from
/tmp/localstripe.pickle; this starts the same aiohttp app bound to 127.0.0.1 only, with
nothing read from or written to disk, so parallel runs never share state.
"""

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from servers import free_port

SERVE = """
import sys
from aiohttp import web
from localstripe import resources, server

resources.Store.dump_to_disk = lambda self: None
web.run_app(server.app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


@contextmanager
def running_localstripe() -> Iterator[str]:
    """localstripe's base URL while the block runs."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
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
        if process.stderr is not None:
            process.stderr.close()


def _wait_until_up(base_url: str, process: "subprocess.Popen[bytes]") -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"localstripe exited with {process.returncode}: {error[-2000:]}")
        try:
            answer = httpx.get(f"{base_url}/v1/customers", auth=("sk_test_x", ""), timeout=1)
            if answer.status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"localstripe did not answer on {base_url} within 30 s")
