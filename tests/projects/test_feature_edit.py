"""The admin API edits a feature: its name and unit, and archive or restore (`status`)."""

from typing import Any

from conftest import Admin, Setup

FEATURES = "/admin/api/projects/realtyos/features"


def _error(admin: Admin, method: str, path: str, status: int, **kwargs: Any) -> dict[str, Any]:
    response = admin.client.request(method, path, headers=admin.headers, **kwargs)
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def _listed(admin: Admin) -> dict[str, dict[str, Any]]:
    return {f["key"]: f for f in admin.call("GET", FEATURES)["data"]}


def _latest_audit(admin: Admin, action: str) -> dict[str, Any]:
    entries = admin.call("GET", "/admin/api/audit")["data"]
    matching = [e for e in entries if e["action"] == action]
    assert matching, f"no {action} entry"
    entry: dict[str, Any] = matching[0]
    return entry


def test_a_feature_is_renamed_and_given_another_unit(realtyos: Setup) -> None:
    updated = realtyos.admin.call(
        "PATCH", f"{FEATURES}/listings.publish", json={"name": "Listings", "unit": "ad"}
    )

    assert updated == {
        "key": "listings.publish",
        "name": "Listings",
        "type": "limit",
        "unit": "ad",
        "status": "active",
    }
    assert _listed(realtyos.admin)["listings.publish"]["unit"] == "ad"


def test_what_a_feature_edit_leaves_out_is_kept(realtyos: Setup) -> None:
    updated = realtyos.admin.call("PATCH", f"{FEATURES}/listings.publish", json={"name": "Ads"})

    assert (updated["name"], updated["unit"]) == ("Ads", "listing")


def test_a_unit_given_as_null_is_removed(realtyos: Setup) -> None:
    updated = realtyos.admin.call("PATCH", f"{FEATURES}/listings.publish", json={"unit": None})

    assert updated["unit"] is None
    assert _listed(realtyos.admin)["listings.publish"]["unit"] is None


def test_a_features_key_and_type_cannot_be_edited(realtyos: Setup) -> None:
    """Grants and usage are kept under them: an edit of either is a mistake, not a no-op."""
    error = _error(
        realtyos.admin, "PATCH", f"{FEATURES}/listings.publish", 422, json={"type": "metered"}
    )

    assert error["param"] == "type"
    assert _listed(realtyos.admin)["listings.publish"]["type"] == "limit"


def test_editing_an_unknown_feature_is_404(realtyos: Setup) -> None:
    error = _error(realtyos.admin, "PATCH", f"{FEATURES}/teleport", 404, json={"name": "x"})

    assert error["code"] == "feature_not_found"


def test_a_feature_is_archived_and_listed_as_archived(realtyos: Setup) -> None:
    archived = realtyos.admin.call(
        "PATCH", f"{FEATURES}/listings.publish", json={"status": "archived"}
    )

    assert archived["status"] == "archived"
    listed = _listed(realtyos.admin)
    assert listed["listings.publish"]["status"] == "archived"
    assert listed["exports"]["status"] == "active"


def test_an_archived_feature_is_restored(realtyos: Setup) -> None:
    realtyos.admin.call("PATCH", f"{FEATURES}/exports", json={"status": "archived"})

    restored = realtyos.admin.call("PATCH", f"{FEATURES}/exports", json={"status": "active"})

    assert restored["status"] == "active"
    assert _listed(realtyos.admin)["exports"]["status"] == "active"


def test_archiving_a_feature_keeps_the_plans_grants(realtyos: Setup) -> None:
    realtyos.admin.call("PATCH", f"{FEATURES}/listings.publish", json={"status": "archived"})

    plan = realtyos.admin.call("GET", "/admin/api/projects/realtyos/plans/pro")

    assert plan["features"]["listings.publish"] == {"limit": 100, "reset": "month"}


def test_a_feature_edit_is_audited_with_before_and_after(realtyos: Setup) -> None:
    realtyos.admin.call(
        "PATCH", f"{FEATURES}/listings.publish", json={"name": "Ads", "status": "archived"}
    )

    entry = _latest_audit(realtyos.admin, "feature.update")

    assert entry["actor"] == "admin"
    assert entry["target"] == "feature:realtyos/listings.publish"
    assert entry["before"] == {
        "key": "listings.publish",
        "name": "listings.publish",
        "type": "limit",
        "unit": "listing",
        "status": "active",
    }
    assert (entry["after"]["name"], entry["after"]["status"]) == ("Ads", "archived")


def test_an_unknown_status_is_422(realtyos: Setup) -> None:
    error = _error(realtyos.admin, "PATCH", f"{FEATURES}/exports", 422, json={"status": "deleted"})

    assert error["param"] == "status"
