"""The header's Stripe and Webhook statuses: computed from the settings, the recorded webhook
deliveries and what Stripe (here the project's Stripe double) answers; never a fixed text."""

import html
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from billplane.db import Database
from billplane.models import StripeEvent
from billplane.settings import Settings
from billplane.status.probes import ago, webhook_status
from conftest import ADMIN_TOKEN, Clock
from dashboard.conftest import Operator, app_client, status_of
from stripe_double import StripeDouble
from stripe_shop import closed_port_url


def delivery(received_at: datetime, outcome: str = "processed", **extra: Any) -> StripeEvent:
    fields: dict[str, Any] = {
        "stripe_event_id": f"evt_{received_at.timestamp():.0f}_{outcome}",
        "type": "invoice.paid",
        "livemode": False,
        "received_at": received_at,
        "processed_at": received_at,
        "outcome": outcome,
        "error": None,
        "payload": {"id": "evt", "object": "event"},
    }
    return StripeEvent(**(fields | extra))


def operator_with(
    settings: Settings, database: Database, session: Session, clock: Clock
) -> Operator:
    client = app_client(settings, database, session, clock)
    person = Operator(client)
    assert person.log_in().status_code == 303
    return person


# --- Stripe ---------------------------------------------------------------------------------------


def test_stripe_is_not_configured_without_a_secret_key(operator: Operator) -> None:
    assert status_of(operator.page("/"), "stripe") == "not configured"


def test_stripe_is_connected_in_test_mode_once_stripe_accepts_the_key(
    stripe_operator: Operator,
) -> None:
    assert status_of(stripe_operator.page("/"), "stripe") == "connected — test mode"


def test_stripe_says_live_mode_for_a_live_key(
    stripe_settings: Settings, database: Database, session: Session, clock: Clock
) -> None:
    settings = stripe_settings.model_copy(update={"stripe_secret_key": "sk_live_dashboard"})
    with operator_with(settings, database, session, clock).client as client:
        assert status_of(client.get("/").text, "stripe") == "connected — live mode"


def tone_of(page: str) -> str:
    """The colour of the header's Stripe pill: ok, warn, bad or idle."""
    found = re.search(r'data-testid="stripe-status">\s*<span class="pill pill-([a-z]+)"', page)
    assert found, "no Stripe pill in the header"
    return found.group(1)


def key_item(page: str) -> tuple[str, str]:
    """The checklist's "Stripe key set and valid": its state and the words of its action."""
    found = re.search(
        r'data-item="stripe_key" data-state="([a-z]+)">.*?<p class="check-action">(.*?)</p>',
        page,
        re.S,
    )
    assert found, "no Stripe key item in the checklist"
    return found.group(1), html.unescape(re.sub(r"<[^>]+>", "", found.group(2)))


