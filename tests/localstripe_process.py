"""localstripe (PyPI), a Stripe fake nobody here wrote, served in a subprocess on 127.0.0.1.

Its own `localstripe --port N` listens on every interface and reloads state from
/tmp/localstripe.pickle; this starts the same aiohttp app bound to 127.0.0.1 only, with
nothing read from or written to disk, so parallel runs never share state.
"""

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from servers import free_port, serving

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
    with serving(
        [sys.executable, "-c", SERVE, str(port)],
        f"http://127.0.0.1:{port}",
        probe=lambda base_url: httpx.get(
            f"{base_url}/v1/customers", auth=("sk_test_x", ""), timeout=1
        ),
        name="localstripe",
    ) as base_url:
        yield base_url
