"""Who may call the client API: 401 without a live token, 403 outside a scoped token's tenant."""

from typing import Any

import httpx2

from conftest import Admin, Client, Setup

CHECK = {"tenant": "acme", "feature": "exports"}


def _project_token_id(admin: Admin) -> str:
    listed = admin.call("GET", "/admin/api/projects/realtyos/tokens")["data"]
    (token_id,) = [str(t["id"]) for t in listed if t["tenant"] is None]
    return token_id


def _scoped_token(realtyos: Setup, tenant: str = "acme") -> dict[str, Any]:
    issued: dict[str, Any] = realtyos.admin.call(
        "POST", "/admin/api/projects/realtyos/tokens", 201, json={"name": "app", "tenant": tenant}
    )
    return issued


def _assert_error(response: httpx2.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]


def _used(api: Client, tenant: str, feature: str) -> int:
    response = api.get(f"/v1/tenants/{tenant}/entitlements")
    assert response.status_code == 200, response.text
    (entry,) = [f for f in response.json()["features"] if f["feature"] == feature]
    return int(entry["used"])


def test_project_token_is_accepted(realtyos: Setup) -> None:
    response = realtyos.api.post("/v1/check", CHECK)

    assert response.status_code == 200, response.text
    assert response.json()["tenant"] == "acme"


def test_missing_authorization_header_is_401(realtyos: Setup) -> None:
    response = realtyos.api.client.post("/v1/check", json=CHECK)

    _assert_error(response, 401, "unauthorized")


def test_basic_scheme_is_401(realtyos: Setup) -> None:
    response = realtyos.api.client.post(
        "/v1/check", json=CHECK, headers={"Authorization": f"Basic {realtyos.token}"}
    )

    _assert_error(response, 401, "unauthorized")


def test_bare_token_without_scheme_is_401(realtyos: Setup) -> None:
    response = realtyos.api.client.post(
        "/v1/check", json=CHECK, headers={"Authorization": realtyos.token}
    )

    _assert_error(response, 401, "unauthorized")


def test_empty_bearer_is_401(realtyos: Setup) -> None:
    response = realtyos.api.client.post(
        "/v1/check", json=CHECK, headers={"Authorization": "Bearer "}
    )

    _assert_error(response, 401, "unauthorized")


def test_unknown_token_is_401(realtyos: Setup) -> None:
    forged = Client(realtyos.api.client, "bp_" + "A" * 43)

    _assert_error(forged.post("/v1/check", CHECK), 401, "unauthorized")


def test_token_with_a_changed_character_is_401(realtyos: Setup) -> None:
    last = realtyos.token[-1]
    altered = realtyos.token[:-1] + ("B" if last != "B" else "C")

    response = Client(realtyos.api.client, altered).post("/v1/check", CHECK)

    _assert_error(response, 401, "unauthorized")


def test_admin_token_is_not_a_client_token(realtyos: Setup) -> None:
    response = realtyos.api.client.post("/v1/check", json=CHECK, headers=realtyos.admin.headers)

    _assert_error(response, 401, "unauthorized")


def test_revoked_token_is_401_on_the_very_next_request(realtyos: Setup) -> None:
    token_id = _project_token_id(realtyos.admin)
    assert realtyos.api.post("/v1/check", CHECK).status_code == 200

    revoked = realtyos.admin.call("DELETE", f"/admin/api/tokens/{token_id}")

    assert revoked["revoked_at"] is not None
    _assert_error(realtyos.api.post("/v1/check", CHECK), 401, "unauthorized")


def test_revoked_token_is_refused_on_every_client_endpoint(realtyos: Setup) -> None:
    realtyos.admin.call("DELETE", f"/admin/api/tokens/{_project_token_id(realtyos.admin)}")
    usage = {"tenant": "acme", "feature": "ai.tokens", "idempotency_key": "k1"}

    _assert_error(realtyos.api.post("/v1/check", CHECK), 401, "unauthorized")
    _assert_error(realtyos.api.post("/v1/usage", usage), 401, "unauthorized")
    _assert_error(realtyos.api.post("/v1/usage/batch", {"events": [usage]}), 401, "unauthorized")
    _assert_error(realtyos.api.get("/v1/tenants/acme/entitlements"), 401, "unauthorized")


def test_revoked_token_shows_as_revoked_in_the_list(realtyos: Setup) -> None:
    token_id = _project_token_id(realtyos.admin)
    realtyos.admin.call("DELETE", f"/admin/api/tokens/{token_id}")

    listed = realtyos.admin.call("GET", "/admin/api/projects/realtyos/tokens")["data"]

    assert {t["id"]: t["revoked_at"] for t in listed}[token_id] is not None


def test_revoking_one_token_leaves_the_others_working(realtyos: Setup) -> None:
    scoped = _scoped_token(realtyos)

    realtyos.admin.call("DELETE", f"/admin/api/tokens/{scoped['id']}")

    assert realtyos.api.post("/v1/check", CHECK).status_code == 200
    gone = Client(realtyos.api.client, scoped["token"]).post("/v1/check", CHECK)
    _assert_error(gone, 401, "unauthorized")


