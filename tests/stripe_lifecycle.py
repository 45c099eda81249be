"""The subscription lifecycle a real billplane server goes through with the Stripe double: a
project with a Pro plan, two tenants that subscribe, renew, fail a payment, recover, and one
that cancels; and the final state each must reach whatever the delivery. Shared by
tests/stripe/test_webhook_lifecycle_e2e.py (one server) and tests/test_scale_out.py (two
servers behind a load balancer)."""

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

import stripe
from conftest import ADMIN_TOKEN
from stripe_double import StripeDouble
from stripe_shop import API_KEY, create_price, served_with_double

ORIGIN = "https://app.example.test"


@dataclass
class Stack:
    """A real billplane server (or a load balancer in front of several), the double it calls,
    and the double delivering to it."""

    base_url: str
    double: StripeDouble
    sdk: stripe.StripeClient
    admin: httpx.Client


def sdk_of(double: StripeDouble) -> stripe.StripeClient:
    """The official SDK, talking to the double."""
    return stripe.StripeClient(
        API_KEY, base_addresses={"api": double.base_url}, max_network_retries=0
    )


@contextmanager
def served_stack(engine: str, workdir: Path, *, workers: int = 1) -> Iterator[Stack]:
    """A real billplane server (`workers` processes) on a fresh database, with the double."""
    with (
        served_with_double(engine, workdir, workers=workers) as (_, base_url, double),
        httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60
        ) as admin,
    ):
        yield Stack(base_url, double, sdk_of(double), admin)


class Project:
    """A fresh project on the shared server: a free default plan, a Pro plan, two tenants."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.key = f"p{secrets.token_hex(4)}"
        self.subscriptions: dict[str, str] = {}
        created = self._post(
            "/admin/api/projects", {"key": self.key, "name": self.key, "origins": [ORIGIN]}
        )
        self.client_headers = {"Authorization": f"Bearer {created['token']}"}
        base = f"/admin/api/projects/{self.key}"
        self._post(f"{base}/features", {"key": "exports", "name": "Exports", "type": "boolean"})
        self._post(f"{base}/plans", {"key": "free", "name": "Free", "is_default": True})
        price = create_price(stack.sdk, 2000)
        plan = {
            "key": "pro",
            "name": "Pro",
            "stripe_price_id": price,
            "features": {"exports": True},
        }
        assert self._post(f"{base}/plans", plan)["stripe"]["usable"] is True
        for tenant in ("acme", "globex"):
            self._post(f"{base}/tenants", {"key": tenant})

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        answer = self.stack.admin.post(path, json=body)
        assert answer.status_code == 201, answer.text
        return answer.json()

    def subscribe(self, tenant: str) -> str:
        body = {
            "tenant": tenant,
            "plan": "pro",
            "success_url": f"{ORIGIN}/done",
            "cancel_url": f"{ORIGIN}/billing",
        }
        opened = self.stack.admin.post("/v1/checkout", json=body, headers=self.client_headers)
        assert opened.status_code == 200, opened.text
        completed = self.stack.double.complete_checkout(opened.json()["id"])
        self.subscriptions[tenant] = str(completed["subscription"])
        return self.subscriptions[tenant]

    def state(self, tenant: str) -> dict[str, Any]:
        """What the tenant's app and its operator see; ids left out so runs compare."""
        detail = self.stack.admin.get(f"/admin/api/projects/{self.key}/tenants/{tenant}").json()
        check = self.stack.admin.post(
            "/v1/check",
            json={"tenant": tenant, "feature": "exports"},
            headers=self.client_headers,
        )
        invoices = self.stack.admin.get(
            f"/admin/api/projects/{self.key}/tenants/{tenant}/invoices"
        ).json()["data"]
        sub = detail["subscription"]
        return {
            "status": sub["status"] if sub else None,
            "current_period_end": sub["current_period_end"] if sub else None,
            "cancel_at_period_end": sub["cancel_at_period_end"] if sub else None,
            "plan": check.json()["plan"],
            "allowed": check.json()["allowed"],
            "invoices": sorted((i["status"], i["amount_paid"]) for i in invoices),
        }


def lifecycle(project: Project) -> None:
    """Both tenants subscribe, renew, fail a payment and recover; acme then cancels."""
    double = project.stack.double
    subscriptions = [project.subscribe("acme"), project.subscribe("globex")]
    for step in (double.renew, double.fail_payment, double.recover):
        for subscription in subscriptions:
            step(subscription)
    double.cancel(subscriptions[0])


EXPECTED_INVOICES = [("paid", 2000)] * 3


def assert_final(project: Project) -> dict[str, Any]:
    acme, globex = project.state("acme"), project.state("globex")
    assert (acme["status"], acme["plan"], acme["allowed"]) == ("canceled", "free", False)
    assert (globex["status"], globex["plan"], globex["allowed"]) == ("active", "pro", True)
    assert acme["invoices"] == globex["invoices"] == EXPECTED_INVOICES
    for tenant, seen in (("acme", acme), ("globex", globex)):
        found = project.stack.sdk.v1.subscriptions.retrieve(project.subscriptions[tenant])
        end = max(item["current_period_end"] for item in found["items"]["data"])
        assert seen["status"] == found.status
        assert datetime.fromisoformat(seen["current_period_end"]) == datetime.fromtimestamp(
            end, UTC
        )
    failed = project.stack.admin.get("/admin/api/events", params={"outcome": "failed"}).json()
    assert failed["data"] == []
    return {"acme": acme, "globex": globex}
