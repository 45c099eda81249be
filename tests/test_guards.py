"""Bodies over their limit are refused (413, in the envelope) before they are read whole or a
token is checked; billplane's pages carry the headers that keep browsers from framing them."""

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from starlette.types import Message

from billplane.app import create_app
from billplane.db import Database
from billplane.guards import BodyLimits
from billplane.settings import MIB, Settings
from conftest import ADMIN_TOKEN, Clock, Setup
from dashboard.conftest import app_client

JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def streamed(total: int, piece: bytes = b" " * 65536) -> Iterator[bytes]:
    """A body sent chunked (no Content-Length), `total` bytes of it."""
    while total > 0:
        yield piece[:total]
        total -= len(piece)


def refused(response: Any, limit: str) -> None:
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"
    assert limit in response.json()["error"]["message"]
    assert response.headers["connection"] == "close"


def test_a_batch_over_the_limit_is_refused_before_its_token_is_checked(client: TestClient) -> None:
    # No token at all: a 401 would mean the body had been let through to authentication.
    refused(client.post("/v1/usage/batch", content=b"[" * (2 * MIB + 1), headers=JSON), "2 MiB")
    refused(client.post("/v1/usage/batch", content=streamed(3 * MIB), headers=JSON), "2 MiB")


def test_the_largest_batch_a_client_may_send_fits(realtyos: Setup) -> None:
    """1,000 events with every field at its longest, the keys in a script JSON escapes (six
    bytes a character), pretty-printed: 1.9 MB, under the 2 MiB default."""
    tenant, feature, key = "t" * 128, "f" * 64, "漢" * 255
    realtyos.seed.tenant("realtyos", tenant)
    realtyos.seed.feature("realtyos", feature, "metered")
    events = [
        {
            "tenant": tenant,
            "feature": feature,
            "quantity": 1_000_000_000,
            "idempotency_key": f"{index:04}{key}"[:255],
            "enforce": False,
            "timestamp": "2026-11-21T11:59:59.999999+09:30",
        }
        for index in range(1000)
    ]
    body = json.dumps({"events": events}, indent=2).encode()
    assert 1.8e6 < len(body) < 2 * MIB

    response = realtyos.api.client.post(
        "/v1/usage/batch", content=body, headers={**realtyos.api.headers, **JSON}
    )

    assert response.status_code == 200, response.text[:300]
    assert [r["status"] for r in response.json()["data"]] == [201] * 1000


def test_an_idempotency_key_over_its_length_is_refused_by_the_schema(realtyos: Setup) -> None:
    long_key = {"tenant": "acme", "feature": "ai.tokens", "idempotency_key": "k" * 256}
    response = realtyos.api.post("/v1/usage", long_key)
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "idempotency_key"


def test_a_webhook_body_over_the_limit_is_refused_unread(client: TestClient) -> None:
    refused(client.post("/webhooks/stripe", content=b"{" * (2 * MIB + 1)), "2 MiB")
    refused(client.post("/webhooks/stripe", content=streamed(3 * MIB)), "2 MiB")


def test_a_dashboard_form_over_its_smaller_limit_is_refused(client: TestClient) -> None:
    refused(client.post("/login", content=b"t" * (64 * 1024 + 1), headers=FORM), "64 KiB")
    refused(client.post("/login", content=streamed(100 * 1024), headers=FORM), "64 KiB")


def test_a_body_framed_chunked_is_counted_whatever_content_length_it_claims() -> None:
    """A server that let both headers through (request smuggling's favourite) must not get a
    small Content-Length believed while the chunks keep coming."""
    read: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (message := await receive())["more_body"]:
            read.append(len(message["body"]))

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b" " * 65536, "more_body": True}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    headers = [(b"content-length", b"10"), (b"transfer-encoding", b"chunked")]
    scope = {"type": "http", "path": "/v1/usage", "method": "POST", "headers": headers}
    asyncio.run(BodyLimits(app, api=MIB, forms=MIB)(scope, receive, send))

    assert sum(read) <= MIB
    assert sent[0]["status"] == 413


def test_the_limits_are_settings(
    database_url: str, database: Database, session: Session, clock: Clock
) -> None:
    settings = Settings(
        database_url=database_url,
        billplane_admin_token=ADMIN_TOKEN,
        billplane_max_body_bytes=100 * 1024,
        billplane_max_form_bytes=8 * 1024,
    )
    with app_client(settings, database, session, clock) as client:
        refused(client.post("/v1/check", content=b" " * (100 * 1024 + 1), headers=JSON), "100 KiB")
        refused(client.post("/login", content=streamed(9 * 1024), headers=FORM), "8 KiB")
        assert client.post("/v1/check", content=b"{}", headers=JSON).status_code == 422


# --- headers for browsers --------------------------------------------------------------------


@pytest.fixture(scope="module")
def https_app() -> TestClient:
    settings = Settings(
        database_url="sqlite://",
        billplane_admin_token=ADMIN_TOKEN,
        billplane_public_url="https://billing.example.com",
    )
    return TestClient(create_app(settings), base_url="https://testserver")


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/openapi.json", "/login", "/healthz"])
def test_no_page_of_billplane_may_be_framed_or_sniffed(https_app: TestClient, page: str) -> None:
    headers = https_app.get(page).headers
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["strict-transport-security"].startswith("max-age=31536000")
    # One of each: the dashboard's own stricter policy is not doubled.
    assert len(headers.get_list("content-security-policy")) == 1


def test_hsts_only_when_the_public_url_is_https(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.headers["x-frame-options"] == "DENY"
    assert "strict-transport-security" not in docs.headers
