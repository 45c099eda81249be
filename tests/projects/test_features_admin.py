"""The admin API for a project's features."""

from typing import Any

import pytest

from conftest import Admin

FEATURES = "/admin/api/projects/realtyos/features"


@pytest.fixture
def project(admin: Admin) -> dict[str, Any]:
    return admin.project("realtyos")


def _error(admin: Admin, method: str, path: str, status: int, **kwargs: Any) -> dict[str, Any]:
    response = admin.client.request(method, path, headers=admin.headers, **kwargs)
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def test_feature_is_created_with_type_and_unit(admin: Admin, project: dict[str, Any]) -> None:
    created = admin.call(
        "POST",
        FEATURES,
        201,
        json={"key": "listings.publish", "name": "Listings", "type": "limit", "unit": "listing"},
    )

    assert created == {
        "key": "listings.publish",
        "name": "Listings",
        "type": "limit",
        "unit": "listing",
        "status": "active",
    }


def test_features_are_listed_per_project(admin: Admin, project: dict[str, Any]) -> None:
    admin.project("reeltours")
    admin.feature("realtyos", "exports", "boolean")
    admin.feature("realtyos", "ai.tokens", "metered", unit="token")
    admin.feature("reeltours", "tours.render", "limit")

    listed = admin.call("GET", FEATURES)

    assert [f["key"] for f in listed["data"]] == ["ai.tokens", "exports"]
    assert listed["has_more"] is False


def test_feature_list_pages_with_limit_and_starting_after(
    admin: Admin, project: dict[str, Any]
) -> None:
    for key in ("a", "b", "c"):
        admin.feature("realtyos", key, "boolean")

    first = admin.call("GET", FEATURES, params={"limit": 2})
    second = admin.call("GET", FEATURES, params={"limit": 2, "starting_after": "b"})

    assert [f["key"] for f in first["data"]] == ["a", "b"]
    assert first["has_more"] is True
    assert [f["key"] for f in second["data"]] == ["c"]
    assert second["has_more"] is False


def test_duplicate_feature_key_is_409(admin: Admin, project: dict[str, Any]) -> None:
    admin.feature("realtyos", "exports", "boolean")

    error = _error(
        admin, "POST", FEATURES, 409, json={"key": "exports", "name": "x", "type": "limit"}
    )

    assert error["code"] == "already_exists"
    (listed,) = admin.call("GET", FEATURES)["data"]
    assert listed["type"] == "boolean"


def test_same_feature_key_in_two_projects_is_allowed(admin: Admin, project: dict[str, Any]) -> None:
    admin.project("reeltours")
    admin.feature("realtyos", "exports", "boolean")

    created = admin.feature("reeltours", "exports", "limit")

    assert created["type"] == "limit"


def test_unknown_feature_type_is_422(admin: Admin, project: dict[str, Any]) -> None:
    error = _error(admin, "POST", FEATURES, 422, json={"key": "x", "name": "x", "type": "quota"})

    assert error["param"] == "type"


def test_feature_key_with_a_space_is_422(admin: Admin, project: dict[str, Any]) -> None:
    error = _error(
        admin, "POST", FEATURES, 422, json={"key": "bad key", "name": "x", "type": "boolean"}
    )

    assert error["param"] == "key"


def test_feature_in_unknown_project_is_404(admin: Admin) -> None:
    error = _error(
        admin,
        "POST",
        "/admin/api/projects/nowhere/features",
        404,
        json={"key": "x", "name": "x", "type": "boolean"},
    )

    assert error["code"] == "project_not_found"
