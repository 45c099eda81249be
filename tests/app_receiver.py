"""A client app's webhook endpoint, for tests: a real HTTP server on a free local port that keeps
every request and answers as the test scripts it (200, an error, too slow, or not at all)."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from standardwebhooks import Webhook


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered (0: it kept the sender waiting past its timeout)

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)

    def verified(self, secret: str) -> Any:
        """The body, once `standardwebhooks` verified its signature with `secret` (raises if
        it does not verify)."""
        return Webhook(secret).verify(self.body, self.headers)


class Receiver:
    """Answers each POST with the next scripted answer (an int status, or "slow": waits
    `slow_seconds` and never answers), then 200 once the script is spent; every answer comes
    `latency` seconds late (an app that takes its time, but answers). While `hold` is on, a
    request waits at the gate (counted in `waiting`) until `let_go`, then is kept unanswered."""

    def __init__(self, slow_seconds: float = 1.0, latency: float = 0.0) -> None:
        self.script: list[int | str] = []
        self.received: list[Received] = []
        self.slow_seconds = slow_seconds
        self.latency = latency
        self._lock = threading.Lock()
        self._gate = threading.Event()
        self._gate.set()
        self.waiting = 0
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self.open()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def open(self) -> None:
        """Listen (again, on the same port once it had one)."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                answer = receiver._next()
                headers = dict(self.headers.items())
                if not receiver._gate.is_set():  # held: its sender may die while it waits
                    with receiver._lock:
                        receiver.waiting += 1
                    receiver._gate.wait(60)
                    receiver._keep(Received(headers, body, 0))
                    return
                if answer == "slow":  # the sender gives up waiting: no answer, as far as it knows
                    receiver._keep(Received(headers, body, 0))
                    time.sleep(receiver.slow_seconds)
                    return
                time.sleep(receiver.latency)
                status = int(answer)
                receiver._keep(Received(headers, body, status))
                self.send_response(status)
                self.send_header("content-type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"not today")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        self._server = server

    def close(self) -> None:
        """Stop listening: the sender's connections are refused until `open`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def hold(self) -> None:
        """Keep every request that comes from now on waiting, unanswered, until `let_go`."""
        self._gate.clear()

    def let_go(self) -> None:
        """End `hold`: the requests it kept waiting end without an answer."""
        self._gate.set()

    def _next(self) -> int | str:
        with self._lock:
            return self.script.pop(0) if self.script else 200

    def _keep(self, received: Received) -> None:
        with self._lock:
            self.received.append(received)

    def accepted(self) -> list[Received]:
        """The requests it answered with a 2xx, in the order they came."""
        with self._lock:
            return [r for r in self.received if 200 <= r.status < 300]


@contextmanager
def receiving(slow_seconds: float = 1.0, latency: float = 0.0) -> Iterator[Receiver]:
    receiver = Receiver(slow_seconds, latency)
    try:
        yield receiver
    finally:
        receiver.close()
