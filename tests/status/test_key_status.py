"""The Stripe key's status, told from the gateway's typed errors (never from their words): a key
Stripe refuses or forbids is an `error:` to fix; a Stripe that cannot answer leaves it `unknown`.
The same verdict reaches the header, the checklist, `/admin/api/status` and `stripe check`."""

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from billplane.errors import StripeUnavailable
from billplane.settings import Settings
from billplane.status.checklist import Stripe, checklist
from billplane.status.probes import (
    EndpointStatus,
    KeyProblem,
    KeyStatus,
    stripe_report,
    stripe_status,
)
from billplane.stripe.errors import (
    StripeKeyForbidden,
    StripeKeyRefused,
    StripeRateLimited,
    StripeUnreachable,
)
from billplane.stripe.gateway import StripeGateway
from conftest import ADMIN_TOKEN
from stripe_double import running_double
from stripe_shop import closed_port_url


@contextmanager
def stripe_answering(status: int, kind: str, message: str) -> Iterator[str]:
    """A local server answering every call as Stripe answers an error; its base URL."""

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"error": {"type": kind, "message": message}}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


KEY = "sk_test_key_status"


@pytest.mark.parametrize(
    ("status", "kind", "error", "problem", "label", "tone"),
    [
        (401, "authentication_error", StripeKeyRefused, "refused", "error: key refused", "bad"),
        (
            403,
            "invalid_request_error",
            StripeKeyForbidden,
            "forbidden",
            "error: key lacks permissions",
            "bad",
        ),
        (
            429,
            "rate_limit_error",
            StripeRateLimited,
            "rate_limited",
            "unknown — Stripe rate-limiting",
            "warn",
        ),
        (
            500,
            "api_error",
            StripeUnavailable,
            "failed",
            "unknown — Stripe answered with an error",
            "warn",
        ),
    ],
)
def test_each_answer_of_stripe_gets_its_own_words(
    status: int,
    kind: str,
    error: type[StripeUnavailable],
    problem: str,
    label: str,
    tone: str,
) -> None:
    with stripe_answering(status, kind, "no") as base:
        gateway = StripeGateway(KEY, base)
        with pytest.raises(error) as raised:
            gateway.verify_key()
        seen = stripe_status(StripeGateway(KEY, base))
    assert type(raised.value) is error  # the most precise type, not only its base
    assert (seen.problem, seen.label, seen.tone) == (problem, label, tone)
    assert seen.detail == raised.value.message
    assert KEY not in str(seen)


def test_an_unreachable_stripe_is_unknown() -> None:
    gateway = StripeGateway(KEY, closed_port_url())
    with pytest.raises(StripeUnreachable):
        gateway.verify_key()
    seen = stripe_status(StripeGateway(KEY, closed_port_url()))
    assert (seen.problem, seen.label, seen.tone) == (
        "unreachable",
        "unknown — Stripe unreachable",
        "warn",
    )
    assert seen.detail is not None
    assert seen.detail.startswith("Stripe could not be reached")


def report_for(key: str, api_base: str) -> dict[str, object]:
    # The settings only place the webhook; the gateway carries the key (settings would refuse
    # a malformed one at start, before Stripe could).
    settings = Settings(database_url="sqlite://", billplane_admin_token=ADMIN_TOKEN)
    now: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731
    report = stripe_report(StripeGateway(key, api_base), settings, [], now)
    return report.key.model_dump()


def test_the_stripe_report_tells_a_refused_key_from_an_unreachable_stripe() -> None:
    with running_double() as double:
        refused = report_for("sk_wrong_report", double.base_url)
        valid = report_for(KEY, double.base_url)
    unreachable = report_for(KEY, closed_port_url())

    assert refused["valid"] is False
    assert refused["problem"] == "refused"
    assert str(refused["error"]).startswith("Stripe refused billplane's secret key")
    assert unreachable["valid"] is False
    assert unreachable["problem"] == "unreachable"
    assert str(unreachable["error"]).startswith("Stripe could not be reached")
    assert valid == {"valid": True, "error": None, "problem": None}


@pytest.mark.parametrize(
    ("problem", "state", "words"),
    [
        ("refused", "open", "Stripe refused the key: set a valid STRIPE_SECRET_KEY"),
        ("forbidden", "open", "Stripe accepts the key but it may not read customers"),
        ("unreachable", "unknown", "Stripe could not be reached, so the key is not checked yet"),
        ("rate_limited", "unknown", "Stripe is rate-limiting billplane"),
        ("failed", "unknown", "Stripe answered with an error"),
    ],
)
def test_the_checklist_asks_to_fix_only_a_key_stripe_refused(
    problem: KeyProblem, state: str, words: str
) -> None:
    detail = {
        "rate_limited": "Stripe is rate-limiting billplane (checking the secret key); try again.",
        "failed": "Stripe answered with an error while checking the secret key (HTTP 500).",
    }.get(problem, "the gateway's sentence")
    seen = Stripe(
        key=KeyStatus("a label", "warn", detail, problem=problem),
        key_set=True,
        webhook_secret_set=False,
        prices={},
        endpoint=EndpointStatus(registered=None, why="Stripe could not be asked."),
        events_received=0,
        webhook_url="https://b.example/webhooks/stripe",
    )
    item = next(i for i in checklist([], seen) if i.key == "stripe_key")
    assert item.state == state
    assert item.action.startswith(words)
    assert ("refused" in item.action) is (problem == "refused")
