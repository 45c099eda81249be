"""Shared by billplane's Stripe tests: constants, a price maker, and `Shop`, the test's view
of a project that sells a Pro plan through the Stripe double."""

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

import stripe
from conftest import ADMIN_TOKEN, Admin, Client, fresh_database
from factories import Seed
from servers import free_port, running_server
from stripe_double import StripeDouble, running_double

API_KEY = "sk_test_billplane_stripe_tests"
WEBHOOK_SECRET = "whsec_billplane_stripe_tests"
ORIGIN = "https://app.realtyos.test"
SUCCESS_URL = f"{ORIGIN}/billing/done"
CANCEL_URL = f"{ORIGIN}/billing"


@contextmanager
def served_with_double(
    engine: str, workdir: Path, *, workers: int = 1
) -> Iterator[tuple[str, str, StripeDouble]]:
    """A fresh database on `engine`, the Stripe double, and a real billplane server that the
    double signs and posts its events to: (database URL, server URL, double)."""
    with (
        fresh_database(engine, workdir) as url,
        running_double(webhook_url=None, webhook_secret=WEBHOOK_SECRET) as double,
    ):
        env = {
            "STRIPE_SECRET_KEY": API_KEY,
            "STRIPE_API_BASE": double.base_url,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
        with running_server(url, ADMIN_TOKEN, workers=workers, extra_env=env) as base_url:
            # The double learns billplane's URL once billplane is up.
            double.set_webhook(f"{base_url}/webhooks/stripe", WEBHOOK_SECRET)
            yield url, base_url, double


def create_price(
    sdk: stripe.StripeClient,
    amount: int = 2000,
    *,
    currency: str = "usd",
    interval: str | None = "month",
    name: str = "Pro",
) -> str:
    params: dict[str, Any] = {
        "product_data": {"name": name},
        "unit_amount": amount,
        "currency": currency,
    }
    if interval:
        params["recurring"] = {"interval": interval}
    return sdk.v1.prices.create(params=params).id  # type: ignore[arg-type]


@dataclass
class Shop:
    """A project selling a Pro plan through the double: the test's view of everything."""

    admin: Admin
    seed: Seed
    api: Client
    token: str
    double: StripeDouble
    sdk: stripe.StripeClient
    client: TestClient
    pro_price: str

    def checkout(self, tenant: str = "acme", plan: str = "pro", **extra: Any) -> Any:
        body = {"tenant": tenant, "plan": plan, "success_url": SUCCESS_URL}
        return self.api.post("/v1/checkout", {**body, "cancel_url": CANCEL_URL, **extra})

    def subscribe(self, tenant: str = "acme") -> str:
        """Checkout opened and paid (no webhook delivered yet); the subscription id."""
        opened = self.checkout(tenant)
        assert opened.status_code == 200, opened.text
        return str(self.double.complete_checkout(opened.json()["id"])["subscription"])

    def deliver(self, event: Any, *, secret: str = WEBHOOK_SECRET, **kwargs: Any) -> Any:
        payload, header = self.double.signed(event, secret=secret, **kwargs)
        return self.client.post(
            "/webhooks/stripe",
            content=payload,
            headers={"Stripe-Signature": header, "Content-Type": "application/json"},
        )

    def deliver_all(self, types: set[str] | None = None) -> list[Any]:
        """Every event the double emitted so far (of `types`), in order, each must be 200."""
        answers = []
        for event in self.double.events():
            if types is None or event["type"] in types:
                answer = self.deliver(event)
                assert answer.status_code == 200, answer.text
                answers.append(answer.json())
        return answers

    def check(self, feature: str = "exports", tenant: str = "acme") -> Any:
        answer = self.api.post("/v1/check", {"tenant": tenant, "feature": feature})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def tenant(self, key: str = "acme") -> Any:
        return self.admin.call("GET", f"/admin/api/projects/realtyos/tenants/{key}")

    def events(self, **params: Any) -> list[Any]:
        return self.admin.call("GET", "/admin/api/events", params=params)["data"]  # type: ignore[no-any-return]

    def audit(self) -> list[Any]:
        answer = self.admin.call("GET", "/admin/api/audit", params={"project": "realtyos"})
        return answer["data"]  # type: ignore[no-any-return]


_held: list[socket.socket] = []


def closed_port_url() -> str:
    """A local URL nothing listens on, nor can while the tests run: Stripe, unreachable.

    The port stays bound (never listening) for the rest of the process, so no server started
    later, by this test session or another one on the machine, can take it and answer."""
    port = free_port()
    held = socket.socket()
    held.bind(("127.0.0.1", port))
    _held.append(held)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
    return f"http://127.0.0.1:{port}"
