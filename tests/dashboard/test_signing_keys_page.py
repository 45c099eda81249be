"""The Signing keys page: the keys with their state, and Rotate, which the next snapshot obeys."""

import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from billplane.models import AuditEntry
from billplane.settings import Settings
from conftest import ADMIN_TOKEN
from dashboard.conftest import Operator

SECRET = "dashboard-tests-secret-" + "k" * 32


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url, billplane_admin_token=ADMIN_TOKEN, billplane_secret_key=SECRET
    )


def kids_by_state(page: str) -> dict[str, str]:
    rows = re.findall(
        r'<tr data-kid="([^"]+)">.*?<span class="pill[^"]*"[^>]*>([^<]+)<', page, re.S
    )
    return {kid: state for kid, state in rows}


def test_rotate_on_the_page_makes_a_new_key_and_keeps_the_old_one_published(
    operator: Operator, session: Session
) -> None:
    page = operator.page("/signing-keys")
    assert "No key yet" in page
    assert "http://testserver/.well-known/jwks.json" in page

    first = operator.follow(operator.post("/signing-keys/rotate", {}))
    [first_kid] = kids_by_state(first)
    assert f"New signing key {first_kid}" in first
    second = operator.follow(operator.post("/signing-keys/rotate", {}))

    states = kids_by_state(second)
    [second_kid] = [kid for kid in states if kid != first_kid]
    assert states == {second_kid: "signs", first_kid: "retired, still published"}
    assert "The previous key stays published until 2026-11-22 12:05 UTC." in second
    jwks = operator.client.get("/.well-known/jwks.json").json()
    assert [key["kid"] for key in jwks["keys"]] == [second_kid, first_kid]
    actors = session.scalars(
        select(AuditEntry.actor).where(AuditEntry.action == "signing_key.rotate")
    ).all()
    assert actors == ["dashboard", "dashboard"]
