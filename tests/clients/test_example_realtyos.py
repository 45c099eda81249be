"""The realtyos example app (examples/realtyos/app.py) driven against a live billplane whose Stripe
is the Stripe double: a gated and counted paid action, the upgrade page, and the upgrade button
through checkout, and a pack of credits bought through Stripe and spent by an AI action.
"""

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from billplane_client import Billplane
from fastapi.testclient import TestClient

from conftest import ADMIN_TOKEN

pytestmark = pytest.mark.e2e

APP_FILE = Path(__file__).resolve().parents[2] / "examples" / "realtyos" / "app.py"
PUBLIC_URL = "https://app.realtyos.test"
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
API = {"Accept": "application/json"}


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("realtyos_example", APP_FILE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def realtyos() -> ModuleType:
    return load_example()


@pytest.fixture
def shop(stripe_billplane: Any, seed: Any) -> dict[str, str]:
    project: dict[str, str] = seed(
        stripe_billplane.url, origins=[PUBLIC_URL], pro_price=stripe_billplane.new_price()
    )
    return project


@pytest.fixture
def app(realtyos: ModuleType, stripe_billplane: Any, shop: dict[str, str]) -> Iterator[TestClient]:
    settings = realtyos.Settings(
        billplane_url=stripe_billplane.url, billplane_token=shop["token"], public_url=PUBLIC_URL
    )
    with TestClient(realtyos.create_app(settings), base_url=PUBLIC_URL) as client:
        yield client


def signed_in(app: TestClient, tenant: str) -> TestClient:
    assert app.get(f"/login?tenant={tenant}", follow_redirects=False).status_code == 303
    return app


def published(billplane_url: str, token: str, tenant: str) -> int | None:
    with Billplane(billplane_url, token, cache_ttl=0) as bp:
        return bp.entitlements(tenant).features["listings.publish"].used


def test_publishing_is_gated_and_counted_once_per_listing(
    app: TestClient, stripe_billplane: Any, shop: dict[str, str]
) -> None:
    api = signed_in(app, "acme")
    ids = [api.post("/api/listings", json={"title": f"House {n}"}).json()["id"] for n in range(4)]

    first = [api.post(f"/listings/{i}/publish", headers=API) for i in ids[:2]]
    again = api.post(f"/listings/{ids[0]}/publish", headers=API)
    missing = api.post("/listings/999999/publish", headers=API)
    last = api.post(f"/listings/{ids[2]}/publish", headers=API)
    refused = api.post(f"/listings/{ids[3]}/publish", headers=API)

    assert [a.status_code for a in first] == [200, 200]
    assert [a.json()["remaining"] for a in first] == [2, 1]
    assert again.status_code == 200  # the same listing again: counted once (see the total)
    assert missing.status_code == 404  # the action failed: nothing counted
    assert (last.status_code, last.json()["remaining"]) == (200, 0)
    assert refused.status_code == 402
    assert refused.json()["error"]["code"] == "payment_required"
    assert refused.json()["error"]["reason"] == "limit_reached"
    assert published(stripe_billplane.url, shop["token"], "acme") == 3


def test_a_page_request_for_a_pro_feature_goes_to_the_upgrade_page(app: TestClient) -> None:
    browser = signed_in(app, "acme")

    api = browser.get("/exports/listings.csv", headers=API)
    page = browser.get("/exports/listings.csv", headers=BROWSER, follow_redirects=False)
    upgrade = browser.get(page.headers["location"], headers=BROWSER)

    assert api.status_code == 402
    assert api.json()["error"]["upgrade_url"] == "/upgrade?feature=exports"
    assert (page.status_code, page.headers["location"]) == (303, "/upgrade?feature=exports")
    assert upgrade.status_code == 200
    assert 'action="/billing/checkout"' in upgrade.text
    assert "Upgrade to Pro" in upgrade.text


def test_the_dashboard_shows_plan_usage_and_the_upgrade_button(app: TestClient) -> None:
    browser = signed_in(app, "globex")
    browser.post("/listings", data={"title": "Loft"}, headers=BROWSER)

    page = browser.get("/", headers=BROWSER)

    assert page.status_code == 200
    assert "plan <b>free</b>" in page.text
    assert "0 of 3" in page.text
    assert "Loft" in page.text
    assert 'action="/billing/checkout"' in page.text


def test_the_upgrade_button_runs_checkout_and_unlocks_the_pro_feature(
    app: TestClient, stripe_billplane: Any
) -> None:
    browser = signed_in(app, "globex")

    to_stripe = browser.post("/billing/checkout", headers=BROWSER, follow_redirects=False)
    checkout_page = httpx.get(to_stripe.headers["location"], timeout=30)
    paid = httpx.post(f"{to_stripe.headers['location']}/pay", timeout=30)
    back = urlsplit(paid.headers["location"])
    confirmed = browser.get(f"{back.path}?{back.query}", headers=BROWSER, follow_redirects=False)
    export = browser.get("/exports/listings.csv", headers=BROWSER)
    dashboard = browser.get("/", headers=BROWSER)
    to_portal = browser.post("/billing/checkout", headers=BROWSER, follow_redirects=False)

    assert to_stripe.status_code == 303
    assert checkout_page.status_code == 200
    assert "Pay" in checkout_page.text
    assert paid.status_code == 303
    assert f"{back.scheme}://{back.netloc}{back.path}" == f"{PUBLIC_URL}/billing/success"
    assert (confirmed.status_code, confirmed.headers["location"]) == (303, "/?upgraded=1")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert "plan <b>pro</b>" in dashboard.text
    assert 'action="/billing/portal"' in dashboard.text
    # Already subscribed: the button leads to the customer portal instead of a second checkout.
    assert to_portal.status_code == 303
    assert "/_double/portal/" in to_portal.headers["location"]


PACK = 500  # credits the pack sells; one AI token costs one credit


@pytest.fixture
def credit_app(
    realtyos: ModuleType, stripe_billplane: Any, shop: dict[str, str]
) -> Iterator[TestClient]:
    """The app selling a pack of credits, which its AI descriptions (`ai.tokens`) spend."""
    pack = stripe_billplane.new_price(900, monthly=False)
    pool = {"key": "credits", "name": "Credits", "costs": {"ai.tokens": 1}, "packs": {pack: PACK}}
    created = httpx.post(
        f"{stripe_billplane.url}/admin/api/projects/{shop['key']}/credit-pools",
        json=pool,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    settings = realtyos.Settings(
        billplane_url=stripe_billplane.url,
        billplane_token=shop["token"],
        public_url=PUBLIC_URL,
        credit_pack=pack,
    )
    with TestClient(realtyos.create_app(settings), base_url=PUBLIC_URL) as client:
        yield client


def test_a_credit_pack_is_bought_through_stripe_and_spent_by_an_ai_description(
    credit_app: TestClient, realtyos: ModuleType
) -> None:
    browser = signed_in(credit_app, "acme")
    listing = browser.post("/api/listings", json={"title": "Loft"}).json()["id"]

    broke = browser.post(f"/listings/{listing}/describe", headers=API)
    empty = browser.get("/", headers=BROWSER)
    to_stripe = browser.post("/billing/credits", headers=BROWSER, follow_redirects=False)
    paid = httpx.post(f"{to_stripe.headers['location']}/pay", timeout=30)
    back = urlsplit(paid.headers["location"])
    confirmed = browser.get(f"{back.path}?{back.query}", headers=BROWSER, follow_redirects=False)
    bought = browser.get("/", headers=BROWSER)
    described = browser.post(f"/listings/{listing}/describe", headers=API)
    again = browser.post(f"/listings/{listing}/describe", headers=API)
    after = browser.get("/", headers=BROWSER)

    assert broke.status_code == 402
    assert broke.json()["error"]["code"] == "insufficient_credits"
    assert broke.json()["error"]["cost"] == realtyos.DESCRIBE_ESTIMATE
    assert "Credits: <b>0</b>" in empty.text
    assert 'action="/billing/credits"' in empty.text
    assert to_stripe.status_code == 303
    assert paid.status_code == 303
    assert (confirmed.status_code, confirmed.headers["location"]) == (303, "/?upgraded=1")
    assert f"Credits: <b>{PACK}</b>" in bought.text
    assert described.status_code == 200, described.text
    spent = described.json()["credits_spent"]
    # Held the estimate, paid what the description used: fewer credits than held.
    assert 0 < spent < realtyos.DESCRIBE_ESTIMATE
    assert spent == len(described.json()["description"].split())
    assert described.json()["balance"] == PACK - spent
    # The same listing described again is the same action: charged once.
    assert (again.status_code, again.json()["balance"]) == (200, PACK - spent)
    assert f"Credits: <b>{PACK - spent}</b>" in after.text
