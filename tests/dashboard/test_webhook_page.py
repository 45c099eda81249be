"""The webhook page: the URL to paste into Stripe, the events to select, the signing secret's state
(never its value), whether Stripe has the endpoint, recent deliveries and replaying a failed one."""

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billplane.db import Database
from billplane.models import StripeEvent
from billplane.settings import Settings
from billplane.status.probes import HANDLED_EVENTS
from conftest import Admin, Clock
from dashboard.conftest import Operator, app_client, in_stripe, snippet_of
from dashboard.test_status import delivery
from stripe_double import StripeDouble

URL = "https://billing.example.com/webhooks/stripe"


def event_payload(event_id: str, type: str, *, livemode: bool = False) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": type,
        "created": 1_790_000_000,
        "livemode": livemode,
        "data": {"object": {"id": "cus_someone", "object": "customer"}},
    }


def failed(clock: Clock, event_id: str, type: str, **payload: Any) -> StripeEvent:
    return delivery(
        clock.now - timedelta(minutes=3),
        "failed",
        stripe_event_id=event_id,
        type=type,
        error="stripe_unavailable: Stripe could not be reached",
        payload=event_payload(event_id, type, **payload),
    )


def test_the_page_says_what_to_set_up_in_stripe(stripe_operator: Operator) -> None:
    page = stripe_operator.page("/webhook")
    assert f'id="webhook-url">{URL}<' in page
    events = re.search(r'id="webhook-events" tabindex="0"><code>(.*?)</code>', page, re.S)
    assert events
    assert events.group(1).split("\n") == list(HANDLED_EVENTS)
    assert 'Signing secret: <span class="pill pill-ok">set</span>' in page
    assert "whsec_dashboard_tests" not in page


def test_without_a_public_url_the_pages_name_the_url_they_were_served_at(
    settings: Settings, database: Database, session: Session, clock: Clock
) -> None:
    """`make run PORT=8100` without BILLPLANE_PUBLIC_URL: the webhook URL and the snippets follow
    the server that answers (and a local one is flagged as out of Stripe's reach)."""
    assert not settings.public_url_set
    with app_client(settings, database, session, clock, "http://127.0.0.1:8100") as client:
        person = Operator(client)
        assert person.log_in().status_code == 303
        page = person.page("/webhook")
        assert "http://127.0.0.1:8100/webhooks/stripe" in page
        assert "local address Stripe cannot reach" in page
        assert ">missing</span>" in page
        assert "127.0.0.1:8000" not in page
        assert "http://127.0.0.1:8100/v1/check" in snippet_of(person.page("/builder"), "check")
        status = Admin(client).call("GET", "/admin/api/stripe/check")
        assert status["webhook"]["url"] == "http://127.0.0.1:8100/webhooks/stripe"


def test_a_set_public_url_wins_over_the_url_served_at(
    settings: Settings, database: Database, session: Session, clock: Clock
) -> None:
    public = settings.model_copy(update={"billplane_public_url": "https://billing.example.com"})
    public.model_fields_set.add("billplane_public_url")
    with app_client(public, database, session, clock, "https://127.0.0.1:8100") as client:
        person = Operator(client)
        assert person.log_in().status_code == 303
        assert URL in person.page("/webhook")


def test_the_page_says_whether_stripe_has_the_endpoint(
    stripe_operator: Operator, double: StripeDouble
) -> None:
    assert ">no</span>" in stripe_operator.page("/webhook")
    in_stripe(double, "/v1/webhook_endpoints", {"url": URL, "enabled_events[0]": "invoice.paid"})
    assert "missing events: checkout.session.completed" in stripe_operator.page("/webhook")
    in_stripe(double, "/v1/webhook_endpoints", {"url": URL, "enabled_events[0]": "*"})
    assert "yes, with every event" in stripe_operator.page("/webhook")


def test_recent_events_with_their_outcome_and_a_replay_for_failed_ones(
    stripe_operator: Operator, session: Session, clock: Clock
) -> None:
    session.add(delivery(clock.now - timedelta(minutes=30), stripe_event_id="evt_done"))
    gone = "Stripe no longer has subscription sub_1 (deleted, or test data cleared)."
    at = clock.now - timedelta(minutes=20)
    session.add(delivery(at, "ignored", stripe_event_id="evt_gone", reason=gone))
    session.add(failed(clock, "evt_broken", "customer.created"))
    session.flush()
    page = stripe_operator.page("/webhook")
    rows = dict(re.findall(r'<tr data-event="(evt_\w+)">(.*?)</tr>', page, re.S))
    assert list(rows) == ["evt_broken", "evt_gone", "evt_done"]  # newest first
    assert ">ignored<" in rows["evt_gone"]
    assert gone in rows["evt_gone"]
    assert "Replay" not in rows["evt_gone"]
    assert ">failed<" in rows["evt_broken"]
    assert "could not be reached" in rows["evt_broken"]
    assert "Replay" in rows["evt_broken"]
    assert ">processed<" in rows["evt_done"]
    assert "Replay" not in rows["evt_done"]


def test_replaying_a_failed_event_processes_it_again(
    stripe_operator: Operator, session: Session, clock: Clock
) -> None:
    session.add(failed(clock, "evt_retry", "customer.created"))
    session.flush()
    page = stripe_operator.follow(stripe_operator.post("/webhook/events/evt_retry/replay", {}))
    assert "Event evt_retry replayed: ignored." in page
    row = session.scalar(select(StripeEvent).where(StripeEvent.stripe_event_id == "evt_retry"))
    assert row is not None
    assert row.outcome == "ignored"
    assert row.error is None


def test_a_replay_that_fails_again_says_why(
    stripe_operator: Operator, session: Session, clock: Clock
) -> None:
    session.add(failed(clock, "evt_live", "customer.created", livemode=True))
    session.flush()
    page = stripe_operator.follow(stripe_operator.post("/webhook/events/evt_live/replay", {}))
    assert "Replaying evt_live failed" in page
    assert "live-mode event" in page
    row = session.scalar(select(StripeEvent).where(StripeEvent.stripe_event_id == "evt_live"))
    assert row is not None
    assert row.outcome == "failed"


def test_replaying_an_unknown_event_says_so(stripe_operator: Operator) -> None:
    page = stripe_operator.follow(stripe_operator.post("/webhook/events/evt_nope/replay", {}))
    assert "No Stripe event &#39;evt_nope&#39; was received." in page
