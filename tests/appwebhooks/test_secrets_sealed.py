"""Endpoints' signing secrets are sealed at rest with BILLPLANE_SECRET_KEY: the row never holds
one in clear, deliveries still verify with `standardwebhooks`, and a server with another key (or
none) holds deliveries back with a clear reason instead of failing in a loop."""

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app_receiver import Receiver, receiving
from appwebhooks.test_sender import deliveries, emit
from billplane.appwebhooks.sender import CLAIM_FOR, Sender
from billplane.models import AppWebhookEndpoint
from billplane.settings import Settings
from conftest import Clock, SavepointTransactions, Setup
from factories import SECRET_KEY

ENDPOINTS = "/admin/api/projects/realtyos/webhook-endpoints"
OTHER_KEY = "another-secret-key-" + "o" * 32


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as listening:
        yield listening


def sender_with(session: Session, clock: Clock, secret_key: str | None) -> Sender:
    return Sender(
        SavepointTransactions(session),
        secret_key=secret_key,
        clock=clock,
        http=httpx.Client(timeout=1.0),
    )


def stored(session: Session) -> str:
    """The endpoint's row as the database holds it, every column as text."""
    row = session.execute(text("SELECT * FROM app_webhook_endpoints")).one()
    return repr(tuple(row))


def test_the_database_row_never_holds_a_secret_in_clear_and_deliveries_still_verify(
    realtyos: Setup, session: Session, clock: Clock, receiver: Receiver
) -> None:
    created = realtyos.admin.call(
        "POST",
        ENDPOINTS,
        201,
        json={"url": receiver.url, "events": ["tenant.entitlements.updated"]},
    )
    first = created["secret"]
    assert first.removeprefix("whsec_") not in stored(session)
    rotated = realtyos.admin.call("POST", f"{ENDPOINTS}/{created['id']}/rotate-secret")["secret"]
    row = stored(session)
    assert first.removeprefix("whsec_") not in row
    assert rotated.removeprefix("whsec_") not in row
    endpoint = session.scalars(select(AppWebhookEndpoint)).one()
    assert endpoint.secret_sealed.startswith("v1.")
    assert endpoint.previous_secret_sealed is not None
    assert endpoint.previous_secret_sealed.startswith("v1.")
    emit(session, "acme", 1, clock)
    sender = sender_with(session, clock, SECRET_KEY)

    try:
        assert sender.run_once() == 1
    finally:
        sender.close()

    [received] = receiver.accepted()
    assert received.verified(rotated)["data"]["tenant"] == "acme"
    assert received.verified(first)["data"]["tenant"] == "acme"  # the old one signs for a day


@pytest.mark.parametrize("secret_key", [OTHER_KEY, None], ids=["another_key", "no_key"])
def test_a_sender_without_the_sealing_key_holds_deliveries_back_and_says_why(
    realtyos: Setup,
    session: Session,
    clock: Clock,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
    secret_key: str | None,
) -> None:
    secret = realtyos.seed.webhook_endpoint("realtyos", receiver.url).secret
    realtyos.seed.tenant("realtyos", "globex")
    emit(session, "acme", 1, clock)
    emit(session, "globex", 1, clock)
    wrong = sender_with(session, clock, secret_key)

    try:
        assert [wrong.run_once() for _ in range(3)] == [0, 0, 0]  # claimed, none sent
        clock.advance(seconds=CLAIM_FOR.total_seconds() / 2)
        assert wrong.run_once() == 0  # the endpoint is left be while its claims last
    finally:
        wrong.close()

    assert receiver.received == []
    held = deliveries(session)
    assert [(d.status, d.attempts) for d in held] == [("pending", 0)] * 2
    assert all("BILLPLANE_SECRET_KEY" in (d.last_error or "") for d in held)
    assert caplog.text.count("held back") == 1  # one line for the endpoint, not one per try
    assert "BILLPLANE_SECRET_KEY" in caplog.text
    assert secret.removeprefix("whsec_") not in caplog.text
    clock.advance(seconds=CLAIM_FOR.total_seconds() / 2)
    right = sender_with(session, clock, SECRET_KEY)
    try:
        assert right.run_once() == 2
    finally:
        right.close()
    received = receiver.accepted()
    assert sorted(r.verified(secret)["data"]["tenant"] for r in received) == ["acme", "globex"]
    assert [d.status for d in deliveries(session)] == ["delivered"] * 2


class TestWithoutTheSecretKey:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"billplane_secret_key": None})

    def test_an_endpoint_is_refused_in_the_envelope_naming_the_setting(
        self, realtyos: Setup, session: Session
    ) -> None:
        body = {"url": "https://app.realtyos.test/hooks", "events": ["tenant.usage.threshold"]}

        refused = realtyos.admin.call("POST", ENDPOINTS, 503, json=body)

        assert refused["error"]["code"] == "secret_key_not_configured"
        assert "BILLPLANE_SECRET_KEY" in refused["error"]["message"]
        assert session.scalars(select(AppWebhookEndpoint)).all() == []
