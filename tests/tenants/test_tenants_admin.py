"""The admin API for tenants: create, list, detail, overrides."""

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from billplane.models import Subscription
from billplane.projects import repository as projects
from billplane.tenants import repository as tenants
from conftest import Admin, Clock, Setup

TENANTS = "/admin/api/projects/realtyos/tenants"


def _error(admin: Admin, method: str, path: str, status: int, **kwargs: Any) -> dict[str, Any]:
    response = admin.client.request(method, path, headers=admin.headers, **kwargs)
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def test_tenant_is_created_with_name_and_email(realtyos: Setup) -> None:
    created = realtyos.admin.tenant(
        "realtyos", "globex", name="Globex", email="billing@globex.test"
    )

    assert created["key"] == "globex"
    assert created["name"] == "Globex"
    assert created["email"] == "billing@globex.test"
    assert created["stripe_customer_id"] is None
    assert created["overrides"] == {}


def test_tenant_key_may_be_an_apps_own_id(realtyos: Setup) -> None:
    created = realtyos.admin.tenant("realtyos", "org_8f3a:eu-1@app.v2")

    assert created["key"] == "org_8f3a:eu-1@app.v2"
    fetched = realtyos.admin.call("GET", f"{TENANTS}/org_8f3a:eu-1@app.v2")
    assert fetched["key"] == "org_8f3a:eu-1@app.v2"


def test_duplicate_tenant_key_is_409(realtyos: Setup) -> None:
    error = _error(realtyos.admin, "POST", TENANTS, 409, json={"key": "acme", "name": "Other"})

    assert error["code"] == "already_exists"
    assert realtyos.admin.call("GET", f"{TENANTS}/acme")["name"] == "Acme Realty"


def test_tenant_with_a_malformed_email_is_422(realtyos: Setup) -> None:
    error = _error(
        realtyos.admin, "POST", TENANTS, 422, json={"key": "globex", "email": "not-an-email"}
    )

    assert error["param"] == "email"


def test_tenant_key_with_a_slash_is_422(realtyos: Setup) -> None:
    error = _error(realtyos.admin, "POST", TENANTS, 422, json={"key": "a/b"})

    assert error["param"] == "key"


def test_tenant_in_unknown_project_is_404(admin: Admin) -> None:
    error = _error(admin, "POST", "/admin/api/projects/nowhere/tenants", 404, json={"key": "acme"})

    assert error["code"] == "project_not_found"


def test_tenants_are_listed_per_project(realtyos: Setup) -> None:
    realtyos.admin.project("reeltours")
    realtyos.admin.tenant("reeltours", "initech")
    realtyos.admin.tenant("realtyos", "globex")

    listed = realtyos.admin.call("GET", TENANTS)

    assert [t["key"] for t in listed["data"]] == ["acme", "globex"]
    assert listed["has_more"] is False


def test_tenant_list_pages_with_limit_and_starting_after(realtyos: Setup) -> None:
    for key in ("b", "c"):
        realtyos.admin.tenant("realtyos", key)

    first = realtyos.admin.call("GET", TENANTS, params={"limit": 2})
    second = realtyos.admin.call("GET", TENANTS, params={"limit": 2, "starting_after": "b"})

    assert [t["key"] for t in first["data"]] == ["acme", "b"]
    assert first["has_more"] is True
    assert [t["key"] for t in second["data"]] == ["c"]
    assert second["has_more"] is False


def test_unknown_tenant_detail_is_404(realtyos: Setup) -> None:
    error = _error(realtyos.admin, "GET", f"{TENANTS}/nobody", 404)

    assert error["code"] == "tenant_not_found"


def test_tenant_detail_without_subscription_shows_the_default_plan(realtyos: Setup) -> None:
    detail = realtyos.admin.call("GET", f"{TENANTS}/acme")

    assert detail["key"] == "acme"
    assert detail["email"] == "ops@acme.test"
    assert detail["plan"] == "free"
    assert detail["subscription"] is None
    assert detail["recent_usage"] == []
    by_feature = {e["feature"]: e for e in detail["entitlements"]}
    assert set(by_feature) == {"exports", "listings.publish", "ai.tokens"}
    assert by_feature["exports"]["allowed"] is False
    assert by_feature["listings.publish"]["limit"] == 3


def test_tenant_detail_shows_recent_usage_newest_first(realtyos: Setup) -> None:
    for n, quantity in enumerate([1, 2]):
        realtyos.api.post(
            "/v1/usage",
            {
                "tenant": "acme",
                "feature": "listings.publish",
                "quantity": quantity,
                "idempotency_key": f"k{n}",
            },
        )

    detail = realtyos.admin.call("GET", f"{TENANTS}/acme")

    assert [
        (u["feature"], u["quantity"], u["idempotency_key"]) for u in detail["recent_usage"]
    ] == [
        ("listings.publish", 2, "k1"),
        ("listings.publish", 1, "k0"),
    ]
    (publish,) = [e for e in detail["entitlements"] if e["feature"] == "listings.publish"]
    assert publish["used"] == 3
    assert publish["remaining"] == 0


