"""One project can never see or touch another project's tenants."""

import pytest

from conftest import Client, Setup


@pytest.fixture
def foreign(realtyos: Setup) -> Client:
    """A second project's token, holding nothing of realtyos."""
    token = realtyos.seed.project("reeltours").token.secret
    realtyos.seed.feature("reeltours", "ai.tokens", "metered")
    realtyos.seed.feature("reeltours", "exports", "boolean")
    realtyos.seed.plan("reeltours", "free", is_default=True, features={"ai.tokens": True})
    return Client(realtyos.api.client, token)


def _usage_of_acme(realtyos: Setup) -> dict[str, int]:
    response = realtyos.api.get("/v1/tenants/acme/entitlements")
    assert response.status_code == 200, response.text
    return {f["feature"]: f.get("used") for f in response.json()["features"]}


def test_foreign_project_token_gets_404_for_the_tenant_on_every_client_endpoint(
    realtyos: Setup, foreign: Client
) -> None:
    realtyos.api.post(
        "/v1/usage",
        {"tenant": "acme", "feature": "ai.tokens", "quantity": 2, "idempotency_key": "mine"},
    )
    before = _usage_of_acme(realtyos)
    event = {"tenant": "acme", "feature": "ai.tokens", "quantity": 7, "idempotency_key": "theirs"}

    check = foreign.post("/v1/check", {"tenant": "acme", "feature": "ai.tokens"})
    usage = foreign.post("/v1/usage", event)
    enforced = foreign.post("/v1/usage", {**event, "idempotency_key": "theirs-2", "enforce": True})
    batch = foreign.post("/v1/usage/batch", {"events": [event]})
    entitlements = foreign.get("/v1/tenants/acme/entitlements")

    for response in (check, usage, enforced, entitlements):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "tenant_not_found"
        assert "Acme" not in response.text
    assert batch.status_code == 200, batch.text
    (result,) = batch.json()["data"]
    assert result["status"] == 404
    assert result["error"]["code"] == "tenant_not_found"
    assert _usage_of_acme(realtyos) == before
    assert before["ai.tokens"] == 2


def test_foreign_project_usage_leaves_no_event_on_the_tenant(
    realtyos: Setup, foreign: Client
) -> None:
    foreign.post(
        "/v1/usage", {"tenant": "acme", "feature": "ai.tokens", "idempotency_key": "theirs"}
    )
    foreign.post(
        "/v1/usage/batch",
        {"events": [{"tenant": "acme", "feature": "ai.tokens", "idempotency_key": "b"}]},
    )

    detail = realtyos.admin.call("GET", "/admin/api/projects/realtyos/tenants/acme")

    assert detail["recent_usage"] == []


def test_same_tenant_key_in_two_projects_are_separate_tenants(
    realtyos: Setup, foreign: Client
) -> None:
    realtyos.seed.tenant("reeltours", "acme", name="Acme Tours")

    foreign.post(
        "/v1/usage",
        {"tenant": "acme", "feature": "ai.tokens", "quantity": 9, "idempotency_key": "k"},
    )

    theirs = foreign.get("/v1/tenants/acme/entitlements").json()
    assert {f["feature"]: f.get("used") for f in theirs["features"]}["ai.tokens"] == 9
    assert _usage_of_acme(realtyos)["ai.tokens"] == 0


def test_same_idempotency_key_in_two_projects_counts_in_each(
    realtyos: Setup, foreign: Client
) -> None:
    realtyos.seed.tenant("reeltours", "acme")
    event = {"tenant": "acme", "feature": "ai.tokens", "quantity": 3, "idempotency_key": "shared"}

    mine = realtyos.api.post("/v1/usage", event)
    theirs = foreign.post("/v1/usage", event)

    assert mine.status_code == 201, mine.text
    assert theirs.status_code == 201, theirs.text
    assert _usage_of_acme(realtyos)["ai.tokens"] == 3


def test_token_cannot_be_scoped_to_another_projects_tenant(
    realtyos: Setup, foreign: Client
) -> None:
    response = realtyos.admin.client.post(
        "/admin/api/projects/reeltours/tokens",
        json={"name": "sneaky", "tenant": "acme"},
        headers=realtyos.admin.headers,
    )

    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "tenant_not_found"


def test_foreign_scoped_token_cannot_reach_the_tenant(realtyos: Setup, foreign: Client) -> None:
    realtyos.seed.tenant("reeltours", "acme")
    scoped = realtyos.admin.call(
        "POST", "/admin/api/projects/reeltours/tokens", 201, json={"name": "x", "tenant": "acme"}
    )
    api = Client(realtyos.api.client, scoped["token"])

    api.post(
        "/v1/usage",
        {"tenant": "acme", "feature": "ai.tokens", "quantity": 4, "idempotency_key": "k"},
    )

    assert _usage_of_acme(realtyos)["ai.tokens"] == 0
