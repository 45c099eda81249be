"""The admin API for plans: grants, updates, one default per project, one plan per price."""

from typing import Any

from fastapi.testclient import TestClient

from conftest import Admin, Setup

PLANS = "/admin/api/projects/realtyos/plans"


def _error(admin: Admin, method: str, path: str, status: int, **kwargs: Any) -> dict[str, Any]:
    response = admin.client.request(method, path, headers=admin.headers, **kwargs)
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def _defaults(admin: Admin) -> list[str]:
    return [p["key"] for p in admin.call("GET", PLANS)["data"] if p["is_default"]]


def test_plan_is_created_with_its_grants(realtyos: Setup) -> None:
    created = realtyos.admin.plan(
        "realtyos",
        "team",
        stripe_price_id="price_team",
        trial_days=14,
        features={"exports": True, "listings.publish": {"limit": 500, "reset": "billing_period"}},
    )

    assert created["key"] == "team"
    assert created["name"] == "Team"
    assert created["stripe_price_id"] == "price_team"
    assert created["trial_days"] == 14
    assert created["status"] == "active"
    assert created["is_default"] is False
    assert created["features"] == {
        "exports": True,
        "listings.publish": {"limit": 500, "reset": "billing_period"},
    }


def test_limit_grant_without_reset_resets_monthly(realtyos: Setup) -> None:
    created = realtyos.admin.plan(
        "realtyos",
        "team",
        stripe_price_id="price_team",
        features={"listings.publish": {"limit": 7}},
    )

    assert created["features"] == {"listings.publish": {"limit": 7, "reset": "month"}}


def test_plans_are_listed_and_fetched(realtyos: Setup) -> None:
    listed = realtyos.admin.call("GET", PLANS)
    pro = realtyos.admin.call("GET", f"{PLANS}/pro")

    assert [p["key"] for p in listed["data"]] == ["free", "pro"]
    assert listed["has_more"] is False
    assert pro["stripe_price_id"] == "price_pro"
    assert pro["features"]["listings.publish"] == {"limit": 100, "reset": "month"}


def test_plan_list_pages_with_limit_and_starting_after(realtyos: Setup) -> None:
    realtyos.admin.plan("realtyos", "team", stripe_price_id="price_team")

    first = realtyos.admin.call("GET", PLANS, params={"limit": 2})
    second = realtyos.admin.call("GET", PLANS, params={"limit": 2, "starting_after": "pro"})

    assert [p["key"] for p in first["data"]] == ["free", "pro"]
    assert first["has_more"] is True
    assert [p["key"] for p in second["data"]] == ["team"]
    assert second["has_more"] is False


def test_unknown_plan_is_404(realtyos: Setup) -> None:
    error = _error(realtyos.admin, "GET", f"{PLANS}/enterprise", 404)

    assert error["code"] == "plan_not_found"


def test_duplicate_plan_key_is_409(realtyos: Setup) -> None:
    error = _error(
        realtyos.admin,
        "POST",
        PLANS,
        409,
        json={"key": "pro", "name": "Pro 2", "stripe_price_id": "price_x"},
    )

    assert error["code"] == "already_exists"


def test_paid_plan_without_a_price_is_refused(realtyos: Setup) -> None:
    error = _error(realtyos.admin, "POST", PLANS, 400, json={"key": "team", "name": "Team"})

    assert error["param"] == "stripe_price_id"


def test_grant_for_an_unknown_feature_is_404_and_creates_no_plan(realtyos: Setup) -> None:
    error = _error(
        realtyos.admin,
        "POST",
        PLANS,
        404,
        json={
            "key": "team",
            "name": "Team",
            "stripe_price_id": "price_team",
            "features": {"sso": True},
        },
    )

    assert error["code"] == "feature_not_found"
    assert "team" not in [p["key"] for p in realtyos.admin.call("GET", PLANS)["data"]]


