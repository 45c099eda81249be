"""Every operator action leaves an audit entry: actor, action, target, before/after."""

import json
from typing import Any

from conftest import Admin, Setup
from factories import Seed

AUDIT = "/admin/api/audit"


def _entries(admin: Admin, **params: Any) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = admin.call("GET", AUDIT, params=params)["data"]
    return entries


def _latest(admin: Admin, action: str) -> dict[str, Any]:
    matching = [e for e in _entries(admin) if e["action"] == action]
    assert matching, f"no {action} entry"
    return matching[0]


def _token_id(admin: Admin, project: str = "realtyos") -> str:
    listed = admin.call("GET", f"/admin/api/projects/{project}/tokens")["data"]
    (token_id,) = [str(t["id"]) for t in listed if t["tenant"] is None]
    return token_id


def test_project_create_is_audited(admin: Admin) -> None:
    admin.project("realtyos", name="RealtyOS")

    entry = _latest(admin, "project.create")

    assert entry["actor"] == "admin"
    assert entry["target"] == "project:realtyos"
    assert entry["before"] is None
    assert entry["after"] == {
        "key": "realtyos",
        "name": "RealtyOS",
        "origins": ["https://app.realtyos.test"],
    }
    assert entry["created_at"].startswith("2026-11-21T12:00")


def test_project_create_also_audits_its_first_token(admin: Admin) -> None:
    admin.project("realtyos")

    entry = _latest(admin, "token.create")

    assert entry["target"] == f"token:{_token_id(admin)}"
    assert entry["after"]["name"] == "default"
    assert entry["after"]["tenant"] is None


def test_feature_create_is_audited(admin: Admin, seed: Seed) -> None:
    seed.project("realtyos")
    admin.feature("realtyos", "listings.publish", "limit", unit="listing")

    entry = _latest(admin, "feature.create")

    assert entry["actor"] == "admin"
    assert entry["target"] == "feature:realtyos/listings.publish"
    assert entry["after"] == {
        "key": "listings.publish",
        "name": "listings.publish",
        "type": "limit",
        "unit": "listing",
        "status": "active",
    }


def test_plan_create_is_audited_with_its_grants(realtyos: Setup) -> None:
    entry = _latest(realtyos.admin, "plan.create")

    assert entry["actor"] == "admin"
    assert entry["target"] == "plan:realtyos/pro"
    assert entry["before"] is None
    assert entry["after"]["stripe_price_id"] == "price_pro"
    assert entry["after"]["features"]["listings.publish"] == {"limit": 100, "reset": "month"}


def test_plan_update_is_audited_with_before_and_after(realtyos: Setup) -> None:
    realtyos.admin.call(
        "PATCH",
        "/admin/api/projects/realtyos/plans/pro",
        json={"name": "Professional", "features": {"exports": True}},
    )

    entry = _latest(realtyos.admin, "plan.update")

    assert entry["actor"] == "admin"
    assert entry["target"] == "plan:realtyos/pro"
    assert entry["before"]["name"] == "Pro"
    assert entry["after"]["name"] == "Professional"
    assert "listings.publish" in entry["before"]["features"]
    assert entry["after"]["features"] == {"exports": True}


def test_default_change_is_audited_for_the_plan_made_default(realtyos: Setup) -> None:
    realtyos.admin.call(
        "PATCH", "/admin/api/projects/realtyos/plans/pro", json={"is_default": True}
    )

    entry = _latest(realtyos.admin, "plan.update")

    assert entry["target"] == "plan:realtyos/pro"
    assert entry["before"]["is_default"] is False
    assert entry["after"]["is_default"] is True


def test_tenant_create_is_audited(realtyos: Setup) -> None:
    entry = _latest(realtyos.admin, "tenant.create")

    assert entry["actor"] == "admin"
    assert entry["target"] == "tenant:realtyos/acme"
    assert entry["after"] == {"key": "acme", "name": "Acme Realty", "email": "ops@acme.test"}


def test_tenant_update_is_audited_with_before_and_after(realtyos: Setup) -> None:
    realtyos.admin.call(
        "PATCH",
        "/admin/api/projects/realtyos/tenants/acme",
        json={"email": "ap@acme.test", "overrides": {"listings.publish": {"limit": 50}}},
    )

    entry = _latest(realtyos.admin, "tenant.update")

    assert entry["actor"] == "admin"
    assert entry["target"] == "tenant:realtyos/acme"
    assert entry["before"]["email"] == "ops@acme.test"
    assert entry["before"]["overrides"] == {}
    assert entry["after"]["email"] == "ap@acme.test"
    assert entry["after"]["overrides"] == {"listings.publish": {"limit": 50, "reset": "month"}}


