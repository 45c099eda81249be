"""The admin API archives and restores a tenant (`status`): its history stays."""

from typing import Any

from conftest import Admin, Setup

TENANTS = "/admin/api/projects/realtyos/tenants"


def _archive(admin: Admin, tenant: str = "acme") -> dict[str, Any]:
    answer: dict[str, Any] = admin.call("PATCH", f"{TENANTS}/{tenant}", json={"status": "archived"})
    return answer


def test_a_tenant_is_archived_and_listed_as_archived(realtyos: Setup) -> None:
    realtyos.admin.tenant("realtyos", "globex")

    archived = _archive(realtyos.admin)

    assert archived["status"] == "archived"
    listed = {t["key"]: t["status"] for t in realtyos.admin.call("GET", TENANTS)["data"]}
    assert listed == {"acme": "archived", "globex": "active"}


def test_a_new_tenant_is_active(realtyos: Setup) -> None:
    assert realtyos.admin.tenant("realtyos", "globex")["status"] == "active"


def test_an_archived_tenant_is_restored(realtyos: Setup) -> None:
    _archive(realtyos.admin)

    restored = realtyos.admin.call("PATCH", f"{TENANTS}/acme", json={"status": "active"})

    assert restored["status"] == "active"
    assert realtyos.admin.call("GET", f"{TENANTS}/acme")["status"] == "active"


def test_an_archived_tenant_keeps_its_usage_and_overrides(realtyos: Setup) -> None:
    realtyos.admin.call(
        "PATCH", f"{TENANTS}/acme", json={"overrides": {"listings.publish": {"limit": 9}}}
    )
    body = {"tenant": "acme", "feature": "listings.publish", "quantity": 2, "idempotency_key": "u1"}
    assert realtyos.api.post("/v1/usage", body).status_code == 201

    _archive(realtyos.admin)

    detail = realtyos.admin.call("GET", f"{TENANTS}/acme")
    assert detail["status"] == "archived"
    assert detail["overrides"] == {"listings.publish": {"limit": 9, "reset": "month"}}
    assert [u["idempotency_key"] for u in detail["recent_usage"]] == ["u1"]
    (listings,) = [e for e in detail["entitlements"] if e["feature"] == "listings.publish"]
    assert (listings["allowed"], listings["reason"], listings["used"]) == (
        False,
        "tenant_archived",
        2,
    )


def test_archiving_a_tenant_is_audited_with_before_and_after(realtyos: Setup) -> None:
    _archive(realtyos.admin)

    entries = realtyos.admin.call("GET", "/admin/api/audit")["data"]
    entry = next(e for e in entries if e["action"] == "tenant.update")

    assert entry["target"] == "tenant:realtyos/acme"
    assert (entry["before"]["status"], entry["after"]["status"]) == ("active", "archived")
    assert entry["after"]["name"] == "Acme Realty"


def test_archiving_an_unknown_tenant_is_404(realtyos: Setup) -> None:
    response = realtyos.admin.client.patch(
        f"{TENANTS}/nobody", json={"status": "archived"}, headers=realtyos.admin.headers
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "tenant_not_found"