def test_rotated_token_old_secret_is_401_and_new_secret_works_at_once(realtyos: Setup) -> None:
    token_id = _project_token_id(realtyos.admin)

    rotated = realtyos.admin.call("POST", f"/admin/api/tokens/{token_id}/rotate")

    assert rotated["id"] == token_id
    assert rotated["token"].startswith("bp_")
    assert rotated["token"] != realtyos.token
    assert rotated["token"].startswith(rotated["prefix"])
    assert rotated["rotated_at"] is not None
    _assert_error(realtyos.api.post("/v1/check", CHECK), 401, "unauthorized")
    fresh = Client(realtyos.api.client, rotated["token"]).post("/v1/check", CHECK)
    assert fresh.status_code == 200, fresh.text


def test_rotated_tenant_token_keeps_its_tenant_scope(realtyos: Setup) -> None:
    realtyos.seed.tenant("realtyos", "globex")
    scoped = _scoped_token(realtyos)

    rotated = realtyos.admin.call("POST", f"/admin/api/tokens/{scoped['id']}/rotate")

    assert rotated["tenant"] == "acme"
    api = Client(realtyos.api.client, rotated["token"])
    assert api.post("/v1/check", CHECK).status_code == 200
    _assert_error(api.post("/v1/check", {**CHECK, "tenant": "globex"}), 403, "forbidden")


def test_rotating_a_revoked_token_is_refused(realtyos: Setup) -> None:
    token_id = _project_token_id(realtyos.admin)
    realtyos.admin.call("DELETE", f"/admin/api/tokens/{token_id}")

    response = realtyos.admin.client.post(
        f"/admin/api/tokens/{token_id}/rotate", headers=realtyos.admin.headers
    )

    _assert_error(response, 404, "token_not_found")
    _assert_error(realtyos.api.post("/v1/check", CHECK), 401, "unauthorized")


def test_rotating_or_revoking_an_unknown_token_is_404(realtyos: Setup) -> None:
    headers = realtyos.admin.headers
    client = realtyos.admin.client

    _assert_error(
        client.post("/admin/api/tokens/tok_nope/rotate", headers=headers), 404, "token_not_found"
    )
    _assert_error(
        client.delete("/admin/api/tokens/tok_nope", headers=headers), 404, "token_not_found"
    )


def test_scoped_token_works_for_its_own_tenant(realtyos: Setup) -> None:
    api = Client(realtyos.api.client, _scoped_token(realtyos)["token"])

    check = api.post("/v1/check", CHECK)
    usage = api.post(
        "/v1/usage", {"tenant": "acme", "feature": "ai.tokens", "idempotency_key": "k1"}
    )
    entitlements = api.get("/v1/tenants/acme/entitlements")

    assert check.status_code == 200, check.text
    assert usage.status_code == 201, usage.text
    assert entitlements.status_code == 200, entitlements.text


def test_scoped_token_for_another_tenant_is_403_on_check(realtyos: Setup) -> None:
    realtyos.seed.tenant("realtyos", "globex")
    api = Client(realtyos.api.client, _scoped_token(realtyos)["token"])

    response = api.post("/v1/check", {"tenant": "globex", "feature": "exports"})

    _assert_error(response, 403, "forbidden")


def test_scoped_token_for_another_tenant_is_403_on_usage_and_counts_nothing(
    realtyos: Setup,
) -> None:
    realtyos.seed.tenant("realtyos", "globex")
    api = Client(realtyos.api.client, _scoped_token(realtyos)["token"])

    response = api.post(
        "/v1/usage",
        {"tenant": "globex", "feature": "ai.tokens", "quantity": 5, "idempotency_key": "k1"},
    )

    _assert_error(response, 403, "forbidden")
    assert _used(realtyos.api, "globex", "ai.tokens") == 0


def test_scoped_token_for_another_tenant_is_403_in_a_batch(realtyos: Setup) -> None:
    realtyos.seed.tenant("realtyos", "globex")
    api = Client(realtyos.api.client, _scoped_token(realtyos)["token"])

    response = api.post(
        "/v1/usage/batch",
        {
            "events": [
                {"tenant": "globex", "feature": "ai.tokens", "idempotency_key": "k1"},
                {"tenant": "acme", "feature": "ai.tokens", "idempotency_key": "k2"},
            ]
        },
    )

    assert response.status_code == 200, response.text
    first, second = response.json()["data"]
    assert first["status"] == 403
    assert first["error"]["code"] == "forbidden"
    assert second["status"] == 201
    assert _used(realtyos.api, "globex", "ai.tokens") == 0
    assert _used(realtyos.api, "acme", "ai.tokens") == 1


def test_scoped_token_for_another_tenant_is_403_on_entitlements(realtyos: Setup) -> None:
    realtyos.seed.tenant("realtyos", "globex")
    api = Client(realtyos.api.client, _scoped_token(realtyos)["token"])

    _assert_error(api.get("/v1/tenants/globex/entitlements"), 403, "forbidden")


def test_unknown_tenant_is_404_on_check(realtyos: Setup) -> None:
    response = realtyos.api.post("/v1/check", {"tenant": "nobody", "feature": "exports"})

    _assert_error(response, 404, "tenant_not_found")


def test_unknown_tenant_is_404_on_usage(realtyos: Setup) -> None:
    response = realtyos.api.post(
        "/v1/usage", {"tenant": "nobody", "feature": "ai.tokens", "idempotency_key": "k1"}
    )

    _assert_error(response, 404, "tenant_not_found")


def test_unknown_tenant_is_404_on_entitlements(realtyos: Setup) -> None:
    _assert_error(realtyos.api.get("/v1/tenants/nobody/entitlements"), 404, "tenant_not_found")
