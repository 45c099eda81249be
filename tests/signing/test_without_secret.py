"""Without BILLPLANE_SECRET_KEY, a snapshot (or a key) is refused in the envelope, naming the
setting; plain JSON entitlements are served as ever, and no key is made."""

import pytest

from billplane.settings import Settings
from conftest import Setup


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"billplane_secret_key": None})


def test_without_the_secret_key_a_snapshot_is_refused_naming_the_setting(realtyos: Setup) -> None:
    path = "/v1/tenants/acme/entitlements"
    refused = realtyos.api.client.get(
        path, headers=realtyos.api.headers | {"Accept": "application/jwt"}
    )

    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/json"
    error = refused.json()["error"]
    assert error["code"] == "signing_not_configured"
    assert "BILLPLANE_SECRET_KEY" in error["message"]
    assert realtyos.api.get(path).json()["plan"] == "free"  # JSON as ever
    rotate = realtyos.admin.call("POST", "/admin/api/signing-keys/rotate", 503)
    assert rotate["error"]["code"] == "signing_not_configured"
    assert realtyos.admin.client.get("/.well-known/jwks.json").json() == {"keys": []}
    assert realtyos.admin.call("GET", "/admin/api/signing-keys")["data"] == []