def admin_status(client: TestClient) -> dict[str, Any]:
    answer = client.get("/admin/api/status", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def api_key_item(body: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(i for i in body["checklist"] if i["key"] == "stripe_key")
    return found


def test_a_key_stripe_refuses_is_said_to_be_refused(
    stripe_settings: Settings, database: Database, session: Session, clock: Clock
) -> None:
    # The Stripe double answers 401 authentication_error to a key that is neither sk_ nor rk_.
    settings = stripe_settings.model_copy(update={"stripe_secret_key": "sk_wrong_dashboard"})
    with operator_with(settings, database, session, clock).client as client:
        page = client.get("/").text
        body = admin_status(client)
    assert status_of(page, "stripe") == "error: key refused"
    assert tone_of(page) == "bad"
    state, action = key_item(page)
    assert state == "open"
    assert action.startswith("Stripe refused the key: set a valid STRIPE_SECRET_KEY")
    assert "could not be reached" not in page

    assert body["stripe"]["label"] == "error: key refused"
    assert body["stripe"]["ok"] is False
    assert "Stripe refused billplane's secret key" in body["stripe"]["detail"]
    item = api_key_item(body)
    assert (item["state"], item["done"]) == ("open", False)
    assert item["action"].startswith("Stripe refused the key")
    assert "sk_wrong_dashboard" not in page + str(body)


def test_an_unreachable_stripe_is_unknown_never_a_refused_key(
    stripe_settings: Settings, database: Database, session: Session, clock: Clock
) -> None:
    # A local port nothing listens on: the connection is refused at once, no hang.
    settings = stripe_settings.model_copy(update={"stripe_api_base": closed_port_url()})
    with operator_with(settings, database, session, clock).client as client:
        page = client.get("/").text
        body = admin_status(client)
    assert status_of(page, "stripe") == "unknown — Stripe unreachable"
    assert tone_of(page) == "warn"
    assert 'title="Stripe could not be reached while checking the secret key' in page
    state, action = key_item(page)
    assert state == "unknown"
    assert action.startswith("Stripe could not be reached, so the key is not checked yet")
    assert "refused" not in page

    assert body["stripe"]["label"] == "unknown — Stripe unreachable"
    assert body["stripe"]["ok"] is False
    assert body["stripe"]["detail"].startswith("Stripe could not be reached")
    item = api_key_item(body)
    assert (item["state"], item["done"]) == ("unknown", False)
    assert item["action"].startswith("Stripe could not be reached")
    assert "refused" not in str(body)


def test_no_page_ever_shows_the_stripe_keys(
    stripe_operator: Operator, double: StripeDouble
) -> None:
    for path in ["/", "/projects", "/builder", "/webhook"]:
        page = stripe_operator.page(path)
        assert "sk_test_dashboard" not in page, path
        assert "whsec_dashboard_tests" not in page, path


# --- Webhook --------------------------------------------------------------------------------------


def test_webhook_secret_missing(operator: Operator) -> None:
    assert status_of(operator.page("/"), "webhook") == "secret missing"


def test_webhook_waits_for_its_first_event(stripe_operator: Operator) -> None:
    assert status_of(stripe_operator.page("/"), "webhook") == "waiting for first event"


def test_webhook_tells_how_long_ago_the_last_event_came(
    stripe_operator: Operator, session: Session, clock: Clock
) -> None:
    session.add(delivery(clock.now - timedelta(hours=3), stripe_event_id="evt_old"))
    session.add(delivery(clock.now - timedelta(minutes=5), stripe_event_id="evt_new"))
    session.flush()
    assert status_of(stripe_operator.page("/"), "webhook") == "last event 5 min ago"
    clock.advance(minutes=40)
    assert status_of(stripe_operator.page("/"), "webhook") == "last event 45 min ago"


def test_webhook_is_failing_when_the_newest_event_failed(
    stripe_operator: Operator, session: Session, clock: Clock
) -> None:
    session.add(delivery(clock.now - timedelta(minutes=9), stripe_event_id="evt_ok"))
    session.add(
        delivery(
            clock.now - timedelta(minutes=2),
            "failed",
            stripe_event_id="evt_bad",
            error="stripe_unavailable: Stripe could not be reached",
        )
    )
    session.flush()
    page = stripe_operator.page("/")
    assert status_of(page, "webhook") == "failing"
    assert "Stripe could not be reached" in page  # the why, in the pill's title


@pytest.mark.parametrize(
    ("minutes", "said"),
    [
        (0.5, "<1 min ago"),
        (1, "1 min ago"),
        (119, "119 min ago"),
        (180, "3 h ago"),
        (4320, "3 days ago"),
    ],
)
def test_ages_read_naturally(clock: Clock, minutes: float, said: str) -> None:
    assert ago(clock.now - timedelta(minutes=minutes), clock.now) == said


def test_webhook_status_needs_a_key_to_be_alarming() -> None:
    without_key = Settings(database_url="sqlite://", billplane_admin_token=ADMIN_TOKEN)
    with_key = without_key.model_copy(update={"stripe_secret_key": "sk_test_x"})
    now = datetime.now().astimezone()
    assert webhook_status(without_key, None, now).tone == "idle"
    assert webhook_status(with_key, None, now).tone == "bad"
