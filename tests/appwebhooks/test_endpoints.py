"""The admin API's webhook endpoints: the secret is shown once, at creation and rotation, and
nowhere after (lists, views, the audit trail, the logs)."""

import logging
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from billplane.appwebhooks import repository
from billplane.appwebhooks.signing import unseal
from billplane.models import AppWebhookEndpoint, AuditEntry
from conftest import Clock, Setup
from factories import SECRET_KEY

ENDPOINTS = "/admin/api/projects/realtyos/webhook-endpoints"
EVENTS = ["tenant.entitlements.updated", "tenant.usage.threshold"]


def _create(setup: Setup, **body: Any) -> dict[str, Any]:
    fields = {"url": "https://app.realtyos.test/hooks", "events": EVENTS} | body
    created: dict[str, Any] = setup.admin.call("POST", ENDPOINTS, 201, json=fields)
    return created


def test_a_new_endpoint_shows_its_secret_once_and_never_again(
    realtyos: Setup, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    created = _create(realtyos)

    assert created["id"].startswith("ep_")
    assert created["secret"].startswith("whsec_")
    assert created["status"] == "enabled"
    assert created["events"] == EVENTS
    listed = realtyos.admin.call("GET", ENDPOINTS)["data"]
    shown = realtyos.admin.call("GET", f"{ENDPOINTS}/{created['id']}")
    assert [e["id"] for e in listed] == [created["id"]]
    assert "secret" not in listed[0]
    assert "secret" not in shown
    audit = session.scalars(select(AuditEntry).where(AuditEntry.action.like("webhook%"))).all()
    assert [a.action for a in audit] == ["webhook_endpoint.create"]
    secret = created["secret"].removeprefix("whsec_")
    assert secret not in str([(a.before, a.after) for a in audit])
    assert secret not in caplog.text


def test_rotating_gives_a_new_secret_once_and_the_old_one_still_signs_for_a_day(
    realtyos: Setup, session: Session, clock: Clock
) -> None:
    created = _create(realtyos)

    rotated = realtyos.admin.call("POST", f"{ENDPOINTS}/{created['id']}/rotate-secret")

    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != created["secret"]
    assert "secret" not in realtyos.admin.call("GET", f"{ENDPOINTS}/{created['id']}")
    endpoint = session.scalars(select(AppWebhookEndpoint)).one()
    signing = [rotated["secret"], created["secret"]]

    def signing_at(at: datetime) -> list[str]:
        sealed = repository.signing_secrets(endpoint, at)
        return [unseal(each, SECRET_KEY, endpoint.public_id) for each in sealed]

    assert signing_at(clock.now + timedelta(hours=23)) == signing
    assert signing_at(clock.now + timedelta(hours=24)) == signing[:1]


def test_an_endpoint_changes_its_events_and_url_and_is_disabled_and_enabled(
    realtyos: Setup,
) -> None:
    created = _create(realtyos)
    path = f"{ENDPOINTS}/{created['id']}"

    changed = realtyos.admin.call(
        "PATCH",
        path,
        json={"url": "https://hooks.example.test/billing", "events": ["invoice.payment_failed"]},
    )
    disabled = realtyos.admin.call("PATCH", path, json={"status": "disabled"})
    enabled = realtyos.admin.call("PATCH", path, json={"status": "enabled"})

    assert changed["url"] == "https://hooks.example.test/billing"
    assert changed["events"] == ["invoice.payment_failed"]
    assert (disabled["status"], disabled["disabled_reason"]) == ("disabled", "Disabled by admin.")
    assert (enabled["status"], enabled["disabled_reason"]) == ("enabled", None)
