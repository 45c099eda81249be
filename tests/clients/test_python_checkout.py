"""The Python client's checkout, top-up, confirm and portal calls against a live billplane whose
Stripe is the Stripe double.
"""

import asyncio
from typing import Any

import httpx
import pytest
from billplane_client import (
    AsyncBillplane,
    Billplane,
    CheckoutSession,
    Conflict,
    Entitlements,
    InvalidRequest,
    NotFound,
    PortalSession,
    Topup,
)

from conftest import ADMIN_TOKEN

pytestmark = pytest.mark.e2e

APP = "https://app.realtyos.test"
Project = dict[str, str]


@pytest.fixture(scope="module")
def billplane(stripe_billplane: Any) -> Any:
    return stripe_billplane


@pytest.fixture
def shop(billplane: Any, seed: Any) -> Project:
    """A fresh project whose pro plan sells a real price of the double."""
    return seed(billplane.url, origins=[APP], pro_price=billplane.new_price())  # type: ignore[no-any-return]


def pay(billplane: Any, session: CheckoutSession) -> None:
    """The person pays on Stripe's hosted page (the double's), which sends them back."""
    answer = httpx.post(f"{session.url}/pay", follow_redirects=False, timeout=30)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"].startswith(f"{APP}/billing/success")
    assert session.id in answer.headers["location"]


def test_checkout_confirm_and_portal_upgrade_a_tenant(billplane: Any, shop: Project) -> None:
    with Billplane(billplane.url, shop["token"], timeout=30, cache_ttl=60) as bp:
        before = bp.check("acme", "exports")
        session = bp.checkout(
            "acme", "pro", success_url=f"{APP}/billing/success", cancel_url=f"{APP}/pricing"
        )
        pay(billplane, session)
        upgraded = bp.confirm_checkout(session.id)
        after = bp.check("acme", "exports")
        portal = bp.portal("acme", return_url=f"{APP}/account")
        with pytest.raises(Conflict) as again:
            bp.checkout("acme", "pro", success_url=f"{APP}/s", cancel_url=f"{APP}/c")

    assert (before.allowed, before.reason) == (False, "not_in_plan")
    assert isinstance(session, CheckoutSession)
    assert session.id.startswith("cs_")
    assert isinstance(upgraded, Entitlements)
    assert upgraded.plan == "pro"
    assert upgraded.subscription is not None
    assert upgraded.subscription.status == "active"
    # confirm put the new entitlements in the cache: no stale "free" answer for the TTL.
    assert (after.allowed, after.plan, after.from_cache) == (True, "pro", True)
    assert isinstance(portal, PortalSession)
    assert portal.url.startswith("http")
    assert (again.value.status, again.value.code) == (409, "subscription_exists")


def test_checkout_errors_carry_the_api_codes(billplane: Any, shop: Project) -> None:
    with Billplane(billplane.url, shop["token"], timeout=30) as bp:
        with pytest.raises(InvalidRequest) as elsewhere:
            bp.checkout("acme", "pro", success_url="https://evil.test/", cancel_url=f"{APP}/c")
        with pytest.raises(NotFound) as no_plan:
            bp.checkout("acme", "platinum", success_url=f"{APP}/s", cancel_url=f"{APP}/c")
        with pytest.raises(Conflict) as no_customer:
            bp.portal("globex", return_url=f"{APP}/account")

    assert (elsewhere.value.status, elsewhere.value.code) == (400, "url_not_allowed")
    assert (no_plan.value.status, no_plan.value.code) == (404, "plan_not_found")
    assert (no_customer.value.status, no_customer.value.code) == (409, "no_stripe_customer")


def test_async_client_checkout_and_confirm(billplane: Any, shop: Project) -> None:
    async def scenario() -> tuple[Entitlements, Any]:
        async with AsyncBillplane(billplane.url, shop["token"], timeout=30) as bp:
            session = await bp.checkout(
                "globex", "pro", success_url=f"{APP}/billing/success", cancel_url=f"{APP}/p"
            )
            await asyncio.to_thread(pay, billplane, session)
            upgraded = await bp.confirm_checkout(session.id)
            portal = await bp.portal("globex", return_url=f"{APP}/account")
            return upgraded, portal

    upgraded, portal = asyncio.run(scenario())

    assert (upgraded.tenant, upgraded.plan) == ("globex", "pro")
    assert upgraded.features["exports"].allowed is True
    assert portal.url.startswith("http")


def test_a_topup_sells_a_pack_whose_credits_land_on_confirm(billplane: Any, shop: Project) -> None:
    price = billplane.new_price(900, monthly=False)
    pool = {"key": "credits", "name": "Credits", "packs": {price: 500}}
    created = httpx.post(
        f"{billplane.url}/admin/api/projects/{shop['key']}/credit-pools",
        json=pool,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    with Billplane(billplane.url, shop["token"], timeout=30) as bp:
        topup = bp.topup("acme", price, success_url=f"{APP}/billing/success", cancel_url=APP)
        before = bp.balances("acme").balance("credits")
        pay(billplane, CheckoutSession(topup.id, str(topup.url)))
        bp.confirm_checkout(topup.id)
        bp.confirm_checkout(topup.id)  # a repeat lands nothing more
        after = bp.balances("acme")
        with pytest.raises(NotFound) as unsold:
            bp.topup("acme", "price_notsold", success_url=f"{APP}/s", cancel_url=APP)

    assert isinstance(topup, Topup)
    assert (topup.pool, topup.credits) == ("credits", 500)
    assert topup.id.startswith("cs_")
    assert (before, after.balance("credits")) == (0, 500)
    assert [e.kind for e in after.pool("credits").ledger] == ["topup"]
    assert unsold.value.code == "pool_not_found"
