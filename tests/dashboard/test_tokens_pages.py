"""Projects and tokens in the dashboard: a new or rotated token is shown exactly once, right
after the POST that made it, and then on no page at all; it works like one from the admin API."""

import base64
import html
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from billplane.models import AuditEntry, OneTimeSecret
from conftest import Admin
from dashboard.conftest import Operator, one_time_secret
from factories import Seed

EVERY_PAGE = [
    "/",
    "/projects",
    "/projects/realtyos",
    "/projects/realtyos/plans",
    "/projects/realtyos/tenants",
    "/projects/realtyos/tenants/acme",
    "/builder",
    "/builder?project=realtyos&lang=js",
    "/builder?project=realtyos&lang=python",
    "/webhook",
]


def check(client: TestClient, token: str, tenant: str = "acme") -> int:
    response = client.post(
        "/v1/check",
        json={"tenant": tenant, "feature": "exports"},
        headers={"Authorization": f"Bearer {token}"},
    )
    return response.status_code


def seeded(operator: Operator) -> str:
    """realtyos with a feature, a default plan and a tenant, made in the dashboard; its token."""
    created = operator.post(
        "/projects",
        {"key": "realtyos", "name": "RealtyOS", "origins": "https://app.realtyos.test\n"},
    )
    secret = one_time_secret(operator.follow(created))
    seeded_rest(operator)
    return secret


def seeded_rest(operator: Operator) -> None:
    operator.post(
        "/projects/realtyos/features", {"key": "exports", "name": "Exports", "type": "boolean"}
    )
    operator.post(
        "/projects/realtyos/plans",
        {"key": "free", "name": "Free", "is_default": "on", "grant.exports": "on"},
    )
    operator.post("/projects/realtyos/tenants", {"key": "acme"})


def assert_on_no_page(operator: Operator, secret: str) -> None:
    for path in EVERY_PAGE:
        page = operator.page(path)
        assert secret not in page, path
        assert secret[12:] not in page, path  # not even past the visible prefix


def test_a_new_project_shows_its_token_once_and_never_again(
    operator: Operator, client: TestClient
) -> None:
    response = operator.post(
        "/projects", {"key": "realtyos", "name": "RealtyOS", "origins": "https://a.test"}
    )
    assert response.headers["location"] == "/projects/realtyos#secret"
    shown = operator.follow(response)
    secret = one_time_secret(shown)
    assert "shown <strong>only this once</strong>" in shown
    assert 'data-copy="one-time-secret"' in shown  # with its copy button
    assert secret[:12] + "…" in shown  # the prefix in the tokens table, to recognise it by
    # The next view of the very same page no longer has it.
    assert secret not in operator.page("/projects/realtyos")
    seeded_rest(operator)
    assert_on_no_page(operator, secret)
    assert check(client, secret) == 200


def test_a_new_token_never_travels_in_the_cookie_nor_rests_in_the_database(
    operator: Operator, session: Session
) -> None:
    """The cookie is signed, not encrypted: anyone holding it reads it. The token waits for its
    page in a row of its own, sealed with a pad only the cookie holds, and is gone once shown."""
    response = operator.post("/projects", {"key": "realtyos", "name": "RealtyOS"})
    cookie = (
        response.cookies.get("billplane_session") or operator.client.cookies["billplane_session"]
    )
    waiting = session.scalars(select(OneTimeSecret)).all()
    assert len(waiting) == 1

    secret = one_time_secret(operator.follow(response))

    assert secret not in _readable(cookie)
    assert secret not in waiting[0].sealed
    assert secret not in _readable(waiting[0].sealed)
    assert session.scalars(select(OneTimeSecret)).all() == []


def _readable(signed: str) -> str:
    """What a signed value says once its base64 is undone (the cookie: JSON, then a signature)."""
    payload = signed.split(".")[0]
    return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode("latin-1")


def test_a_token_waiting_for_its_page_is_lost_with_the_session(
    operator: Operator, session: Session
) -> None:
    operator.post("/projects", {"key": "realtyos", "name": "RealtyOS"})
    operator.post("/logout", {})
    assert session.scalars(select(OneTimeSecret)).all() == []


# What the Rotate and Revoke forms send once the operator confirmed (in the dialog or on the page).
CONFIRMED = {"confirm": "yes"}


def token_id(page: str, name: str) -> str:
    before = page.split(f'<td>{name}<br><code class="muted">', 1)[1]
    return before.split("<", 1)[0]


def test_rotating_a_token_shows_the_new_secret_once_and_kills_the_old(
    operator: Operator, client: TestClient
) -> None:
    old = seeded(operator)
    tok = token_id(operator.page("/projects/realtyos"), "default")
    rotated = operator.post(f"/projects/realtyos/tokens/{tok}/rotate", CONFIRMED)
    new = one_time_secret(operator.follow(rotated))
    assert new != old
    assert check(client, old) == 401
    assert check(client, new) == 200
    assert_on_no_page(operator, new)


def test_revoking_a_token_stops_it_at_once(operator: Operator, client: TestClient) -> None:
    secret = seeded(operator)
    tok = token_id(operator.page("/projects/realtyos"), "default")
    revoked = operator.post(f"/projects/realtyos/tokens/{tok}/revoke", CONFIRMED)
    page = operator.follow(revoked)
    assert "revoked" in page
    assert "now get 401" in page
    assert check(client, secret) == 401
    # A revoked token offers no rotate or revoke button any more.
    assert f"/tokens/{tok}/rotate" not in page