def test_tenant_detail_shows_its_subscription_and_paid_plan(
    realtyos: Setup, session: Session, clock: Clock
) -> None:
    project = projects.get_project(session, "realtyos")
    assert project is not None
    tenant = tenants.get_tenant(session, project.id, "acme")
    assert tenant is not None
    tenants.add(
        session,
        Subscription(
            tenant_id=tenant.id,
            stripe_subscription_id="sub_123",
            stripe_customer_id="cus_123",
            status="active",
            stripe_price_id="price_pro",
            current_period_start=clock.now - timedelta(days=3),
            current_period_end=clock.now + timedelta(days=27),
            cancel_at_period_end=True,
            created_at=clock.now,
            updated_at=clock.now,
        ),
    )

    detail = realtyos.admin.call("GET", f"{TENANTS}/acme")

    assert detail["plan"] == "pro"
    assert detail["subscription"]["stripe_subscription_id"] == "sub_123"
    assert detail["subscription"]["status"] == "active"
    assert detail["subscription"]["stripe_price_id"] == "price_pro"
    assert detail["subscription"]["cancel_at_period_end"] is True
    assert detail["subscription"]["current_period_end"].startswith("2026-12-18")
    (exports,) = [e for e in detail["entitlements"] if e["feature"] == "exports"]
    assert exports["allowed"] is True


def test_patch_sets_overrides_that_replace_the_plan_grant(realtyos: Setup) -> None:
    updated = realtyos.admin.call(
        "PATCH",
        f"{TENANTS}/acme",
        json={"overrides": {"listings.publish": {"limit": 500, "reset": "month"}}},
    )

    assert updated["overrides"] == {"listings.publish": {"limit": 500, "reset": "month"}}
    check = realtyos.api.post("/v1/check", {"tenant": "acme", "feature": "listings.publish"}).json()
    assert check["limit"] == 500
    assert realtyos.admin.call("GET", f"{TENANTS}/acme")["overrides"] == updated["overrides"]


def test_override_can_switch_a_feature_on_for_one_tenant(realtyos: Setup) -> None:
    realtyos.admin.tenant("realtyos", "globex")

    realtyos.admin.call("PATCH", f"{TENANTS}/acme", json={"overrides": {"exports": True}})

    acme = realtyos.api.post("/v1/check", {"tenant": "acme", "feature": "exports"}).json()
    globex = realtyos.api.post("/v1/check", {"tenant": "globex", "feature": "exports"}).json()
    assert acme["allowed"] is True
    assert globex["allowed"] is False


def test_patch_with_empty_overrides_removes_them(realtyos: Setup) -> None:
    realtyos.admin.call("PATCH", f"{TENANTS}/acme", json={"overrides": {"exports": True}})

    updated = realtyos.admin.call("PATCH", f"{TENANTS}/acme", json={"overrides": {}})

    assert updated["overrides"] == {}
    check = realtyos.api.post("/v1/check", {"tenant": "acme", "feature": "exports"}).json()
    assert check["allowed"] is False


def test_patch_name_and_email_keeps_overrides(realtyos: Setup) -> None:
    realtyos.admin.call("PATCH", f"{TENANTS}/acme", json={"overrides": {"exports": True}})

    updated = realtyos.admin.call(
        "PATCH", f"{TENANTS}/acme", json={"name": "Acme Inc", "email": "ap@acme.test"}
    )

    assert updated["name"] == "Acme Inc"
    assert updated["email"] == "ap@acme.test"
    assert updated["overrides"] == {"exports": True}


def test_override_for_an_unknown_feature_is_404_and_changes_nothing(realtyos: Setup) -> None:
    error = _error(
        realtyos.admin,
        "PATCH",
        f"{TENANTS}/acme",
        404,
        json={"name": "Renamed", "overrides": {"sso": True}},
    )

    assert error["code"] == "feature_not_found"
    tenant = realtyos.admin.call("GET", f"{TENANTS}/acme")
    assert tenant["name"] == "Acme Realty"
    assert tenant["overrides"] == {}


def test_patch_of_unknown_tenant_is_404(realtyos: Setup) -> None:
    error = _error(realtyos.admin, "PATCH", f"{TENANTS}/nobody", 404, json={"name": "x"})

    assert error["code"] == "tenant_not_found"
