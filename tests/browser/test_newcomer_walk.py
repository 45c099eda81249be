"""A newcomer's first walk, in a real browser, on a server that is not on port 8000 and has no
BILLPLANE_PUBLIC_URL: log in, follow the overview's checklist by its links to a tenant, copy the
check snippet with its Copy button, run it as pasted, record usage up to the limit with the
copied usage snippet, and see the same check refused."""

import json
import os
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from browser.conftest import log_in
from conftest import ADMIN_TOKEN, fresh_database
from servers import free_port, running_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    port = free_port()
    assert port != 8000
    with pytest.MonkeyPatch.context() as patch:
        # The snippets must name the port the server answers on, not a configured URL.
        patch.delenv("BILLPLANE_PUBLIC_URL", raising=False)
        with (
            fresh_database(request.param, tmp_path_factory.mktemp("walk")) as url,
            running_server(url, ADMIN_TOKEN, port=port) as base_url,
        ):
            yield base_url


def take_next_step(page: Page, title: str) -> None:
    """Back to the overview by the sidebar, then the highlighted next step's link."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Overview").click()
    step = page.get_by_test_id("next-step")
    expect(step).to_contain_text(f"Next: {title}", ignore_case=True)
    step.get_by_role("link").click()


def copy(page: Page, call: str) -> str:
    """Click the Copy button of a snippet; what the clipboard then holds."""
    button = page.get_by_role("button", name=f"Copy the {call} snippet")
    button.click()
    expect(button).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert isinstance(copied, str)
    return copied


def run_pasted(snippet: str, token: str) -> dict[str, Any]:
    """The snippet run as a person pastes it into bash, with PROJECT_TOKEN set; its JSON answer."""
    done = subprocess.run(
        ["bash", "-c", snippet],
        env={"PATH": os.environ["PATH"], "PROJECT_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, (snippet, done.stderr)
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_newcomer_goes_from_login_to_a_refused_check_with_copied_snippets(
    context: BrowserContext, page: Page, server: str
) -> None:
    base = server
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    log_in(page, base)
    expect(page.get_by_test_id("next-step")).to_contain_text("Create a project")

    take_next_step(page, "Create a project")
    expect(page).to_have_url(f"{base}/projects#new-project")
    page.get_by_label("Key").fill("realtyos")
    page.get_by_label("Name").fill("RealtyOS")
    page.get_by_role("button", name="Create project").click()
    token = page.locator("#one-time-secret").inner_text()
    assert re.fullmatch(r"bp_[A-Za-z0-9_-]{40,}", token)

    take_next_step(page, "Define a feature")
    expect(page).to_have_url(f"{base}/projects/realtyos#new-feature")
    form = page.locator("#new-feature")
    form.get_by_label("Key").fill("listings.publish")
    form.get_by_label("Name").fill("Published listings")
    form.get_by_label("Type").select_option("limit")
    form.get_by_label("Unit").fill("listing")
    form.get_by_role("button", name="Add feature").click()
    expect(page.get_by_role("status")).to_have_text("Feature listings.publish added.")

    take_next_step(page, "Create a plan")
    expect(page).to_have_url(f"{base}/projects/realtyos/plans#new-plan")
    page.get_by_label("Key").fill("free")
    page.get_by_label("Name").fill("Free")
    expect(page.get_by_label("Default plan")).to_be_checked()
    page.locator('[id="plan-grant-listings.publish"]').check()
    page.locator('[id="plan-limit-listings.publish"]').fill("1")
    page.get_by_role("button", name="Create plan").click()
    expect(page.locator('[data-plan="free"]')).to_contain_text("1 / month")

    take_next_step(page, "Add a tenant")
    expect(page).to_have_url(f"{base}/projects/realtyos/tenants#new-tenant")
    page.get_by_label("Key").fill("acme")
    page.get_by_label("Name").fill("Acme Realty")
    page.get_by_role("button", name="Add tenant").click()
    expect(page.locator('[data-tenant="acme"]')).to_contain_text("0 / 1")

    take_next_step(page, "First check from a client app")
    expect(page).to_have_url(f"{base}/builder?project=realtyos")
    page.get_by_label("Tenant").select_option("acme")
    page.get_by_label("Feature").select_option("listings.publish")
    page.get_by_role("button", name="Update snippets").click()
    page.get_by_role("navigation", name="Language").get_by_role("link", name="curl").click()

    check = copy(page, "check")
    assert check == page.locator("#snippet-check").inner_text()
    # The port the server really answers on, and the token left to the environment.
    assert f"{base}/v1/check" in check
    assert "127.0.0.1:8000" not in check
    assert "$PROJECT_TOKEN" in check
    assert token not in check
    allowed = run_pasted(check, token)
    assert allowed["allowed"] is True
    assert (allowed["reason"], allowed["used"], allowed["limit"]) == ("ok", 0, 1)

    usage = copy(page, "usage")
    assert f"{base}/v1/usage" in usage
    recorded = run_pasted(usage, token)
    assert recorded["recorded"] is True
    assert (recorded["used"], recorded["remaining"]) == (1, 0)
    # Pasted once more, it counts nothing: either the same key again (a repeat) or a fresh key
    # refused at the limit (the builder may make a key per action).
    again = run_pasted(usage, token)
    assert again.get("duplicate") is True or again["error"]["code"] == "limit_reached", again

    refused = run_pasted(check, token)
    assert refused["allowed"] is False
    assert refused["reason"] == "limit_reached"
    assert (refused["used"], refused["limit"], refused["remaining"]) == (1, 1, 0)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Overview").click()
    expect(page.locator('[data-item="first_check"]')).to_have_attribute("data-state", "done")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tenants").click()
    expect(page.locator('[data-tenant="acme"]')).to_contain_text("1 / 1")
    assert token not in page.content()
