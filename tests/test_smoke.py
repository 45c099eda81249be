from conftest import Setup


def test_check_on_default_plan(realtyos: Setup) -> None:
    r = realtyos.api.post("/v1/check", {"tenant": "acme", "feature": "listings.publish"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["allowed"] is True
    assert body["plan"] == "free"
    assert body["limit"] == 3
