"""Every form error is shown beside its field, found by the admin API's own schemas and services;
the form keeps what was typed, answers 422, and nothing is half-written."""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billplane.models import Plan, Project, Tenant
from conftest import Admin, Setup
from dashboard.conftest import Operator, errors_on, field_error
from factories import Seed


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_project_form_errors_sit_beside_each_field(operator: Operator, session: Session) -> None:
    response = operator.post(
        "/projects",
        {"key": "bad key", "name": "", "origins": "https://ok.test\nnot a url"},
        expect=422,
    )
    page = response.text
    assert "letters, digits" in (field_error(page, "project-key") or "").lower()
    assert field_error(page, "project-name") == "Required."
    assert (field_error(page, "project-origins") or "").startswith("Line 2: Not an http(s) URL")
    assert 'value="bad key"' in page  # what was typed stays
    assert count(session, Project) == 0


def test_the_same_input_is_refused_by_the_admin_api_for_the_same_field(admin: Admin) -> None:
    refused = admin.call(
        "POST", "/admin/api/projects", 422, json={"key": "bad key", "name": "X", "origins": []}
    )
    assert refused["error"]["param"] == "key"


def test_a_taken_project_key_is_said_beside_the_key(operator: Operator, seed: Seed) -> None:
    seed.project("realtyos")
    page = operator.post("/projects", {"key": "realtyos", "name": "Again"}, expect=422).text
    assert "already exists" in (field_error(page, "project-key") or "")
    assert field_error(page, "project-name") is None


def test_feature_form_errors(operator: Operator, realtyos: Setup) -> None:
    page = operator.post(
        "/projects/realtyos/features",
        {"key": "exports", "name": "Exports", "type": "weird"},
        expect=422,
    ).text
    assert field_error(page, "feature-type") == "Input should be 'boolean', 'limit' or 'metered'."
    page = operator.post(
        "/projects/realtyos/features",
        {"key": "exports", "name": "Exports", "type": "boolean"},
        expect=422,
    ).text
    assert "already has a feature" in (field_error(page, "feature-key") or "")
    # The other form on the page (issue a token) shows no error for its own `name` field.
    assert field_error(page, "token-name") is None


def test_plan_form_errors_beside_price_trial_and_limit(
    operator: Operator, realtyos: Setup, session: Session
) -> None:
    before = count(session, Plan)
    page = operator.post(
        "/projects/realtyos/plans",
        {
            "key": "gold",
            "name": "Gold",
            "trial_days": "-1",
            "grant.listings.publish": "on",
            "limit.listings.publish": "lots",
        },
        expect=422,
    ).text
    assert field_error(page, "plan-trial_days") == "Must be 0 or more."
    assert (
        field_error(page, "plan-limit-listings.publish") == "Enter a whole number."
    )  # listings.publish
    page = operator.post(
        "/projects/realtyos/plans", {"key": "gold", "name": "Gold"}, expect=422
    ).text
    assert "must be the free default plan" in (field_error(page, "plan-stripe_price_id") or "")
    assert count(session, Plan) == before


def test_plan_edit_errors_beside_the_status(operator: Operator, realtyos: Setup) -> None:
    page = operator.post(
        "/projects/realtyos/plans/free",
        {"name": "Free", "is_default": "on", "status": "archived", "grant.exports": "on"},
        expect=422,
    ).text
    assert "default plan must be active" in (field_error(page, "plan-status") or "")
    plan = realtyos.admin.call("GET", "/admin/api/projects/realtyos/plans/free")
    assert plan["status"] == "active"


def test_tenant_form_errors(operator: Operator, realtyos: Setup, session: Session) -> None:
    before = count(session, Tenant)
    page = operator.post(
        "/projects/realtyos/tenants", {"key": "acme 2", "email": "not-an-email"}, expect=422
    ).text
    assert field_error(page, "tenant-email") == "Not an email address."
    assert field_error(page, "tenant-key")
    assert count(session, Tenant) == before


def test_tenant_override_needs_a_number_for_a_limit(operator: Operator, realtyos: Setup) -> None:
    page = operator.post(
        "/projects/realtyos/tenants/acme",
        {"override.listings.publish": "limit", "limit.listings.publish": ""},
        expect=422,
    ).text
    assert field_error(page, "ov-limit-listings.publish") == "Enter a whole number."
    assert errors_on(page) == ["Enter a whole number."]
