"""Stripe trouble is contained: with Stripe unreachable, checks and usage keep working, Stripe
calls answer 503 in plain words, and the secret key appears in no answer and no log line."""

import secrets
from pathlib import Path

import httpx
import pytest

from conftest import ADMIN_TOKEN, fresh_database
from servers import running_server
from stripe_shop import closed_port_url

pytestmark = pytest.mark.e2e

ORIGIN = "https://app.example.test"


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_an_unreachable_stripe_is_contained(
    engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"sk_test_{secrets.token_hex(16)}"
    webhook_secret = f"whsec_{secrets.token_hex(16)}"
    log_file = tmp_path / "server.log"
    monkeypatch.setenv("BP_SERVER_LOG", str(log_file))
    env = {
        "STRIPE_SECRET_KEY": key,
        "STRIPE_API_BASE": closed_port_url(),
        "STRIPE_WEBHOOK_SECRET": webhook_secret,
    }
    answers: list[httpx.Response] = []
    with (
        fresh_database(engine, tmp_path) as url,
        # With the access log, which `serve` leaves off unless asked: it must not leak either.
        running_server(url, ADMIN_TOKEN, extra_env=env, access_log=True) as base_url,
        httpx.Client(base_url=base_url, timeout=60) as http,
    ):
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

        def call(method: str, path: str, body: object, headers: dict[str, str]) -> httpx.Response:
            answer = http.request(method, path, json=body, headers=headers)
            answers.append(answer)
            return answer

        project = call(
            "POST", "/admin/api/projects", {"key": "p", "name": "P", "origins": [ORIGIN]}, admin
        ).json()
        client = {"Authorization": f"Bearer {project['token']}"}
        base = "/admin/api/projects/p"
        call("POST", f"{base}/features", {"key": "reports", "name": "R", "type": "limit"}, admin)
        free = {"key": "free", "name": "Free", "is_default": True}
        call("POST", f"{base}/plans", {**free, "features": {"reports": {"limit": 5}}}, admin)
        pro = call(
            "POST",
            f"{base}/plans",
            {"key": "pro", "name": "Pro", "stripe_price_id": "price_pro"},
            admin,
        )
        call("POST", f"{base}/tenants", {"key": "acme"}, admin)

        # Plans are saved, saying why Stripe could not be asked.
        assert pro.status_code == 201, pro.text
        assert pro.json()["stripe"]["checked"] is False
        assert "could not be reached" in pro.json()["stripe"]["reason"]

        # The paths client apps call before and after a paid action never ask Stripe.
        check = call("POST", "/v1/check", {"tenant": "acme", "feature": "reports"}, client)
        assert (check.status_code, check.json()["allowed"]) == (200, True)
        usage = {"tenant": "acme", "feature": "reports", "idempotency_key": "u1"}
        assert call("POST", "/v1/usage", usage, client).status_code == 201

        # What needs Stripe answers 503, in plain words.
        checkout = call(
            "POST",
            "/v1/checkout",
            {
                "tenant": "acme",
                "plan": "pro",
                "success_url": f"{ORIGIN}/done",
                "cancel_url": f"{ORIGIN}/billing",
            },
            client,
        )
        assert checkout.status_code == 503
        assert checkout.json()["error"]["code"] == "stripe_unavailable"
        assert "could not be reached" in checkout.json()["error"]["message"]
        confirm = call("POST", "/v1/checkout/cs_test_123/confirm", {}, client)
        assert confirm.status_code == 503
        assert confirm.json()["error"]["code"] == "stripe_unavailable"

        sync = call("POST", "/admin/api/stripe/sync", {}, admin)
        assert sync.status_code == 503

    log = log_file.read_text()
    assert "POST /v1/checkout" in log  # the log was captured at all
    for secret in (key, key[8:], webhook_secret):
        assert secret not in log
        for answer in answers:
            assert secret not in answer.text
