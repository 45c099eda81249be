"""One logging set-up: every record, uvicorn's included, leaves as text or one JSON object per
line, with the request id, and never with a secret in it."""

import io
import json
import logging
import logging.config
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from billplane.logs import REQUEST_ID, billplane_logger, logging_config, mark_logged
from billplane.webhooks import WEBHOOK_PATH
from conftest import ADMIN_TOKEN, fresh_database
from servers import running_server
from stripe_double.events import signature_header
from stripe_double.server import BackgroundServer

SECRETS = ("sk_test_" + "a" * 24, "whsec_" + "b" * 24, "bp_" + "c" * 32)


@contextmanager
def handled(*, json: bool) -> Iterator[io.StringIO]:
    """What billplane's handler writes, with the set-up `serve` gives uvicorn (in place of the
    test runner's own handlers, put back afterwards)."""
    root = logging.getLogger()
    kept = root.handlers[:], root.level
    config = logging_config(json=json)
    config["handlers"]["stderr"]["stream"] = stream = io.StringIO()
    logging.config.dictConfig(config)
    try:
        yield stream
    finally:
        root.handlers[:], root.level = kept


@pytest.fixture(params=["text", "json"])
def output(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    with handled(json=request.param == "json") as stream:
        yield stream


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_uvicorns_records_pass_the_mask(output: io.StringIO) -> None:
    logging.getLogger("uvicorn.error").warning("Invalid header: %s", " ".join(SECRETS))
    try:
        raise ValueError(f"cannot parse {SECRETS[0]}")
    except ValueError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")

    written = output.getvalue()
    assert "Invalid header" in written
    assert "Exception in ASGI application" in written
    assert not [secret for secret in SECRETS if secret in written]


def test_json_is_one_object_per_line_even_with_a_traceback() -> None:
    with handled(json=True) as output:
        try:
            raise RuntimeError(f"line one\n{SECRETS[2]}\nline three")
        except RuntimeError:
            logging.getLogger("uvicorn.error").exception("failed")

    (line,) = lines(output)
    record = json.loads(line)
    assert record["level"] == "ERROR"
    assert record["logger"] == "uvicorn.error"
    assert "Traceback" in record["message"]
    assert SECRETS[2] not in line  # after a newline's escape, where `\b` sees no boundary


def test_a_record_logged_while_serving_carries_the_request_id(output: io.StringIO) -> None:
    context = REQUEST_ID.set("req-42")
    try:
        billplane_logger().warning("something worth a look")
    finally:
        REQUEST_ID.reset(context)
    billplane_logger().warning("outside any request")

    served, outside = lines(output)
    assert "req-42" in served
    assert "req-42" not in outside


def test_an_exception_billplane_logged_is_not_reported_again_by_uvicorn(
    output: io.StringIO,
) -> None:
    error = RuntimeError("boom")
    billplane_logger().error("unhandled RuntimeError while serving a request", exc_info=error)
    mark_logged(error)
    logging.getLogger("uvicorn.error").error("Exception in ASGI application", exc_info=error)
    other = RuntimeError("never seen by billplane")
    logging.getLogger("uvicorn.error").error("Exception in ASGI application", exc_info=other)

    written = output.getvalue()
    assert written.count("unhandled RuntimeError") == 1
    assert written.count("Exception in ASGI application") == 1
    assert "never seen by billplane" in written


KEY = "sk_test_" + "k" * 24
WEBHOOK_SECRET = "whsec_" + "w" * 24
TOKEN = "bp_" + "t" * 32
PLANTED = (KEY, WEBHOOK_SECRET, TOKEN)


@pytest.mark.e2e
def test_a_json_logging_server_never_logs_a_secret_planted_in_failing_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Secrets in tokens, paths, request ids, Stripe's error messages and an exception's text:
    every line the server writes (supervisor and workers) is one JSON object, none holds a
    secret, and the one unhandled exception is logged once."""
    log_file = tmp_path / "server.log"
    monkeypatch.setenv("BP_SERVER_LOG", str(log_file))
    stripe = BackgroundServer(_stripe_quoting_secrets(), name="stripe-quoting-secrets")
    env = {
        "BILLPLANE_LOG_FORMAT": "json",
        "STRIPE_SECRET_KEY": KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": stripe.start(),
    }
    try:
        with (
            fresh_database("sqlite", tmp_path) as url,
            running_server(url, ADMIN_TOKEN, workers=2, extra_env=env, access_log=True) as base,
            httpx.Client(base_url=base, timeout=60) as http,
        ):
            statuses = _failing_requests(http)
    finally:
        stripe.stop()

    assert statuses == [401, 401, 401, 200, 201, 200, 400, 500], statuses
    written = log_file.read_text()
    records = [json.loads(line) for line in written.splitlines()]  # each line is JSON
    assert not [secret for secret in PLANTED if secret in written]
    assert not [secret[-20:] for secret in PLANTED if secret[-20:] in written]
    tracebacks = [r for r in records if "Traceback" in r["message"]]
    assert len(tracebacks) == 1, tracebacks
    assert tracebacks[0]["logger"] == "billplane"
    assert "request_id" in tracebacks[0]
    assert any(
        r["logger"] == "billplane.stripe.gateway" or "stripe:" in r["message"] for r in records
    )
    failed = [r for r in records if r.get("route") == WEBHOOK_PATH and r.get("status") == 500]
    assert len(failed) == 1


def _stripe_quoting_secrets() -> Starlette:
    """A Stripe that refuses every call, quoting billplane's secrets back in its message."""

    async def refuse(_request: Request) -> JSONResponse:
        message = f"No such price; key {KEY}, secret {WEBHOOK_SECRET}, token {TOKEN}"
        error = {"type": "invalid_request_error", "code": "resource_missing", "message": message}
        return JSONResponse({"error": error}, status_code=400)

    return Starlette(routes=[Route("/{path:path}", refuse, methods=["GET", "POST"])])


def _failing_requests(http: httpx.Client) -> list[int]:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    answers = [
        http.post("/v1/check", json={"tenant": "a", "feature": "f"}, headers=_bearer(TOKEN)),
        http.get(f"/v1/tenants/{TOKEN}/entitlements?key={KEY}", headers=_bearer(KEY)),
        http.get("/admin/api/projects", headers=_bearer(WEBHOOK_SECRET)),
        http.get("/healthz", headers={"X-Request-Id": KEY}),
    ]
    http.post("/admin/api/projects", json={"key": "p", "name": "P"}, headers=admin)
    # Stripe, asked about the price, answers with the secrets in its message.
    plan = {"key": "pro", "name": "Pro", "stripe_price_id": "price_pro"}
    answers.append(http.post("/admin/api/projects/p/plans", json=plan, headers=admin))
    answers.append(http.get("/admin/api/stripe/check", headers=admin))
    # A forged delivery, then a signed one whose `created` makes billplane fail (a 500).
    forged = json.dumps({"id": "evt_1", "secrets": PLANTED}).encode()
    signature = {"Stripe-Signature": signature_header(forged, "whsec_" + "f" * 24)}
    answers.append(http.post(WEBHOOK_PATH, content=forged, headers=signature))
    event = {
        "id": "evt_2",
        "object": "event",
        "type": "customer.created",
        "created": KEY,
        "data": {"object": {"id": "cus_1", "object": "customer"}},
    }
    payload = json.dumps(event).encode()
    signed = {"Stripe-Signature": signature_header(payload, WEBHOOK_SECRET)}
    answers.append(http.post(WEBHOOK_PATH, content=payload, headers=signed))
    for answer in answers:
        assert not [secret for secret in PLANTED if secret in answer.text], answer.text
    return [answer.status_code for answer in answers]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
