"""`billplane demo`: the catalogue it promises, checks to paste that answer as they say against a
real server on the port it was given, and a second run that refuses and changes nothing."""

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

import stripe
from billplane.cli import app as cli
from cli.conftest import json_of, ok, one_line_error
from conftest import ADMIN_TOKEN, fresh_database
from servers import free_port, running_server
from stripe_double import running_double
from stripe_shop import API_KEY, create_price

pytestmark = pytest.mark.e2e


@dataclass
class Demo:
    base_url: str
    database_url: str
    printed: str

    def admin(self, path: str) -> Any:
        response = httpx.get(
            f"{self.base_url}/admin/api/projects/realtyos{path}",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()

    @property
    def token(self) -> str:
        found = re.search(r"^Project token \(for the client API\): (bp_\S+)$", self.printed, re.M)
        assert found, self.printed
        return found.group(1)

    def pasted(self, comment: str) -> str:
        """The command printed under `# refused …` or `# allowed …`."""
        lines = self.printed.splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith(f"# {comment}"))
        return lines[at + 1]


def run_demo(database_url: str, *args: str, **env: str | None) -> Result:
    """`billplane demo` on this database; `env` adds variables (None: removes one)."""
    return CliRunner().invoke(cli, ["demo", *args], env={"DATABASE_URL": database_url, **env})


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    """The demo on a fresh database, told the port a real server (without BILLPLANE_PUBLIC_URL)
    then serves it on."""
    port = free_port()
    with fresh_database(request.param, tmp_path_factory.mktemp("demo")) as url:
        printed = ok(run_demo(url, "--port", str(port), BILLPLANE_ADMIN_TOKEN=ADMIN_TOKEN))
        with running_server(url, ADMIN_TOKEN, port=port) as base_url:
            yield Demo(base_url=base_url, database_url=url, printed=printed)


def test_demo_makes_four_features_of_each_type(demo: Demo) -> None:
    features = demo.admin("/features")["data"]
    by_type: dict[str, list[str]] = {}
    for feature in features:
        by_type.setdefault(feature["type"], []).append(feature["key"])

    assert {t: len(keys) for t, keys in by_type.items()} == {"boolean": 4, "limit": 4, "metered": 4}
    assert {"exports", "listings.publish", "photos.upload", "ai.descriptions", "seats"} <= {
        f["key"] for f in features
    }
    assert all(f["unit"] for f in features if f["type"] != "boolean")


def test_demo_makes_a_free_default_plan_and_a_pro_plan_with_a_placeholder_price(
    demo: Demo,
) -> None:
    plans = {p["key"]: p for p in demo.admin("/plans")["data"]}

    assert set(plans) == {"free", "pro"}
    assert plans["free"]["is_default"] is True
    assert plans["free"]["stripe_price_id"] is None
    assert plans["pro"]["is_default"] is False
    assert plans["pro"]["stripe_price_id"] == "price_demo_pro"
    # Stripe is not configured here: the price is shown as not checked, never as found.
    assert plans["pro"]["stripe"] == {"checked": False, "reason": "Stripe is not configured"}
    assert "price_demo_pro is a placeholder" in demo.printed
    # Pro grants more of every limit than free.
    for key, grant in plans["free"]["features"].items():
        if isinstance(grant, dict):
            assert plans["pro"]["features"][key]["limit"] > grant["limit"], key


def test_demo_puts_tenants_on_free_and_gives_others_pro_grants_by_override(demo: Demo) -> None:
    tenants = demo.admin("/tenants")["data"]
    pro = {p["key"]: p for p in demo.admin("/plans")["data"]}["pro"]["features"]

    on_free = [t["key"] for t in tenants if not t["overrides"]]
    with_pro = [t["key"] for t in tenants if t["overrides"]]
    assert len(on_free) >= 2
    assert len(with_pro) >= 2
    for key in with_pro:
        tenant = next(t for t in tenants if t["key"] == key)
        assert tenant["overrides"] == pro
    # Said as it is: the plan stays free; only Stripe puts a tenant on pro.
    assert "pro's grants as overrides" in demo.printed
    assert "never makes up" in demo.printed
    assert all(demo.admin(f"/tenants/{key}")["plan"] == "free" for key in with_pro)


def _limits(demo: Demo) -> list[tuple[str, str, int, int]]:
    """(tenant, feature, used, limit) for every limited feature of every tenant."""
    found = []
    for tenant in demo.admin("/tenants")["data"]:
        detail = demo.admin(f"/tenants/{tenant['key']}")
        for entry in detail["entitlements"]:
            if entry.get("limit") is not None:
                found.append((tenant["key"], entry["feature"], entry["used"], entry["limit"]))
    return found


def test_demo_leaves_usage_near_and_over_limits(demo: Demo) -> None:
    limits = _limits(demo)

    over = [(t, f) for t, f, used, limit in limits if used > limit]
    at = [(t, f) for t, f, used, limit in limits if used == limit]
    near = [(t, f) for t, f, used, limit in limits if 0.8 * limit <= used < limit]
    assert ("harbor-brokers", "photos.upload") in over
    assert ("harbor-brokers", "listings.publish") in at
    assert len(near) >= 2, limits
    # Tenants on each side: a free tenant and one with pro's grants both near a limit.
    assert {t for t, _ in near} >= {"oak-street", "skyline-estates"}
    assert ("sunny-realty", "listings.publish", 1, 5) in limits


