"""The JavaScript client's own tests (`node --test clients/js/test/`), run against a live billplane
server that this module starts and seeds; node's exit code and TAP summary decide.

Every test there must pass: none may skip (the checkout ones included, against the Stripe double).
"""

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ADMIN_TOKEN
from node_tests import NodeRun

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
JS_TESTS = ROOT / "clients" / "js" / "test"
CHECKOUT_TESTS = {
    "checkout, payment at Stripe, confirm and portal upgrade a tenant",
    "checkout refuses a success URL outside the project's origins",
}
APP_ORIGIN = "https://app.realtyos.test"


@pytest.fixture(scope="module")
def node_run(stripe_billplane: Any, seed: Any) -> NodeRun:
    node = shutil.which("node")
    assert node, "node (v18+) is needed to test the JS client"
    project = seed(
        stripe_billplane.url,
        origins=[APP_ORIGIN],
        pro_price=stripe_billplane.new_price(),
        tenants=("acme", "globex", "initech", "hooli"),
    )
    credits = seed(stripe_billplane.url, origins=[APP_ORIGIN])
    pack = stripe_billplane.new_price(900, monthly=False)
    _sell_credits(stripe_billplane.url, credits["key"], pack)
    env = {
        **os.environ,
        "BILLPLANE_URL": stripe_billplane.url,
        "BILLPLANE_TOKEN": project["token"],
        "BILLPLANE_TENANT_TOKEN": project["tenant_token"],
        "STRIPE_DOUBLE_URL": stripe_billplane.double.base_url,
        "BILLPLANE_APP_ORIGIN": APP_ORIGIN,
        "BILLPLANE_CREDITS_TOKEN": credits["token"],
        "BILLPLANE_CREDIT_PACK": pack,
    }
    done = subprocess.run(
        [node, "--test", "--test-reporter=tap", f"{JS_TESTS}/"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return NodeRun.of(done.returncode, done.stdout + done.stderr)


def _sell_credits(base_url: str, project: str, pack: str) -> None:
    """In the credits tests' own project, `ai.tokens` costs 5 credits of the pool `credits`,
    `pack` sells 500, and `acme` is granted 50 (credits.test.mjs)."""
    with httpx.Client(
        base_url=f"{base_url}/admin/api/projects/{project}",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30,
    ) as admin:
        pool = {
            "key": "credits",
            "name": "Credits",
            "costs": {"ai.tokens": 5},
            "packs": {pack: 500},
        }
        assert admin.post("/credit-pools", json=pool).status_code == 201
        grant = {"pool": "credits", "amount": 50, "reason": "js tests"}
        answer = admin.post("/tenants/acme/credit-grants", json=grant)
        assert answer.status_code == 201, answer.text


def _written_tests() -> set[str]:
    """The names of the tests in clients/js/test/, as written (so none can go missing)."""
    names: set[str] = set()
    for path in JS_TESTS.glob("*.test.mjs"):
        names.update(re.findall(r'^test\("(.+?)"', path.read_text(), re.MULTILINE))
    return names


def test_js_client_passes_its_tests_against_a_live_server(node_run: NodeRun) -> None:
    assert node_run.returncode == 0, node_run.output
    assert node_run.summary["fail"] == 0, node_run.output
    written = _written_tests()
    assert CHECKOUT_TESTS.issubset(written)
    assert len(written) >= 15
    assert node_run.outcomes == dict.fromkeys(written, "ok"), node_run.output
    assert node_run.summary["pass"] == len(written), node_run.output


def test_js_checkout_flow(node_run: NodeRun) -> None:
    for name in CHECKOUT_TESTS:
        assert node_run.outcomes.get(name) == "ok", node_run.output
