"""An operator's first visit, in a real browser: from an empty server to a tenant answered by a
first check, each step taken from "What to do next" with the token the dashboard showed once."""

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from browser.conftest import log_in, shoot
from conftest import ADMIN_TOKEN, fresh_database
from servers import free_port, running_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def empty_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    port = free_port()
    public = {"BILLPLANE_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    with (
        fresh_database(request.param, tmp_path_factory.mktemp("journey")) as url,
        running_server(url, ADMIN_TOKEN, port=port, extra_env=public) as base_url,
    ):
        yield base_url


def follow_next_step(page: Page, base_url: str, title: str) -> None:
    """On the overview, the highlighted next step is `title`: take its action link."""
    page.goto(f"{base_url}/")
    step = page.get_by_test_id("next-step")
    expect(step).to_contain_text(f"Next: {title}", ignore_case=True)
    step.get_by_role("link").click()


def test_operator_goes_from_an_empty_server_to_a_first_check(
    page: Page, empty_server: str, screenshots: Path
) -> None:
    base = empty_server
    log_in(page, base)
    expect(page.locator('[data-item="project"]')).to_have_attribute("data-state", "open")

    follow_next_step(page, base, "Create a project")
    expect(page).to_have_url(f"{base}/projects#new-project")
    page.get_by_label("Key").fill("realtyos")
    page.get_by_label("Name").fill("RealtyOS")
    page.get_by_label("Origins").fill("https://app.realtyos.test")
    page.get_by_role("button", name="Create project").click()
    secret = page.locator("#one-time-secret").inner_text()
    assert re.fullmatch(r"bp_[A-Za-z0-9_-]{40,}", secret)

    follow_next_step(page, base, "Define a feature")
    form = page.locator("#new-feature")
    form.get_by_label("Key").fill("listings.publish")
    form.get_by_label("Name").fill("Published listings")
    form.get_by_label("Type").select_option("limit")
    form.get_by_label("Unit").fill("listing")
    form.get_by_role("button", name="Add feature").click()
    expect(page.get_by_role("status")).to_have_text("Feature listings.publish added.")

    follow_next_step(page, base, "Create a plan")
    page.get_by_label("Key").fill("free")
    page.get_by_label("Name").fill("Free")
    expect(page.get_by_label("Default plan")).to_be_checked()  # the first plan: the free default
    page.locator('[id="plan-grant-listings.publish"]').check()
    page.locator('[id="plan-limit-listings.publish"]').fill("3")
    page.get_by_role("button", name="Create plan").click()
    expect(page.locator('[data-plan="free"]')).to_contain_text("3 / month")

    follow_next_step(page, base, "Add a tenant")
    page.get_by_label("Key").fill("acme")
    page.get_by_label("Name").fill("Acme Realty")
    page.get_by_role("button", name="Add tenant").click()
    expect(page.locator('[data-tenant="acme"]')).to_contain_text("0 / 3")

    follow_next_step(page, base, "First check from a client app")
    expect(page.locator("#snippet-check")).to_contain_text(f"{base}/v1/check")

    # The client app, with the token the dashboard showed once.
    answer = httpx.post(
        f"{base}/v1/check",
        json={"tenant": "acme", "feature": "listings.publish"},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=60,
    )
    assert answer.status_code == 200
    assert answer.json()["allowed"] is True

    page.goto(f"{base}/")
    for item in ["project", "feature", "plan", "tenant", "first_check"]:
        expect(page.locator(f'[data-item="{item}"]')).to_have_attribute("data-state", "done")
    expect(page.get_by_test_id("next-step")).to_contain_text("Stripe key set and valid")
    assert secret not in page.content()
    shoot(page, screenshots, "overview")

    page.goto(f"{base}/projects/realtyos/tenants")
    shoot(page, screenshots, "tenants")
    page.goto(f"{base}/builder?project=realtyos&lang=js")
    shoot(page, screenshots, "api-call-builder")
    page.goto(f"{base}/projects/realtyos/plans")
    shoot(page, screenshots, "plans")