def test_demo_usage_is_recorded_as_events_with_idempotency_keys(demo: Demo) -> None:
    detail = demo.admin("/tenants/harbor-brokers")
    keys = {line["idempotency_key"] for line in detail["recent_usage"]}
    assert "demo-listings.publish-1" in keys

    # The API knows those events: sending one again is answered as a repeat, counted once.
    again = httpx.post(
        f"{demo.base_url}/v1/usage",
        json={
            "tenant": "harbor-brokers",
            "feature": "listings.publish",
            "quantity": 2,
            "idempotency_key": "demo-listings.publish-1",
        },
        headers={"Authorization": f"Bearer {demo.token}"},
        timeout=30,
    )
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    assert again.json()["current"]["used"] == 5


def _curl(command: str) -> dict[str, Any]:
    done = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_the_printed_checks_answer_as_printed_on_the_server_port(demo: Demo) -> None:
    refused, allowed = demo.pasted("refused"), demo.pasted("allowed")
    for command in (refused, allowed):
        assert command.startswith(f"curl -sS -X POST {demo.base_url}/v1/check "), command
        assert demo.token in command

    no = _curl(refused)
    assert no["allowed"] is False
    assert no["reason"] == "limit_reached"
    assert (no["tenant"], no["used"], no["limit"]) == ("harbor-brokers", 5, 5)
    yes = _curl(allowed)
    assert yes["allowed"] is True
    assert (yes["tenant"], yes["remaining"]) == ("sunny-realty", 4)


def test_demo_says_where_the_dashboard_is_and_where_the_admin_token_lives(demo: Demo) -> None:
    assert f"Dashboard: {demo.base_url}/" in demo.printed
    assert "BILLPLANE_ADMIN_TOKEN" in demo.printed
    assert ".env" in demo.printed
    assert ADMIN_TOKEN not in demo.printed
    assert f"{demo.base_url}/builder?project=realtyos" in demo.printed


def test_a_second_demo_refuses_and_changes_nothing(demo: Demo) -> None:
    tenants_before = demo.admin("/tenants")["data"]

    message = one_line_error(run_demo(demo.database_url), 1)

    assert "already has a project 'realtyos'" in message
    assert demo.admin("/tenants")["data"] == tenants_before
    assert len(demo.admin("/tokens")["data"]) == 1  # no second token issued


def test_demo_uses_the_public_url_when_it_is_set(tmp_path: Path) -> None:
    with fresh_database("sqlite", tmp_path) as url:
        printed = ok(
            run_demo(
                url,
                "--port",
                "8100",
                BILLPLANE_PUBLIC_URL="https://billing.example.com/",
                BILLPLANE_ADMIN_TOKEN=None,
            )
        )

    assert "Dashboard: https://billing.example.com/ " in printed
    assert "curl -sS -X POST https://billing.example.com/v1/check " in printed
    assert "8100/" not in printed
    assert "BILLPLANE_ADMIN_TOKEN is not set" in printed


def test_demo_json_gives_a_script_the_token_and_the_checks(tmp_path: Path) -> None:
    with fresh_database("sqlite", tmp_path) as url:
        out = json_of(run_demo(url, "--port", "8100", "--json"))

    assert out["dashboard"] == "http://127.0.0.1:8100/"
    assert out["token"].startswith("bp_")
    assert [p["key"] for p in out["plans"]] == ["free", "pro"]
    refused, allowed = out["checks"]["refused"], out["checks"]["allowed"]
    assert refused["answer"]["allowed"] is False
    assert refused["answer"]["reason"] == "limit_reached"
    assert allowed["answer"]["allowed"] is True
    assert out["token"] in refused["command"]
    assert refused["command"].startswith("curl -sS -X POST http://127.0.0.1:8100/v1/check ")


@pytest.fixture(scope="module")
def stripe_env() -> Iterator[dict[str, str | None]]:
    """Stripe configured, on the Stripe double (it serves prices as Stripe does)."""
    with running_double(webhook_url=None) as double:
        yield {"STRIPE_SECRET_KEY": API_KEY, "STRIPE_API_BASE": double.base_url}


def test_demo_with_stripe_uses_the_price_it_is_given(
    stripe_env: dict[str, str | None], tmp_path: Path
) -> None:
    sdk = stripe.StripeClient(
        API_KEY, base_addresses={"api": str(stripe_env["STRIPE_API_BASE"])}, max_network_retries=0
    )
    price = create_price(sdk, 2900)
    with fresh_database("sqlite", tmp_path) as url:
        out = json_of(run_demo(url, "--json", "--pro-price", price, **stripe_env))
    with fresh_database("sqlite", tmp_path) as url:
        printed = ok(run_demo(url, "--pro-price", price, **stripe_env))

    pro = {p["key"]: p for p in out["plans"]}["pro"]
    assert pro["stripe_price_id"] == price
    assert (pro["stripe"]["found"], pro["stripe"]["usable"]) == (True, True)
    assert pro["stripe"]["amount"] == 2900
    assert f"Stripe price {price}: ok, 29.00 USD per month" in printed
    assert "placeholder" not in printed


def test_demo_with_stripe_and_no_price_says_stripe_has_no_such_price(
    stripe_env: dict[str, str | None], tmp_path: Path
) -> None:
    with fresh_database("sqlite", tmp_path) as url:
        printed = ok(run_demo(url, **stripe_env))

    assert "Stripe price price_demo_pro: problem: Stripe (test mode) has no price" in printed
    assert "price_demo_pro is a placeholder, not a Stripe price" in printed