def confirm_form(page: str) -> tuple[str, dict[str, str]]:
    """The form of the confirmation page: where it posts and its fields."""
    form = page.split('data-testid="confirm"', 1)[1].split("</form>", 1)[0]
    action = re.search(r'<form method="post" action="([^"]+)"', form)
    assert action, form
    fields = dict(re.findall(r'<input type="hidden" name="([a-z]+)" value="([^"]*)"', form))
    return action.group(1), fields


@pytest.mark.parametrize("what", ["rotate", "revoke"])
def test_rotate_and_revoke_ask_first_and_one_click_changes_nothing(
    operator: Operator, client: TestClient, session: Session, what: str
) -> None:
    secret = seeded(operator)
    tok = token_id(operator.page("/projects/realtyos"), "default")
    # As a browser without script sends the button's form: no confirm=yes.
    asked = operator.post(f"/projects/realtyos/tokens/{tok}/{what}", {}, expect=200)
    page = asked.text
    assert f"{what.capitalize()} token “default” ({secret[:12]}…)?" in page
    assert "stop working at once (401)" in page
    assert 'href="/projects/realtyos#tokens">Cancel</a>' in page
    assert secret not in page
    assert check(client, secret) == 200  # nothing happened yet
    audited = set(session.scalars(select(AuditEntry.action)).all())
    assert f"token.{what}" not in audited

    action, fields = confirm_form(page)
    assert action == f"/projects/realtyos/tokens/{tok}/{what}"
    assert fields["confirm"] == "yes"
    operator.post(action, {"confirm": fields["confirm"]})
    assert check(client, secret) == 401
    assert f"token.{what}" in set(session.scalars(select(AuditEntry.action)).all())


def test_the_buttons_forms_carry_the_question_the_browser_asks(operator: Operator) -> None:
    secret = seeded(operator)
    page = operator.page("/projects/realtyos")
    tok = token_id(page, "default")
    for what, consequence in [("rotate", "until they are given"), ("revoke", "for good")]:
        form = page.split(f'action="/projects/realtyos/tokens/{tok}/{what}"', 1)[1]
        form = form.split("</form>", 1)[0]
        question = re.search(r'data-confirm="([^"]+)"', form)
        assert question, form
        words = html.unescape(question.group(1))
        assert words.startswith(f"{what.capitalize()} token “default” ({secret[:12]}…)? ")
        assert "stop working at once" in words
        assert consequence in words
        # Unconfirmed until the script says so: the server asks otherwise.
        assert '<input type="hidden" name="confirm" value="">' in form
    assert '<script src="/static/confirm.js' in page


def test_a_tenant_token_acts_for_its_tenant_only(operator: Operator, client: TestClient) -> None:
    seeded(operator)
    operator.post("/projects/realtyos/tenants", {"key": "globex"})
    issued = operator.post("/projects/realtyos/tokens", {"name": "acme app", "tenant": "acme"})
    page = operator.follow(issued)
    secret = one_time_secret(page)
    assert "Token “acme app” for tenant acme" in page
    assert check(client, secret, "acme") == 200
    assert check(client, secret, "globex") == 403


def test_a_token_of_another_project_is_not_found_here(operator: Operator, seed: Seed) -> None:
    seeded(operator)
    other = seed.project("reeltours").token.token.public_id
    response = operator.post(f"/projects/realtyos/tokens/{other}/rotate", {}, expect=404)
    assert "No token" in response.text


def test_dashboard_changes_are_audited_as_the_dashboard(
    operator: Operator, session: Session
) -> None:
    seeded(operator)
    actors = session.scalars(select(AuditEntry.actor).distinct()).all()
    actions = set(session.scalars(select(AuditEntry.action)).all())
    assert list(actors) == ["dashboard"]
    assert {
        "project.create",
        "token.create",
        "feature.create",
        "plan.create",
        "tenant.create",
    } <= actions


def test_projects_made_in_the_dashboard_are_the_admin_apis(
    operator: Operator, admin: Admin
) -> None:
    seeded(operator)
    project = admin.call("GET", "/admin/api/projects/realtyos")
    assert project["origins"] == ["https://app.realtyos.test"]
    plan = admin.call("GET", "/admin/api/projects/realtyos/plans/free")
    assert plan["is_default"] is True
    assert plan["features"] == {"exports": True}


def prefixes_on_projects_page(operator: Operator) -> str:
    page = operator.page("/projects")
    return page.split('data-testid="token-prefixes">', 1)[1].split("</td>", 1)[0]


def test_the_projects_table_shows_each_projects_live_token_prefixes(operator: Operator) -> None:
    secret = seeded(operator)
    shown = prefixes_on_projects_page(operator)
    assert f"<code>{secret[:12]}…</code>" in shown
    assert secret not in shown  # the prefix only, never the token
    tok = token_id(operator.page("/projects/realtyos"), "default")
    operator.post(f"/projects/realtyos/tokens/{tok}/revoke", CONFIRMED)
    assert "none live" in prefixes_on_projects_page(operator)