def test_limit_grant_on_a_boolean_feature_is_refused(realtyos: Setup) -> None:
    error = _error(
        realtyos.admin,
        "POST",
        PLANS,
        400,
        json={
            "key": "team",
            "name": "Team",
            "stripe_price_id": "price_team",
            "features": {"exports": {"limit": 5}},
        },
    )

    assert error["param"] == "features.exports"


def test_limit_grant_with_unknown_reset_is_422(realtyos: Setup) -> None:
    _error(
        realtyos.admin,
        "POST",
        PLANS,
        422,
        json={
            "key": "team",
            "name": "Team",
            "stripe_price_id": "price_team",
            "features": {"listings.publish": {"limit": 5, "reset": "week"}},
        },
    )


def test_negative_limit_is_422(realtyos: Setup) -> None:
    _error(
        realtyos.admin,
        "POST",
        PLANS,
        422,
        json={
            "key": "team",
            "name": "Team",
            "stripe_price_id": "price_team",
            "features": {"listings.publish": {"limit": -1}},
        },
    )


def test_price_already_used_by_another_plan_is_409_on_create(realtyos: Setup) -> None:
    error = _error(
        realtyos.admin,
        "POST",
        PLANS,
        409,
        json={"key": "team", "name": "Team", "stripe_price_id": "price_pro"},
    )

    assert error["code"] == "already_exists"
    assert error["param"] == "stripe_price_id"


def test_price_already_used_by_another_plan_is_409_on_update(realtyos: Setup) -> None:
    realtyos.admin.plan("realtyos", "team", stripe_price_id="price_team")

    error = _error(
        realtyos.admin, "PATCH", f"{PLANS}/team", 409, json={"stripe_price_id": "price_pro"}
    )

    assert error["code"] == "already_exists"
    assert realtyos.admin.call("GET", f"{PLANS}/team")["stripe_price_id"] == "price_team"


def test_same_price_in_two_projects_is_allowed(realtyos: Setup) -> None:
    realtyos.admin.project("reeltours")

    created = realtyos.admin.plan("reeltours", "pro", stripe_price_id="price_pro")

    assert created["stripe_price_id"] == "price_pro"


def test_patch_renames_a_plan(realtyos: Setup) -> None:
    updated = realtyos.admin.call("PATCH", f"{PLANS}/pro", json={"name": "Professional"})

    assert updated["name"] == "Professional"
    assert updated["stripe_price_id"] == "price_pro"
    assert realtyos.admin.call("GET", f"{PLANS}/pro")["name"] == "Professional"


def test_patch_changes_the_price(realtyos: Setup) -> None:
    updated = realtyos.admin.call(
        "PATCH", f"{PLANS}/pro", json={"stripe_price_id": "price_pro_2026"}
    )

    assert updated["stripe_price_id"] == "price_pro_2026"


def test_patch_features_replaces_the_grants_and_changes_checks(realtyos: Setup) -> None:
    realtyos.admin.call(
        "PATCH",
        f"{PLANS}/free",
        json={"features": {"exports": True, "listings.publish": {"limit": 10}}},
    )

    plan = realtyos.admin.call("GET", f"{PLANS}/free")
    assert plan["features"] == {
        "exports": True,
        "listings.publish": {"limit": 10, "reset": "month"},
    }
    check = realtyos.api.post("/v1/check", {"tenant": "acme", "feature": "listings.publish"}).json()
    assert check["limit"] == 10
    ai = realtyos.api.post("/v1/check", {"tenant": "acme", "feature": "ai.tokens"}).json()
    assert ai["allowed"] is False
    assert ai["reason"] == "not_in_plan"


def test_patch_archives_a_plan(realtyos: Setup) -> None:
    updated = realtyos.admin.call("PATCH", f"{PLANS}/pro", json={"status": "archived"})

    assert updated["status"] == "archived"
    assert realtyos.admin.call("GET", f"{PLANS}/pro")["status"] == "archived"


def test_patch_with_unknown_status_is_422(realtyos: Setup) -> None:
    error = _error(realtyos.admin, "PATCH", f"{PLANS}/pro", 422, json={"status": "deleted"})

    assert error["param"] == "status"


