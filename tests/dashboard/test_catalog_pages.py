"""Plans and tenants pages: what each plan's price is in Stripe, what it grants, and each
tenant's plan, subscription and usage against its limits; edits go through the same services."""

import re
from datetime import timedelta

from sqlalchemy.orm import Session

from conftest import Admin, Clock, Setup
from dashboard.conftest import Operator, field_error, stripe_price
from factories import Seed, subscribe
from stripe_double import StripeDouble


def row(page: str, attribute: str, key: str) -> str:
    found = re.search(rf'<tr {attribute}="{re.escape(key)}">(.*?)</tr>', page, re.S)
    assert found, f"no row {key}"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip()


def test_plans_table_shows_price_grants_and_status(operator: Operator, realtyos: Setup) -> None:
    page = operator.page("/projects/realtyos/plans")
    free = row(page, "data-plan", "free")
    assert "free — no price" in free
    assert "default" in free
    assert "active" in free
    assert "listings.publish 3 / month" in free
    assert "ai.tokens on" in free
    pro = row(page, "data-plan", "pro")
    # Stripe is not configured here: billplane cannot know, and says so.
    assert "price_pro" in pro
    assert "unknown" in pro


def test_plans_table_shows_what_stripe_says_of_each_price(
    stripe_operator: Operator, stripe_seed: Seed, double: StripeDouble
) -> None:
    stripe_seed.project("realtyos")
    stripe_seed.plan("realtyos", "pro", stripe_price_id=stripe_price(double, 2900))
    stripe_seed.plan("realtyos", "ghost", stripe_price_id="price_missing")
    page = stripe_operator.page("/projects/realtyos/plans")
    assert "active — 29.00 USD / month" in row(page, "data-plan", "pro")
    assert "not found in Stripe" in row(page, "data-plan", "ghost")


def test_editing_a_plan_changes_it_for_the_api_too(operator: Operator, realtyos: Setup) -> None:
    page = operator.page("/projects/realtyos/plans/pro")
    assert 'value="price_pro"' in page
    assert 'value="100"' in page
    operator.post(
        "/projects/realtyos/plans/pro",
        {
            "name": "Pro plus",
            "stripe_price_id": "price_pro",
            "trial_days": "14",
            "status": "active",
            "grant.exports": "on",
            "grant.listings.publish": "on",
            "limit.listings.publish": "250",
            "reset.listings.publish": "billing_period",
        },
    )
    plan = realtyos.admin.call("GET", "/admin/api/projects/realtyos/plans/pro")
    assert plan["name"] == "Pro plus"
    assert plan["trial_days"] == 14
    assert plan["features"] == {
        "exports": True,
        "listings.publish": {"limit": 250, "reset": "billing_period"},
    }


def test_tenants_table_shows_plan_subscription_and_usage(
    operator: Operator, realtyos: Setup, session: Session, clock: Clock
) -> None:
    for n in range(2):
        response = realtyos.api.post(
            "/v1/usage",
            {"tenant": "acme", "feature": "listings.publish", "idempotency_key": f"l-{n}"},
        )
        assert response.status_code == 201
    realtyos.seed.tenant("realtyos", "globex")
    subscribe(
        session,
        project="realtyos",
        tenant="globex",
        status="trialing",
        price="price_pro",
        period_start=clock.now - timedelta(days=10),
        period_end=clock.now + timedelta(days=20),
    )
    page = operator.page("/projects/realtyos/tenants")
    acme = row(page, "data-tenant", "acme")
    assert "free" in acme
    assert "none" in acme
    assert "listings.publish 2/3 2 / 3" in acme
    globex = row(page, "data-tenant", "globex")
    assert "pro" in globex
    assert "trialing" in globex
    assert "0 / 100" in globex


def test_tenant_page_and_overrides(operator: Operator, realtyos: Setup) -> None:
    realtyos.api.post(
        "/v1/usage", {"tenant": "acme", "feature": "listings.publish", "idempotency_key": "k1"}
    )
    page = operator.page("/projects/realtyos/tenants/acme")
    assert "Usage against limits" in page
    assert "1 / 3" in page
    assert "k1" in page
    operator.post(
        "/projects/realtyos/tenants/acme",
        {
            "name": "Acme Realty Inc",
            "override.listings.publish": "limit",
            "limit.listings.publish": "50",
            "reset.listings.publish": "month",
            "override.exports": "on",
        },
    )
    detail = realtyos.admin.call("GET", "/admin/api/projects/realtyos/tenants/acme")
    assert detail["name"] == "Acme Realty Inc"
    assert detail["overrides"] == {
        "exports": True,
        "listings.publish": {"limit": 50, "reset": "month"},
    }
    page = operator.page("/projects/realtyos/tenants/acme")
    assert "1 / 50" in page
    assert "override" in page


