"""Client apps react to billplane's webhooks: the Python helpers verify a delivery (Standard
Webhooks) and drop the tenant's cached entitlements, end to end through the example app.

The end-to-end test runs a real billplane whose sender is off (`BILLPLANE_SEND_APP_WEBHOOKS=false`)
and sends with `billplane worker --once` when the test says: so the app is seen serving the old
plan from its cache (an hour long) after the change, and the new one right after the webhook.
"""

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import httpx
import orjson
import pytest
from billplane_client import Billplane, WebhookRefused, Webhooks
from billplane_client.flask import webhook_view
from flask import Flask
from standardwebhooks import Webhook

from clients.conftest import Project, seed_project
from clients.test_example_realtyos import load_example
from conftest import ADMIN_TOKEN, fresh_database
from factories import SECRET_KEY
from servers import BIN, running_server
from stripe_double import BackgroundServer

pytestmark = pytest.mark.e2e

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
HOUR = 3600.0
API = {"Accept": "application/json"}


@dataclass(frozen=True)
class Quiet:
    """A billplane that sends its app webhooks only when `send()` is called."""

    url: str
    database_url: str

    def send(self) -> str:
        """`billplane worker --once`: what the outbox holds goes out now."""
        env = {**os.environ, "DATABASE_URL": self.database_url, "BILLPLANE_SECRET_KEY": SECRET_KEY}
        done = subprocess.run(
            [str(BIN / "billplane"), "worker", "--once"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


@pytest.fixture(scope="module")
def quiet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Quiet]:
    env = {"BILLPLANE_SEND_APP_WEBHOOKS": "false"}
    with (
        fresh_database("sqlite", tmp_path_factory.mktemp("hooks")) as url,
        running_server(url, ADMIN_TOKEN, extra_env=env) as base_url,
    ):
        yield Quiet(base_url, url)


class Later:
    """An ASGI app served before it exists: the example app needs the secret of an endpoint
    that needs the app's URL."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def add_endpoint(base_url: str, project: str, url: str) -> str:
    created = httpx.post(
        f"{base_url}/admin/api/projects/{project}/webhook-endpoints",
        json={"url": url, "events": ["tenant.entitlements.updated"]},
        headers=ADMIN,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    return str(created.json()["secret"])


@pytest.fixture(scope="module")
def realtyos() -> ModuleType:
    return load_example()


def test_a_plan_changed_in_billplane_holds_at_the_example_apps_next_request_by_webhook(
    quiet: Quiet, realtyos: ModuleType
) -> None:
    project = seed_project(quiet.url)
    later = Later()
    server = BackgroundServer(later, name="realtyos-example")
    app_url = server.start()
    try:
        secret = add_endpoint(quiet.url, project["key"], f"{app_url}/billplane/webhooks")
        settings = realtyos.Settings(
            billplane_url=quiet.url,
            billplane_token=project["token"],
            public_url=app_url,
            webhook_secret=secret,
            cache_ttl=HOUR,  # only the webhook can explain a fresh answer
        )
        later.app = realtyos.create_app(settings)
        with httpx.Client(base_url=app_url, headers={"X-Tenant": "acme", **API}) as app:
            listing = app.post("/api/listings", json={"title": "Loft"}).json()["id"]
            assert app.get("/exports/listings.csv").status_code == 402  # free: no exports

            # The operator makes a new default plan: acme moves from free to team.
            team = {"exports": True, "listings.publish": {"limit": 10, "reset": "month"}}
            made = httpx.post(
                f"{quiet.url}/admin/api/projects/{project['key']}/plans",
                json={"key": "team", "name": "Team", "is_default": True, "features": team},
                headers=ADMIN,
                timeout=30,
            )
            assert made.status_code == 201, made.text
            stale = app.get("/exports/listings.csv")
            sent = quiet.send()
            fresh = app.get("/exports/listings.csv")
            published = app.post(f"/listings/{listing}/publish")

        assert stale.status_code == 402  # the cache still holds free: nothing told the app yet
        assert sent == "2 deliveries attempted"  # acme and globex, both moved to team
        assert fresh.status_code == 200
        assert (published.status_code, published.json()["remaining"]) == (200, 9)  # team's 10
    finally:
        server.stop()
        if later.app is not None:  # served without its lifespan: its client is closed here
            later.app.state.billplane.close()


def signed(
    secret: str, payload: dict[str, Any], message_id: str = "msg_test"
) -> tuple[bytes, dict[str, str]]:
    """A delivery as billplane signs it (the `standardwebhooks` library)."""
    body = orjson.dumps(payload)
    now = datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id=message_id, timestamp=now, data=body.decode())
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    return body, headers


@pytest.fixture
def project(quiet: Quiet) -> Project:
    return seed_project(quiet.url)


def event_for(tenant: str) -> dict[str, Any]:
    return {
        "type": "tenant.entitlements.updated",
        "timestamp": "2026-12-04T12:00:00Z",
        "data": {"project": "p", "tenant": tenant, "sequence": 1, "plan": "pro"},
    }


def test_a_verified_webhook_drops_only_its_tenants_cached_entitlements(
    quiet: Quiet, project: Project
) -> None:
    secret, rotated = "whsec_" + "a" * 32, "whsec_" + "b" * 32
    with Billplane(quiet.url, project["token"], cache_ttl=HOUR) as bp:
        hooks = Webhooks(bp, [rotated, secret])  # mid-rotation: either secret verifies
        for tenant in ("acme", "globex"):
            bp.check(tenant, "exports")
        body, headers = signed(secret, event_for("acme"), "msg_1")

        event = hooks.receive(body, headers)
        hooks.receive(body, headers)  # billplane's repeat: the same id, harmless

        assert (event.id, event.type, event.tenant, event.sequence) == (
            "msg_1", "tenant.entitlements.updated", "acme", 1,
        )  # fmt: skip
        assert bp.cache.get("acme") is None
        assert bp.cache.get("globex") is not None


@pytest.mark.parametrize(
    "forge",
    ["another_secret", "altered_body", "no_signature", "malformed_signature", "stale"],
)
def test_a_webhook_billplane_did_not_sign_is_refused_and_drops_nothing(
    quiet: Quiet, project: Project, forge: str
) -> None:
    secret = "whsec_" + "a" * 32
    with Billplane(quiet.url, project["token"], cache_ttl=HOUR) as bp:
        hooks = Webhooks(bp, secret)
        bp.check("acme", "exports")
        body, headers = signed("whsec_" + "f" * 32 if forge == "another_secret" else secret,
                               event_for("acme"))  # fmt: skip
        if forge == "altered_body":
            body = body.replace(b'"pro"', b'"max"')
        elif forge == "no_signature":
            del headers["webhook-signature"]
        elif forge == "malformed_signature":
            headers["webhook-signature"] = "v1"
        elif forge == "stale":
            headers["webhook-timestamp"] = str(int(datetime.now(UTC).timestamp()) - 3600)

        with pytest.raises(WebhookRefused) as refused:
            hooks.receive(body, headers)

        assert refused.value.body["error"]["code"] == "invalid_signature"
        assert bp.cache.get("acme") is not None


def test_the_flask_view_answers_204_to_billplane_and_400_in_the_envelope_to_a_forgery(
    quiet: Quiet, project: Project
) -> None:
    secret = "whsec_" + "a" * 32
    with Billplane(quiet.url, project["token"], cache_ttl=HOUR) as bp:
        app = Flask(__name__)
        app.add_url_rule(
            "/billplane/webhooks", view_func=webhook_view(Webhooks(bp, secret)), methods=["POST"]
        )
        bp.check("acme", "exports")
        body, headers = signed(secret, event_for("acme"))
        client = app.test_client()

        forged = client.post("/billplane/webhooks", data=body + b" ", headers=headers)
        kept = bp.cache.get("acme")
        received = client.post("/billplane/webhooks", data=body, headers=headers)

        assert forged.status_code == 400
        assert forged.get_json()["error"]["code"] == "invalid_signature"
        assert kept is not None
        assert received.status_code == 204
        assert bp.cache.get("acme") is None


def test_the_example_app_refuses_a_forged_webhook_in_the_envelope(
    quiet: Quiet, project: Project, realtyos: ModuleType
) -> None:
    from fastapi.testclient import TestClient

    settings = realtyos.Settings(
        billplane_url=quiet.url,
        billplane_token=project["token"],
        webhook_secret="whsec_" + "a" * 32,
    )
    body, headers = signed("whsec_" + "f" * 32, event_for("acme"))
    with TestClient(realtyos.create_app(settings)) as client:
        refused = client.post("/billplane/webhooks", content=body, headers=headers)

    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_signature"
