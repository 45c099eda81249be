"""The builder's snippets, copied from the page of a real server and run as they are — curl in
bash, Python, JavaScript in node — with a real token in `PROJECT_TOKEN`: they work."""

import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ADMIN_TOKEN, fresh_database
from dashboard.conftest import WEBHOOK_SECRET, csrf_of, snippet_of
from servers import free_port, running_server
from stripe_double import StripeDouble, running_double

pytestmark = pytest.mark.e2e

ORIGIN = "https://app.realtyos.test"


class Live:
    def __init__(self, base_url: str, double: StripeDouble, token: str) -> None:
        self.base_url = base_url
        self.double = double
        self.token = token
        self.operator = httpx.Client(base_url=base_url, timeout=60)
        page = self.operator.get("/login").text
        self.operator.post("/login", data={"csrf": csrf_of(page), "token": ADMIN_TOKEN})

    def snippets(self, lang: str, tenant: str = "acme") -> dict[str, str]:
        page = self.operator.get(f"/builder?project=realtyos&tenant={tenant}&lang={lang}")
        assert page.status_code == 200, page.text
        calls = ["check", "usage", "checkout", "portal", "balances", "topup", "reservation"]
        found = {call: snippet_of(page.text, call) for call in calls}
        assert f'"{tenant}"' in found["usage"]
        return found

    def tenant(self, key: str) -> str:
        """A new tenant of realtyos, with nothing used yet."""
        made = httpx.post(
            f"{self.base_url}/admin/api/projects/realtyos/tenants",
            json={"key": key},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=60,
        )
        assert made.status_code == 201, made.text
        return key

    def grant(self, tenant: str, amount: int) -> None:
        granted = httpx.post(
            f"{self.base_url}/admin/api/projects/realtyos/tenants/{tenant}/credit-grants",
            json={"pool": "credits", "amount": amount, "reason": "snippet test"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=60,
        )
        assert granted.status_code == 201, granted.text


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    port = free_port()
    with (
        running_double(webhook_secret=WEBHOOK_SECRET) as double,
        fresh_database(request.param, tmp_path_factory.mktemp("snippets")) as url,
        running_server(
            url,
            ADMIN_TOKEN,
            port=port,
            extra_env={
                "BILLPLANE_PUBLIC_URL": f"http://127.0.0.1:{port}",
                "STRIPE_SECRET_KEY": "sk_test_snippets",
                "STRIPE_API_BASE": double.base_url,
                "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            },
        ) as base_url,
    ):
        live = Live(base_url, double, _seed(base_url, _price(double), _price(double, once=True)))
        yield live
        live.operator.close()


def _price(double: StripeDouble, *, once: bool = False) -> str:
    """A monthly 20.00 USD price, made in the Stripe double (or a one-time one: a credit pack)."""
    with httpx.Client(
        base_url=double.base_url, headers={"Authorization": "Bearer sk_test_snippets"}
    ) as stripe:
        product = stripe.post("/v1/products", data={"name": "Pro"}).json()["id"]
        fields = {"product": product, "unit_amount": "2000", "currency": "usd"}
        recurring = {} if once else {"recurring[interval]": "month"}
        price = stripe.post("/v1/prices", data={**fields, **recurring})
        return str(price.json()["id"])


def _seed(base_url: str, price: str, pack: str) -> str:
    """realtyos: a limit feature, a metered one priced in the pool `credits` (which sells `pack`
    as 500), a free default plan with both, a pro plan on `price`, tenant acme."""
    free = {"listings.publish": {"limit": 5, "reset": "month"}, "render.minutes": True}
    pool = {"key": "credits", "name": "Credits", "costs": {"render.minutes": RENDER_COST}}
    steps: list[tuple[str, dict[str, Any]]] = [
        ("features", {"key": "listings.publish", "name": "Listings", "type": "limit"}),
        ("features", {"key": "render.minutes", "name": "Renders", "type": "metered"}),
        ("plans", {"key": "free", "name": "Free", "is_default": True, "features": free}),
        ("plans", {"key": "pro", "name": "Pro", "stripe_price_id": price}),
        ("tenants", {"key": "acme"}),
        ("credit-pools", {**pool, "packs": {pack: 500}}),
    ]
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as admin:
        body = {"key": "realtyos", "name": "R", "origins": [ORIGIN]}
        project = admin.post("/admin/api/projects", json=body)
        assert project.status_code == 201, project.text
        for path, step in steps:
            made = admin.post(f"/admin/api/projects/realtyos/{path}", json=step)
            assert made.status_code == 201, made.text
    return str(project.json()["token"])


def run(live: Live, lang: str, code: str, tmp_path: Path) -> tuple[int, dict[str, Any]]:
    """Run a snippet as pasted, with the token in PROJECT_TOKEN; (HTTP status, JSON answer)."""
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "PROJECT_TOKEN": live.token}
    if lang == "curl":
        command = ["bash", "-c", code + " -w '\\n%{http_code}'"]
    elif lang == "python":
        command = [sys.executable, "-c", code]
    else:
        module = tmp_path / "snippet.mjs"
        module.write_text(code)
        command = ["node", str(module)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (lang, done.stderr)
    return _answer(lang, done.stdout)


def _answer(lang: str, out: str) -> tuple[int, dict[str, Any]]:
    if lang == "curl":
        body, status = out.rsplit("\n", 1)
        return int(status), json.loads(body)
    # The Python and JS snippets print "<status> <result>" (Python's dict repr, JS's JSON).
    status, rest = out.strip().split(" ", 1)
    if lang == "python":
        return int(status), ast.literal_eval(rest)
    return int(status), json.loads(rest)


LIMIT = 5  # listings.publish on the free plan of `_seed`
RENDER_COST = 3  # credits one render.minutes costs in `_seed`


@pytest.mark.parametrize("lang", ["curl", "python", "js"])
def test_pasting_the_usage_snippet_again_and_again_reaches_the_limit(
    live: Live, lang: str, tmp_path: Path
) -> None:
    tenant = live.tenant(f"paste-{lang}")
    code = live.snippets(lang, tenant=tenant)
    status, checked = run(live, lang, code["check"], tmp_path)
    assert status == 200
    assert checked["allowed"] is True
    assert checked["feature"] == "listings.publish"
    assert (checked["used"], checked["limit"]) == (0, LIMIT)
    # Each paste is a new action with a fresh key: each one counts.
    for paste in range(1, LIMIT + 1):
        status, recorded = run(live, lang, code["usage"], tmp_path)
        assert status == 201, (paste, recorded)
        assert recorded["duplicate"] is False
        assert recorded["used"] == paste
    status, refused = run(live, lang, code["usage"], tmp_path)
    assert status == 402, refused
    assert refused["error"]["code"] == "limit_reached"
    status, checked = run(live, lang, code["check"], tmp_path)
    assert (checked["allowed"], checked["used"]) == (False, LIMIT)


# How the app puts its own id for the action in each language's snippet.
OWN_ID = {
    "curl": (r'^ACTION_ID=".*$', 'ACTION_ID="listing-8812"'),
    "python": (r"^action_id = .*$", 'action_id = "listing-8812"'),
    "js": (r"^const actionId = .*$", 'const actionId = "listing-8812";'),
}


@pytest.mark.parametrize("lang", ["curl", "python", "js"])
def test_the_same_action_sent_twice_counts_once(live: Live, lang: str, tmp_path: Path) -> None:
    tenant = live.tenant(f"retry-{lang}")
    pattern, own = OWN_ID[lang]
    code, replaced = re.subn(pattern, own, live.snippets(lang, tenant=tenant)["usage"], flags=re.M)
    assert replaced == 1, code
    status, first = run(live, lang, code, tmp_path)
    assert (status, first["duplicate"], first["used"]) == (201, False, 1)
    status, again = run(live, lang, code, tmp_path)
    assert (status, again["duplicate"], again["used"]) == (200, True, 1)


@pytest.mark.parametrize("lang", ["curl", "python", "js"])
def test_checkout_and_portal_snippets_work_as_pasted(live: Live, lang: str, tmp_path: Path) -> None:
    code = live.snippets(lang)
    assert '"pro"' in code["checkout"]
    status, opened = run(live, lang, code["checkout"], tmp_path)
    assert status == 200, opened
    assert opened["id"].startswith("cs_")
    assert opened["url"].startswith("http")
    # Checkout made acme a Stripe customer, so the portal opens for it.
    status, portal = run(live, lang, code["portal"], tmp_path)
    assert status == 200, portal
    assert portal["url"].startswith("http")


@pytest.mark.parametrize("lang", ["curl", "python", "js"])
def test_credit_snippets_show_balances_hold_credits_and_open_a_top_up(
    live: Live, lang: str, tmp_path: Path
) -> None:
    tenant = live.tenant(f"credits-{lang}")
    live.grant(tenant, 10)
    code = live.snippets(lang, tenant=tenant)
    status, before = run(live, lang, code["balances"], tmp_path)
    assert status == 200, before
    assert [(p["pool"], p["balance"]) for p in before["pools"]] == [("credits", 10)]
    # Each paste holds for a new action: three fit in 10 credits at 3 each, the fourth does not.
    for paste in range(1, 4):
        status, held = run(live, lang, code["reservation"], tmp_path)
        assert status == 201, (paste, held)
        assert (held["status"], held["amount"], held["balance"]) == ("held", 3, 10 - 3 * paste)
    status, refused = run(live, lang, code["reservation"], tmp_path)
    assert status == 402, refused
    assert refused["error"]["code"] == "insufficient_credits"
    status, opened = run(live, lang, code["topup"], tmp_path)
    assert status == 200, opened
    assert opened["id"].startswith("cs_")
    assert (opened["pool"], opened["credits"]) == ("credits", 500)
