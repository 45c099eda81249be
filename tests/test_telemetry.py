"""Every request gets an id (the client's, if sane) returned on its answer, and is timed in
`/metrics` under its route template and status, 500s included."""

import logging
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from billplane.app import create_app
from billplane.migrate import upgrade
from billplane.settings import Settings
from conftest import ADMIN_TOKEN, Setup

REQUESTS = "billplane_http_request_duration_seconds_count"
SECRET = "sk_live_" + "9" * 24


def requests_seen(method: str, route: str, status: int) -> float:
    """This process's count (the tests' app keeps its metrics in memory)."""
    labels = {"method": method, "route": route, "status": str(status)}
    return REGISTRY.get_sample_value(REQUESTS, labels) or 0.0


def test_every_answer_carries_a_request_id_of_its_own(client: TestClient) -> None:
    ids = {client.get("/healthz").headers["x-request-id"] for _ in range(3)}
    ids.add(client.get("/no-such-page").headers["x-request-id"])

    assert len(ids) == 4


@pytest.mark.parametrize("given", ["4bf92f3577b34da6a3ce929d0e0e4736", "req-1.2:3_x"])
def test_a_plain_client_request_id_is_returned_as_sent(client: TestClient, given: str) -> None:
    assert client.get("/healthz", headers={"X-Request-Id": given}).headers["x-request-id"] == given


@pytest.mark.parametrize(
    "given", [b"x" * 129, b"a b", b"id\tforged log", "ünïcode".encode(), b"", b'"}{"level']
)
def test_an_unfit_client_request_id_is_replaced(client: TestClient, given: bytes) -> None:
    answered = client.get("/healthz", headers={b"X-Request-Id": given}).headers["x-request-id"]

    assert answered
    assert answered.encode() != given
    assert len(answered) <= 128


def test_requests_are_counted_per_route_template_never_per_path(realtyos: Setup) -> None:
    route = "/v1/tenants/{tenant}/entitlements"
    before = requests_seen("GET", route, 200), requests_seen("GET", route, 404)
    before_unmatched = requests_seen("GET", "unmatched", 404)

    assert realtyos.api.get("/v1/tenants/acme/entitlements").status_code == 200
    assert realtyos.api.get("/v1/tenants/nobody/entitlements").status_code == 404
    realtyos.api.get("/wp-admin/setup.php")

    after = requests_seen("GET", route, 200), requests_seen("GET", route, 404)
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)
    assert requests_seen("GET", "unmatched", 404) - before_unmatched == 1
    exposed = realtyos.api.client.get("/metrics").text
    assert "/v1/tenants/acme" not in exposed
    assert "wp-admin" not in exposed


def test_a_dashboard_page_is_counted_under_its_template(client: TestClient) -> None:
    before = requests_seen("GET", "/login", 200)

    assert client.get("/login").status_code == 200

    assert requests_seen("GET", "/login", 200) - before == 1


def test_an_unhandled_exception_is_a_500_with_an_id_counted_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'boom.db'}"
    upgrade(url)
    app = create_app(Settings(database_url=url, billplane_admin_token=ADMIN_TOKEN))
    _add_failing_route(app)
    before = requests_seen("GET", "/boom", 500)

    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/boom", headers={"X-Request-Id": "boom-1"})

    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "internal_error"
    assert answer.headers["x-request-id"] == "boom-1"
    assert requests_seen("GET", "/boom", 500) - before == 1
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(logged) == 1
    assert SECRET not in logged[0].getMessage()


def _add_failing_route(app: FastAPI) -> None:
    def boom() -> None:
        raise RuntimeError(f"Stripe said: invalid key {SECRET}")

    app.add_api_route("/boom", boom, include_in_schema=False)
