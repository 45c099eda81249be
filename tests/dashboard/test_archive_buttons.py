"""Archiving from the dashboard: features (project page), tenants (tenant page) and plans (plans
page) have Archive and Restore buttons; a feature's name and unit are edited in place."""

import re

from fastapi.testclient import TestClient

from conftest import Setup
from dashboard.conftest import Operator, field_error

FEATURES = "/admin/api/projects/realtyos/features"


def feature(realtyos: Setup, key: str) -> dict[str, object]:
    listed = realtyos.admin.call("GET", FEATURES)["data"]
    found: dict[str, object] = next(f for f in listed if f["key"] == key)
    return found


def row(page: str, attribute: str, key: str) -> str:
    found = re.search(rf'<tr data-{attribute}="{re.escape(key)}">(.*?)</tr>', page, re.S)
    assert found, f"no row for {key}"
    return found.group(1)


def check(realtyos: Setup, feature: str, tenant: str = "acme") -> str:
    answer = realtyos.api.post("/v1/check", {"tenant": tenant, "feature": feature}).json()
    return str(answer["reason"])


def latest_audit(realtyos: Setup) -> dict[str, object]:
    entry: dict[str, object] = realtyos.admin.call("GET", "/admin/api/audit")["data"][0]
    return entry


def test_the_project_page_offers_archive_for_each_feature(
    operator: Operator, realtyos: Setup
) -> None:
    exports = row(operator.page("/projects/realtyos"), "feature", "exports")

    assert 'action="/projects/realtyos/features/exports/archive"' in exports
    assert 'name="csrf"' in exports
    assert ">active<" in exports


def test_operator_archives_a_feature_and_checks_refuse_it(
    operator: Operator, realtyos: Setup
) -> None:
    response = operator.post("/projects/realtyos/features/listings.publish/archive", {})

    assert response.headers["location"] == "/projects/realtyos#features"
    assert feature(realtyos, "listings.publish")["status"] == "archived"
    assert check(realtyos, "listings.publish") == "feature_archived"
    page = operator.follow(response)
    assert "Feature listings.publish archived" in page
    archived = row(page, "feature", "listings.publish")
    assert ">archived<" in archived
    assert 'action="/projects/realtyos/features/listings.publish/restore"' in archived
    entry = latest_audit(realtyos)
    assert (entry["actor"], entry["action"]) == ("dashboard", "feature.update")


def test_operator_restores_an_archived_feature(operator: Operator, realtyos: Setup) -> None:
    operator.post("/projects/realtyos/features/listings.publish/archive", {})

    operator.post("/projects/realtyos/features/listings.publish/restore", {})

    assert feature(realtyos, "listings.publish")["status"] == "active"
    assert check(realtyos, "listings.publish") == "ok"


def test_operator_edits_a_features_name_and_unit(operator: Operator, realtyos: Setup) -> None:
    response = operator.post(
        "/projects/realtyos/features/listings.publish", {"name": "Listings", "unit": "ad"}
    )

    edited = feature(realtyos, "listings.publish")
    assert (edited["name"], edited["unit"], edited["type"]) == ("Listings", "ad", "limit")
    assert "Feature listings.publish saved." in operator.follow(response)


def test_an_emptied_unit_removes_it(operator: Operator, realtyos: Setup) -> None:
    operator.post("/projects/realtyos/features/listings.publish", {"name": "Listings", "unit": ""})

    assert feature(realtyos, "listings.publish")["unit"] is None


def test_a_bad_unit_is_shown_beside_its_field_and_nothing_changes(
    operator: Operator, realtyos: Setup
) -> None:
    response = operator.post(
        "/projects/realtyos/features/listings.publish",
        {"name": "Listings", "unit": "u" * 65},
        expect=422,
    )

    assert field_error(response.text, "feature-listings.publish-unit")
    assert re.search(r'<details class="edit-feature" open>', response.text)
    assert feature(realtyos, "listings.publish")["unit"] == "listing"


def test_editing_an_unknown_feature_is_a_404_page(operator: Operator, realtyos: Setup) -> None:
    operator.post("/projects/realtyos/features/teleport", {"name": "T"}, expect=404)


def test_archiving_a_feature_without_the_csrf_token_changes_nothing(
    operator: Operator, client: TestClient, realtyos: Setup
) -> None:
    response = client.post(
        "/projects/realtyos/features/exports/archive", data={}, follow_redirects=False
    )

    assert response.status_code == 403
    assert feature(realtyos, "exports")["status"] == "active"


def test_operator_archives_and_restores_a_tenant_from_its_page(
    operator: Operator, realtyos: Setup
) -> None:
    page = operator.page("/projects/realtyos/tenants/acme")
    assert 'action="/projects/realtyos/tenants/acme/archive"' in page

    response = operator.post("/projects/realtyos/tenants/acme/archive", {})

    assert check(realtyos, "listings.publish") == "tenant_archived"
    page = operator.follow(response)
    assert "Tenant acme archived" in page
    assert 'action="/projects/realtyos/tenants/acme/restore"' in page
    assert "tenant archived" in page  # each entitlement's reason
    listed = operator.page("/projects/realtyos/tenants")
    assert ">archived<" in row(listed, "tenant", "acme")

    operator.post("/projects/realtyos/tenants/acme/restore", {})

    assert check(realtyos, "listings.publish") == "ok"
    entry = latest_audit(realtyos)
    assert (entry["actor"], entry["action"]) == ("dashboard", "tenant.update")


def test_operator_archives_and_restores_a_plan_from_the_plans_page(
    operator: Operator, realtyos: Setup
) -> None:
    pro = row(operator.page("/projects/realtyos/plans"), "plan", "pro")
    assert 'action="/projects/realtyos/plans/pro/archive"' in pro

    response = operator.post("/projects/realtyos/plans/pro/archive", {})

    plan = realtyos.admin.call("GET", "/admin/api/projects/realtyos/plans/pro")
    assert plan["status"] == "archived"
    page = operator.follow(response)
    assert "Plan pro archived" in page
    assert 'action="/projects/realtyos/plans/pro/restore"' in row(page, "plan", "pro")

    operator.post("/projects/realtyos/plans/pro/restore", {})

    plan = realtyos.admin.call("GET", "/admin/api/projects/realtyos/plans/pro")
    assert plan["status"] == "active"


def test_archiving_the_default_plan_is_refused_with_the_reason(
    operator: Operator, realtyos: Setup
) -> None:
    response = operator.post("/projects/realtyos/plans/free/archive", {})

    page = operator.follow(response)
    assert "Plan free was not changed: The default plan must be active" in page
    plan = realtyos.admin.call("GET", "/admin/api/projects/realtyos/plans/free")
    assert plan["status"] == "active"
