"""`GET /admin/api/status`: Stripe and webhook status and the checklist, from live records."""

from typing import Any

from conftest import Admin


def status(admin: Admin) -> dict[str, Any]:
    return admin.call("GET", "/admin/api/status")  # type: ignore[no-any-return]


def test_an_empty_server_without_stripe_says_so_and_asks_for_a_project(admin: Admin) -> None:
    body = status(admin)
    assert body["stripe"]["label"] == "not configured"
    assert body["stripe"]["ok"] is False
    assert body["webhook"]["label"] == "secret missing"
    assert body["next"]["key"] == "project"
    assert not any(item["done"] for item in body["checklist"])


def test_checklist_items_are_ticked_from_the_records(realtyos: Any) -> None:
    before = {i["key"]: i["done"] for i in status(realtyos.admin)["checklist"]}
    assert before["project"]
    assert before["feature"]
    assert before["plan"]
    assert before["tenant"]
    assert before["first_check"] is False
    assert status(realtyos.admin)["next"]["key"] == "first_check"

    realtyos.api.post("/v1/check", {"tenant": "acme", "feature": "exports"})
    after = status(realtyos.admin)
    assert {i["key"]: i["done"] for i in after["checklist"]}["first_check"] is True
    assert after["next"]["key"] != "first_check"


def test_status_needs_the_admin_token(client: Any) -> None:
    response = client.get("/admin/api/status")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