def test_tenant_page_shows_its_refusals(operator: Operator, realtyos: Setup) -> None:
    page = operator.page("/projects/realtyos/tenants/acme")
    assert "No refused check or usage call in the last 30 days." in page
    body = {"tenant": "acme", "feature": "listings.publish", "quantity": 7}
    assert realtyos.api.post("/v1/check", body).json()["reason"] == "limit_reached"
    page = operator.page("/projects/realtyos/tenants/acme")
    refusals = page.split('id="refusals-title"')[1]
    assert "limit_reached" in refusals
    assert "0 / 3" in refusals


def test_plans_and_tenants_links_go_to_the_current_project(
    operator: Operator, realtyos: Setup
) -> None:
    realtyos.seed.project("reeltours")
    operator.page("/projects/reeltours")
    assert operator.client.get("/plans", follow_redirects=False).headers["location"] == (
        "/projects/reeltours/plans"
    )
    operator.page("/projects/realtyos/tenants")
    assert operator.client.get("/tenants", follow_redirects=False).headers["location"] == (
        "/projects/realtyos/tenants"
    )


def test_plans_link_without_any_project_goes_to_projects(operator: Operator) -> None:
    assert operator.client.get("/plans", follow_redirects=False).headers["location"] == "/projects"


def test_a_plan_made_in_the_dashboard_stores_stripes_word_like_the_api(
    stripe_operator: Operator, stripe_seed: Seed, double: StripeDouble
) -> None:
    admin = Admin(stripe_operator.client)
    stripe_seed.project("realtyos")
    price = stripe_price(double, 2900)
    stripe_operator.post(
        "/projects/realtyos/plans", {"key": "pro", "name": "Pro", "stripe_price_id": price}
    )
    made_here = admin.call("GET", "/admin/api/projects/realtyos/plans/pro")["stripe"]
    assert made_here["found"] is True
    assert made_here["usable"] is True
    assert made_here["amount"] == 2900
    assert made_here["interval"] == "month"
    stripe_operator.post(
        "/projects/realtyos/plans/pro",
        {"name": "Pro", "stripe_price_id": "price_gone", "status": "active"},
    )
    edited = admin.call("GET", "/admin/api/projects/realtyos/plans/pro")["stripe"]
    assert edited["found"] is False


def pro_with_publish_unticked(limit: str) -> dict[str, str]:
    """The pro plan's edit form with `listings.publish` unticked but a limit in its box."""
    return {
        "name": "Pro",
        "stripe_price_id": "price_pro",
        "trial_days": "0",
        "status": "active",
        "grant.exports": "on",
        "limit.listings.publish": limit,
        "reset.listings.publish": "month",
    }


def test_a_limit_typed_for_an_unticked_feature_is_a_field_error(
    operator: Operator, realtyos: Setup
) -> None:
    before = realtyos.admin.call("GET", "/admin/api/projects/realtyos/plans/pro")
    # Not the limit the form showed (100): typed by the operator.
    form = pro_with_publish_unticked("40")
    page = operator.post("/projects/realtyos/plans/pro", form, expect=422).text
    error = field_error(page, "plan-limit-listings.publish")
    assert error is not None
    assert "tick it to grant it, or clear the limit" in error
    assert realtyos.admin.call("GET", "/admin/api/projects/realtyos/plans/pro") == before


def test_unticking_a_granted_limit_feature_removes_it(operator: Operator, realtyos: Setup) -> None:
    shown = operator.page("/projects/realtyos/plans/pro")
    assert 'value="100"' in shown  # the edit form shows the current limit
    operator.post("/projects/realtyos/plans/pro", pro_with_publish_unticked("100"))
    plan = realtyos.admin.call("GET", "/admin/api/projects/realtyos/plans/pro")
    assert plan["features"] == {"exports": True}


def test_plan_edit_preview_shows_who_is_affected_and_saves_nothing(
    operator: Operator, realtyos: Setup
) -> None:
    body = {"tenant": "acme", "feature": "listings.publish", "quantity": 2}
    realtyos.api.post("/v1/usage", {**body, "idempotency_key": "p-1"})
    form = {
        "name": "Free",
        "is_default": "on",
        "status": "active",
        "grant.listings.publish": "on",
        "limit.listings.publish": "1",
        "reset.listings.publish": "month",
        "grant.ai.tokens": "on",
        "preview": "1",
    }
    page = operator.post("/projects/realtyos/plans/free", form, expect=200).text
    shown = page.split('id="preview-title"')[1]
    assert "1 of 1 tenants would be affected" in shown
    assert "listings.publish 3 → 1" in shown
    assert "listings.publish: 2 used of 1" in shown
    plan = realtyos.admin.call("GET", "/admin/api/projects/realtyos/plans/free")
    assert plan["features"]["listings.publish"] == {"limit": 3, "reset": "month"}