def test_patch_of_unknown_plan_is_404(realtyos: Setup) -> None:
    error = _error(realtyos.admin, "PATCH", f"{PLANS}/enterprise", 404, json={"name": "x"})

    assert error["code"] == "plan_not_found"


def test_making_a_plan_default_undefaults_the_previous_one(realtyos: Setup) -> None:
    updated = realtyos.admin.call("PATCH", f"{PLANS}/pro", json={"is_default": True})

    assert updated["is_default"] is True
    assert _defaults(realtyos.admin) == ["pro"]
    check = realtyos.api.post("/v1/check", {"tenant": "acme", "feature": "exports"}).json()
    assert check["plan"] == "pro"


def test_creating_a_default_plan_undefaults_the_previous_one(realtyos: Setup) -> None:
    realtyos.admin.plan("realtyos", "starter", is_default=True)

    assert _defaults(realtyos.admin) == ["starter"]


def test_default_plan_of_one_project_leaves_another_projects_default(realtyos: Setup) -> None:
    realtyos.admin.project("reeltours")
    realtyos.admin.plan("reeltours", "free", is_default=True)

    assert _defaults(realtyos.admin) == ["free"]
    reeltours = realtyos.admin.call("GET", "/admin/api/projects/reeltours/plans")["data"]
    assert [p["is_default"] for p in reeltours] == [True]


def test_archiving_the_default_plan_is_refused(realtyos: Setup) -> None:
    error = _error(realtyos.admin, "PATCH", f"{PLANS}/free", 400, json={"status": "archived"})

    assert error["param"] == "status"
    free = realtyos.admin.call("GET", f"{PLANS}/free")
    assert free["status"] == "active"
    assert free["is_default"] is True


def test_making_an_archived_plan_the_default_is_refused(realtyos: Setup) -> None:
    realtyos.admin.call("PATCH", f"{PLANS}/pro", json={"status": "archived"})

    error = _error(realtyos.admin, "PATCH", f"{PLANS}/pro", 400, json={"is_default": True})

    assert error["param"] == "status"
    assert _defaults(realtyos.admin) == ["free"]


def test_archiving_and_undefaulting_together_is_allowed_for_a_paid_default(realtyos: Setup) -> None:
    realtyos.admin.call("PATCH", f"{PLANS}/pro", json={"is_default": True})

    updated = realtyos.admin.call(
        "PATCH", f"{PLANS}/pro", json={"status": "archived", "is_default": False}
    )

    assert updated["status"] == "archived"
    assert updated["is_default"] is False
    assert _defaults(realtyos.admin) == []


def test_clearing_the_price_of_a_paid_plan_is_refused(realtyos: Setup) -> None:
    error = _error(realtyos.admin, "PATCH", f"{PLANS}/pro", 400, json={"stripe_price_id": None})

    assert error["param"] == "stripe_price_id"
    assert realtyos.admin.call("GET", f"{PLANS}/pro")["stripe_price_id"] == "price_pro"


def test_unknown_field_in_plan_patch_is_422(realtyos: Setup) -> None:
    error = _error(realtyos.admin, "PATCH", f"{PLANS}/pro", 422, json={"price": "price_x"})

    assert error["param"] == "price"


def test_a_too_large_limit_is_named_as_such(client: TestClient) -> None:
    """A grant is `true` or `{"limit": N}`: the error speaks of the limit, not of booleans."""
    from conftest import Admin

    admin = Admin(client)
    admin.project("limits")
    admin.feature("limits", "seats", "limit")
    response = client.post(
        "/admin/api/projects/limits/plans",
        headers=admin.headers,
        json={
            "key": "big",
            "name": "Big",
            "is_default": True,
            "features": {"seats": {"limit": 2**40, "reset": "month"}},
        },
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["param"] == "features.seats.limit"
    assert "less than or equal to 2147483647" in error["message"]
