"""Usage of archived tenants and features: enforced usage is refused (402, nothing counted);
usage without `enforce` reports what happened and is still recorded."""

from typing import Any

from conftest import Setup

TENANTS = "/admin/api/projects/realtyos/tenants"
FEATURES = "/admin/api/projects/realtyos/features"


def usage(setup: Setup, expect: int, **body: Any) -> Any:
    body = {"tenant": "acme", "feature": "listings.publish"} | body
    response = setup.api.post("/v1/usage", body)
    assert response.status_code == expect, response.text
    return response.json()


def used(setup: Setup, feature: str = "listings.publish") -> int:
    answer = setup.api.post("/v1/check", {"tenant": "acme", "feature": feature}).json()
    return int(answer["used"])


def archive(setup: Setup, path: str) -> None:
    setup.admin.call("PATCH", path, json={"status": "archived"})


def test_enforced_usage_of_an_archived_tenant_is_402_and_counts_nothing(realtyos: Setup) -> None:
    usage(realtyos, 201, idempotency_key="k1", enforce=True)
    archive(realtyos, f"{TENANTS}/acme")

    error = usage(realtyos, 402, idempotency_key="k2", enforce=True)["error"]

    assert error["code"] == "tenant_archived"
    assert error["message"] == "Tenant 'acme' is archived; restore it to record usage."
    assert (error["limit"], error["used"], error["remaining"]) == (3, 1, 2)
    assert used(realtyos) == 1


def test_enforced_usage_of_an_archived_feature_is_402_and_counts_nothing(realtyos: Setup) -> None:
    archive(realtyos, f"{FEATURES}/ai.tokens")

    error = usage(realtyos, 402, feature="ai.tokens", idempotency_key="k1", enforce=True)["error"]

    assert error["code"] == "feature_archived"
    assert "'ai.tokens' is archived" in error["message"]
    assert used(realtyos, "ai.tokens") == 0


def test_a_retry_of_usage_counted_before_the_archive_is_still_a_repeat(realtyos: Setup) -> None:
    usage(realtyos, 201, idempotency_key="k1", enforce=True)
    archive(realtyos, f"{TENANTS}/acme")

    repeat = usage(realtyos, 200, idempotency_key="k1", enforce=True)

    assert repeat["duplicate"] is True
    assert used(realtyos) == 1


def test_usage_without_enforce_of_an_archived_tenant_is_still_recorded(realtyos: Setup) -> None:
    archive(realtyos, f"{TENANTS}/acme")

    body = usage(realtyos, 201, feature="ai.tokens", quantity=7, idempotency_key="late")

    assert (body["recorded"], body["used"]) == (True, 7)
    assert used(realtyos, "ai.tokens") == 7


def test_a_batch_refuses_each_enforced_event_of_an_archived_one(realtyos: Setup) -> None:
    archive(realtyos, f"{FEATURES}/listings.publish")
    events = [
        {"tenant": "acme", "feature": "listings.publish", "idempotency_key": "b1", "enforce": True},
        {"tenant": "acme", "feature": "ai.tokens", "idempotency_key": "b2", "enforce": True},
        {"tenant": "acme", "feature": "listings.publish", "idempotency_key": "b3"},
    ]

    response = realtyos.api.post("/v1/usage/batch", {"events": events})

    assert response.status_code == 200, response.text
    results = response.json()["data"]
    assert [r["status"] for r in results] == [402, 201, 201]
    assert results[0]["error"]["code"] == "feature_archived"
    assert used(realtyos) == 1
