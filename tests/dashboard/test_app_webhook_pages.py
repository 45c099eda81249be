"""A project's app webhooks in the dashboard: an endpoint's secret is shown once, its deliveries
with status and body, a replay, and a notice when the sender disabled it."""

import html
import re

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from billplane.appwebhooks.signing import unseal
from billplane.models import AppDelivery, AppWebhookEndpoint
from billplane.settings import Settings
from conftest import Clock, Setup
from dashboard.conftest import Operator
from factories import SECRET_KEY

PAGE = "/projects/realtyos/webhooks"


def secret_on(page: str) -> str | None:
    found = re.search(r'id="one-time-secret">(whsec_[^<]+)<', page)
    return found.group(1) if found else None


def test_an_endpoint_added_shows_its_secret_once_and_is_disabled_and_enabled(
    realtyos: Setup, operator: Operator, session: Session
) -> None:
    added = operator.post(
        PAGE, {"url": "https://app.realtyos.test/hooks", "event.tenant.usage.threshold": "on"}
    )
    shown = operator.follow(added)
    endpoint = session.scalars(select(AppWebhookEndpoint)).one()
    secret = unseal(endpoint.secret_sealed, SECRET_KEY, endpoint.public_id)

    assert secret_on(shown) == secret
    assert endpoint.events == ["tenant.usage.threshold"]
    again = operator.page(PAGE)
    assert secret_on(again) is None
    assert secret not in again
    operator.post(f"{PAGE}/{endpoint.public_id}/status", {"status": "disabled"})
    assert "Enable</button>" in operator.page(PAGE)
    operator.post(f"{PAGE}/{endpoint.public_id}/status", {"status": "enabled"})
    assert "Disable</button>" in operator.page(PAGE)
    rotated = operator.follow(operator.post(f"{PAGE}/{endpoint.public_id}/rotate-secret", {}))
    session.refresh(endpoint)
    assert secret_on(rotated) == unseal(endpoint.secret_sealed, SECRET_KEY, endpoint.public_id)


def test_deliveries_show_status_and_body_and_one_is_replayed(
    realtyos: Setup, operator: Operator, session: Session
) -> None:
    endpoint = realtyos.seed.webhook_endpoint("realtyos", "https://app.realtyos.test/hooks")
    realtyos.admin.call(
        "PATCH", "/admin/api/projects/realtyos/tenants/acme", json={"status": "archived"}
    )
    path = f"{PAGE}/{endpoint.endpoint.public_id}"
    delivery = session.scalars(select(AppDelivery)).one()
    session.execute(update(AppDelivery).values(status="failed", last_error="answered 500"))

    page = html.unescape(operator.page(path))
    assert "tenant.entitlements.updated" in page
    assert "answered 500" in page
    assert '"status": "archived"' in page  # the body, as sent

    operator.post(f"{path}/deliveries/{delivery.public_id}/replay", {})
    session.refresh(delivery)
    assert delivery.status == "pending"


def test_an_endpoint_the_sender_disabled_is_told_on_the_page(
    realtyos: Setup, operator: Operator, session: Session, clock: Clock
) -> None:
    endpoint = realtyos.seed.webhook_endpoint("realtyos", "https://app.realtyos.test/hooks")
    reason = "Every delivery failed for 3 days (since 2026-11-18 12:00 UTC); enable it again."
    session.execute(update(AppWebhookEndpoint).values(status="disabled", disabled_reason=reason))

    page = html.unescape(operator.page(PAGE))

    assert (
        f"{endpoint.endpoint.public_id}</code> (https://app.realtyos.test/hooks) was disabled"
        in page
    )
    assert reason in page


class TestWithoutTheSecretKey:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"billplane_secret_key": None})

    def test_adding_an_endpoint_says_to_set_the_secret_key_and_adds_none(
        self, realtyos: Setup, operator: Operator, session: Session
    ) -> None:
        form = {"url": "https://app.realtyos.test/hooks", "event.tenant.usage.threshold": "on"}

        refused = operator.post(PAGE, form, expect=422)

        assert "BILLPLANE_SECRET_KEY" in html.unescape(refused.text)
        assert session.scalars(select(AppWebhookEndpoint)).all() == []
