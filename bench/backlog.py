"""A slow app must not slow the client API: `/v1/check` and `/v1/usage` measured against
`/healthz` while at least 1,000 app webhook deliveries wait for an app that sleeps 2 s per request.

The backlog is made as an operator would make it: the bench project's webhook endpoint at the
slow app, many more tenants (added straight into the database, as the preview's are), and one
change of the default plan that alters what every tenant may do — one
`tenant.entitlements.updated` per tenant, written in that change's transaction. Every `serve`
worker's sender then claims and posts them, 8 at a time, each taking the app's 2 s; the senders
drain a few a second, so more are made than the 1,000 to keep waiting to the end of the
measurement (the pending count at its start and end comes from `/metrics`).
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import preview
import seed
from prometheus_client.parser import text_string_to_metric_families

APP_SLEEPS = 2.0  # seconds the app takes to answer each delivery
DELIVERIES = 1000  # the fewest that wait throughout the measurement
# More than that are made: the senders drain some while check and usage are measured.
MARGIN = 0.5
PENDING = "billplane_app_webhook_deliveries_pending"
# A grant no bench target reads: changing it alters every tenant's terms, nothing measured.
CHANGED_FEATURE = "flag.06"


class BacklogFailed(Exception):
    """The backlog could not be made as the API documents."""


class SlowApp:
    """A client app's webhook endpoint that takes `APP_SLEEPS` seconds to answer each POST."""

    def __init__(self) -> None:
        self.received = 0
        self._lock = threading.Lock()
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                time.sleep(APP_SLEEPS)
                with app._lock:
                    app.received += 1
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Backlog:
    pending_at_start: int
    pending_at_end: int = 0
    delivered: int = 0  # answered by the slow app meanwhile


def pending(base_url: str) -> int:
    """The pending deliveries `/metrics` reports (read from the database at the scrape)."""
    answer = httpx.get(f"{base_url}/metrics", timeout=30)
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            if sample.name == PENDING:
                return int(sample.value)
    raise BacklogFailed(f"/metrics has no {PENDING} (answered {answer.status_code})")


@contextmanager
def waiting(
    base_url: str, admin_token: str, database_url: str, deliveries: int = DELIVERIES
) -> Iterator[Backlog]:
    """At least `deliveries` app webhooks pending to a slow app while the block runs; the
    endpoint is disabled at the end, so that what follows in the run is not sent to."""
    app = SlowApp()
    headers = {"Authorization": f"Bearer {admin_token}"}
    api = f"/admin/api/projects/{seed.PROJECT}"
    try:
        with httpx.Client(base_url=base_url, headers=headers, timeout=120.0) as admin:
            endpoint = _call(
                admin.post(
                    f"{api}/webhook-endpoints",
                    json={"url": app.url, "events": ["tenant.entitlements.updated"]},
                ),
                201,
            )
            preview.add_tenants(database_url, int(deliveries * (1 + MARGIN)), prefix="w")
            grants = {**seed.plan_grants(), CHANGED_FEATURE: False}
            _call(admin.patch(f"{api}/plans/free", json={"features": grants}), 200)
            backlog = Backlog(pending_at_start=pending(base_url))
            if backlog.pending_at_start < deliveries:
                raise BacklogFailed(
                    f"only {backlog.pending_at_start} deliveries pending, {deliveries} wanted"
                )
            try:
                yield backlog
            finally:
                backlog.pending_at_end = pending(base_url)
                backlog.delivered = app.received
                path = f"{api}/webhook-endpoints/{endpoint['id']}"
                _call(admin.patch(path, json={"status": "disabled"}), 200)
    finally:
        app.close()


def _call(answer: httpx.Response, expect: int) -> Any:
    if answer.status_code != expect:
        raise BacklogFailed(
            f"{answer.request.method} {answer.request.url.path} answered {answer.status_code}: "
            f"{answer.text[:300]}"
        )
    return answer.json()
