"""Archived tenants and features: every check refuses them with a reason of its own, and
restoring them gives back what the plan grants, with the usage they kept."""

from typing import Any

from conftest import Setup

TENANTS = "/admin/api/projects/realtyos/tenants"
FEATURES = "/admin/api/projects/realtyos/features"


def check(setup: Setup, feature: str, tenant: str = "acme") -> dict[str, Any]:
    response = setup.api.post("/v1/check", {"tenant": tenant, "feature": feature})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def entitlements(setup: Setup, tenant: str = "acme") -> dict[str, dict[str, Any]]:
    response = setup.api.get(f"/v1/tenants/{tenant}/entitlements")
    assert response.status_code == 200, response.text
    return {f["feature"]: f for f in response.json()["features"]}


def archive(setup: Setup, path: str) -> None:
    setup.admin.call("PATCH", path, json={"status": "archived"})


def restore(setup: Setup, path: str) -> None:
    setup.admin.call("PATCH", path, json={"status": "active"})


def test_a_check_of_an_archived_tenant_is_refused_as_tenant_archived(realtyos: Setup) -> None:
    assert check(realtyos, "listings.publish")["allowed"] is True

    archive(realtyos, f"{TENANTS}/acme")

    answer = check(realtyos, "listings.publish")
    assert (answer["allowed"], answer["reason"], answer["plan"]) == (
        False,
        "tenant_archived",
        "free",
    )
    assert (answer["limit"], answer["used"], answer["remaining"]) == (3, 0, 3)


def test_an_archived_tenant_is_refused_even_what_its_plan_grants_without_limit(
    realtyos: Setup,
) -> None:
    archive(realtyos, f"{TENANTS}/acme")

    answer = check(realtyos, "ai.tokens")

    assert (answer["allowed"], answer["reason"]) == (False, "tenant_archived")


def test_archiving_one_tenant_leaves_the_others_alone(realtyos: Setup) -> None:
    realtyos.seed.tenant("realtyos", "globex")

    archive(realtyos, f"{TENANTS}/acme")

    assert check(realtyos, "listings.publish", tenant="globex")["reason"] == "ok"


def test_a_check_of_an_archived_feature_is_refused_as_feature_archived(realtyos: Setup) -> None:
    archive(realtyos, f"{FEATURES}/listings.publish")

    answer = check(realtyos, "listings.publish")

    assert (answer["allowed"], answer["reason"]) == (False, "feature_archived")
    assert check(realtyos, "ai.tokens")["reason"] == "ok"


def test_an_archived_boolean_feature_is_refused_without_numbers(realtyos: Setup) -> None:
    realtyos.admin.call("PATCH", f"{TENANTS}/acme", json={"overrides": {"exports": True}})
    assert check(realtyos, "exports")["allowed"] is True

    archive(realtyos, f"{FEATURES}/exports")

    answer = check(realtyos, "exports")
    assert (answer["allowed"], answer["reason"]) == (False, "feature_archived")
    assert "limit" not in answer


def test_an_archived_tenants_reason_comes_before_an_archived_features(realtyos: Setup) -> None:
    archive(realtyos, f"{FEATURES}/listings.publish")
    archive(realtyos, f"{TENANTS}/acme")

    assert check(realtyos, "listings.publish")["reason"] == "tenant_archived"


def test_a_restored_tenant_and_feature_are_allowed_again(realtyos: Setup) -> None:
    archive(realtyos, f"{TENANTS}/acme")
    archive(realtyos, f"{FEATURES}/listings.publish")

    restore(realtyos, f"{TENANTS}/acme")
    restore(realtyos, f"{FEATURES}/listings.publish")

    assert check(realtyos, "listings.publish")["reason"] == "ok"


def test_entitlements_of_an_archived_tenant_refuse_every_feature(realtyos: Setup) -> None:
    archive(realtyos, f"{TENANTS}/acme")

    features = entitlements(realtyos)

    assert set(features) == {"exports", "listings.publish", "ai.tokens"}
    assert {(f["allowed"], f["reason"]) for f in features.values()} == {(False, "tenant_archived")}


def test_entitlements_keep_an_archived_feature_marked_as_archived(realtyos: Setup) -> None:
    archive(realtyos, f"{FEATURES}/ai.tokens")

    features = entitlements(realtyos)

    assert (features["ai.tokens"]["allowed"], features["ai.tokens"]["reason"]) == (
        False,
        "feature_archived",
    )
    assert features["listings.publish"]["reason"] == "ok"


def test_an_archived_tenant_keeps_the_usage_it_had(realtyos: Setup) -> None:
    body = {"tenant": "acme", "feature": "listings.publish", "quantity": 2, "idempotency_key": "a"}
    assert realtyos.api.post("/v1/usage", body).status_code == 201
    archive(realtyos, f"{TENANTS}/acme")

    assert check(realtyos, "listings.publish")["used"] == 2
    restore(realtyos, f"{TENANTS}/acme")
    answer = check(realtyos, "listings.publish")
    assert (answer["allowed"], answer["used"], answer["remaining"]) == (True, 2, 1)


def test_a_tenant_scoped_token_of_an_archived_tenant_is_refused_the_same_way(
    realtyos: Setup,
) -> None:
    token = realtyos.admin.call(
        "POST",
        "/admin/api/projects/realtyos/tokens",
        201,
        json={"name": "acme app", "tenant": "acme"},
    )["token"]
    archive(realtyos, f"{TENANTS}/acme")

    response = realtyos.api.client.post(
        "/v1/check",
        json={"tenant": "acme", "feature": "listings.publish"},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == 200
    assert response.json()["reason"] == "tenant_archived"