def test_token_create_is_audited_with_its_scope(realtyos: Setup) -> None:
    issued = realtyos.admin.call(
        "POST",
        "/admin/api/projects/realtyos/tokens",
        201,
        json={"name": "acme app", "tenant": "acme"},
    )

    entry = _latest(realtyos.admin, "token.create")

    assert entry["actor"] == "admin"
    assert entry["target"] == f"token:{issued['id']}"
    assert entry["after"] == {"name": "acme app", "prefix": issued["prefix"], "tenant": "acme"}


def test_token_rotate_is_audited_with_old_and_new_prefix(realtyos: Setup) -> None:
    token_id = _token_id(realtyos.admin)
    (listed,) = realtyos.admin.call("GET", "/admin/api/projects/realtyos/tokens")["data"]
    rotated = realtyos.admin.call("POST", f"/admin/api/tokens/{token_id}/rotate")

    entry = _latest(realtyos.admin, "token.rotate")

    assert entry["actor"] == "admin"
    assert entry["target"] == f"token:{token_id}"
    assert entry["before"] == {"prefix": listed["prefix"]}
    assert entry["after"] == {"prefix": rotated["prefix"]}
    assert listed["prefix"] != rotated["prefix"]


def test_token_revoke_is_audited(realtyos: Setup) -> None:
    token_id = _token_id(realtyos.admin)
    realtyos.admin.call("DELETE", f"/admin/api/tokens/{token_id}")

    entry = _latest(realtyos.admin, "token.revoke")

    assert entry["actor"] == "admin"
    assert entry["target"] == f"token:{token_id}"
    assert entry["after"]["revoked_at"].startswith("2026-11-21T12:00")


def test_revoking_twice_is_audited_once(realtyos: Setup) -> None:
    token_id = _token_id(realtyos.admin)
    realtyos.admin.call("DELETE", f"/admin/api/tokens/{token_id}")
    realtyos.admin.call("DELETE", f"/admin/api/tokens/{token_id}")

    revokes = [e for e in _entries(realtyos.admin) if e["action"] == "token.revoke"]

    assert len(revokes) == 1


def test_failed_action_leaves_no_audit_entry(realtyos: Setup) -> None:
    before = _entries(realtyos.admin, project="realtyos")

    realtyos.admin.call("POST", "/admin/api/projects/realtyos/tenants", 409, json={"key": "acme"})
    realtyos.admin.call(
        "POST",
        "/admin/api/projects/realtyos/plans",
        404,
        json={
            "key": "team",
            "name": "Team",
            "stripe_price_id": "price_team",
            "features": {"sso": True},
        },
    )

    assert _entries(realtyos.admin, project="realtyos") == before
    assert len(before) == 8


def test_token_secrets_never_appear_in_the_audit_trail(realtyos: Setup) -> None:
    admin = realtyos.admin
    scoped = admin.call(
        "POST", "/admin/api/projects/realtyos/tokens", 201, json={"name": "a", "tenant": "acme"}
    )
    rotated = admin.call("POST", f"/admin/api/tokens/{_token_id(admin)}/rotate")
    rotated_scoped = admin.call("POST", f"/admin/api/tokens/{scoped['id']}/rotate")
    admin.call("DELETE", f"/admin/api/tokens/{scoped['id']}")

    trail = json.dumps(_entries(admin))

    for secret in (realtyos.token, scoped["token"], rotated["token"], rotated_scoped["token"]):
        assert secret not in trail
        assert secret[12:] not in trail
    assert {"token.create", "token.rotate", "token.revoke"} <= {
        e["action"] for e in _entries(admin)
    }


def test_audit_trail_lists_newest_first(realtyos: Setup) -> None:
    actions = [e["action"] for e in _entries(realtyos.admin, project="realtyos")]

    assert actions[0] == "tenant.create"
    assert actions[-1] == "project.create"


def test_audit_trail_can_be_filtered_by_project(realtyos: Setup) -> None:
    realtyos.seed.project("reeltours")
    realtyos.seed.feature("reeltours", "exports", "boolean")

    entries = _entries(realtyos.admin, project="reeltours")

    assert [e["action"] for e in entries] == ["feature.create", "token.create", "project.create"]
    assert all("realtyos" not in e["target"] for e in entries)


def test_audit_trail_limit_returns_the_newest(realtyos: Setup) -> None:
    entries = _entries(realtyos.admin, project="realtyos", limit=2)

    assert [e["action"] for e in entries] == ["tenant.create", "plan.create"]
