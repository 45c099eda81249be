"""The dashboard as a person uses it, in a real browser: rotating a token, copying a snippet,
a phone-sized screen, the keyboard alone, and form errors beside their fields."""

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from browser.conftest import log_in, shoot
from conftest import ADMIN_TOKEN, fresh_database
from servers import free_port, running_server

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


class Server:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def project(self) -> tuple[str, str]:
        """A fresh project with a limit feature, a free plan and tenant acme: (key, token)."""
        key = f"p{secrets.token_hex(3)}"
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=60) as admin:
            made = admin.post(
                "/admin/api/projects",
                json={"key": key, "name": key.upper(), "origins": ["https://app.example.com"]},
            )
            assert made.status_code == 201, made.text
            free = {"listings.publish": {"limit": 3, "reset": "month"}}
            steps: list[tuple[str, dict[str, Any]]] = [
                ("features", {"key": "listings.publish", "name": "Listings", "type": "limit"}),
                ("plans", {"key": "free", "name": "Free", "is_default": True, "features": free}),
                ("tenants", {"key": "acme", "name": "Acme"}),
            ]
            for path, body in steps:
                response = admin.post(f"/admin/api/projects/{key}/{path}", json=body)
                assert response.status_code == 201, response.text
        return key, str(made.json()["token"])

    def check(self, token: str) -> int:
        response = httpx.post(
            f"{self.base_url}/v1/check",
            json={"tenant": "acme", "feature": "listings.publish"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        return response.status_code


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    port = free_port()
    public = {"BILLPLANE_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    with (
        fresh_database(request.param, tmp_path_factory.mktemp("browser")) as url,
        running_server(url, ADMIN_TOKEN, port=port, extra_env=public) as base_url,
    ):
        yield Server(base_url)


def test_rotating_a_token_shows_the_new_one_once(
    page: Page, server: Server, screenshots: Path
) -> None:
    key, old = server.project()
    log_in(page, server.base_url, f"/projects/{key}")
    row = page.locator("tr[data-token]").filter(has_text="default")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Rotate").click()
    revealed = page.locator("#one-time-secret")
    expect(revealed).to_be_visible()
    new = revealed.inner_text()
    assert new.startswith("bp_")
    assert new != old
    expect(page.get_by_role("alert")).to_contain_text("rotated")
    shoot(page, screenshots, "token-shown-once")
    assert server.check(old) == 401
    assert server.check(new) == 200
    page.reload()
    expect(page.locator("#one-time-secret")).to_have_count(0)
    assert new not in page.content()


def watch(page: Page) -> tuple[list[str], list[str]]:
    """(the POSTs the page sends, the errors its console shows, CSP refusals among them)."""
    posts: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return posts, errors


@pytest.mark.parametrize(("button", "after"), [("Revoke", "revoked"), ("Rotate", "rotated")])
def test_revoke_and_rotate_ask_in_a_dialog_and_a_no_changes_nothing(
    page: Page, server: Server, button: str, after: str
) -> None:
    key, token = server.project()
    log_in(page, server.base_url, f"/projects/{key}")
    posts, errors = watch(page)
    asked: list[str] = []
    row = page.locator("tr[data-token]").filter(has_text="default")

    def dismiss(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    row.get_by_role("button", name=button).click()
    assert len(asked) == 1
    assert asked[0].startswith(f"{button} token “default” ({token[:12]}…)? ")
    assert "stop working at once" in asked[0]
    page.wait_for_load_state("networkidle")
    assert posts == []  # declined: the form was never sent
    expect(page).to_have_url(f"{server.base_url}/projects/{key}")
    assert server.check(token) == 200

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name=button).click()
    expect(page.locator(".flash, #secret").first).to_contain_text(after)
    assert [url.rsplit("/", 1)[1] for url in posts] == [button.lower()]
    assert server.check(token) == 401
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_without_script_revoking_asks_on_a_page_first(browser: Any, server: Server) -> None:
    key, token = server.project()
    without_script = browser.new_context(java_script_enabled=False)
    try:
        page = without_script.new_page()
        log_in(page, server.base_url, f"/projects/{key}")
        row = page.locator("tr[data-token]").filter(has_text="default")
        row.get_by_role("button", name="Revoke").click()
        expect(page.get_by_role("heading", level=2)).to_have_text(
            f"Revoke token “default” ({token[:12]}…)?"
        )
        assert server.check(token) == 200  # one click asked; it did not revoke
        page.get_by_role("link", name="Cancel").click()
        expect(page).to_have_url(f"{server.base_url}/projects/{key}#tokens")
        assert server.check(token) == 200

        row.get_by_role("button", name="Revoke").click()
        page.get_by_role("button", name="Revoke token").click()
        expect(page.get_by_role("status")).to_contain_text("revoked")
        assert server.check(token) == 401
    finally:
        without_script.close()


def test_a_token_is_on_no_page_after_it_was_shown(page: Page, server: Server) -> None:
    key, _ = server.project()
    log_in(page, server.base_url, "/projects")
    page.get_by_label("Key").fill(f"{key}x")
    page.get_by_label("Name").fill("Shown once")
    page.get_by_role("button", name="Create project").click()
    secret = page.locator("#one-time-secret").inner_text()
    for path in ["/", "/projects", f"/projects/{key}x", "/builder", "/webhook", "/plans"]:
        page.goto(server.base_url + path)
        assert secret not in page.content(), path


def test_the_copy_button_copies_the_snippet(
    context: BrowserContext, page: Page, server: Server
) -> None:
    key, _ = server.project()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base_url)
    log_in(page, server.base_url, "/builder")
    page.goto(f"{server.base_url}/builder?project={key}&lang=python")
    snippet = page.locator("#snippet-check").inner_text()
    assert "os.environ['PROJECT_TOKEN']" in snippet
    assert f"{server.base_url}/v1/check" in snippet
    button = page.locator('[data-copy="snippet-check"]')
    button.click()
    expect(button).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == snippet


PAGES = [
    "/",
    "/projects",
    "/projects/{key}",
    "/projects/{key}/plans",
    "/projects/{key}/plans/free",
    "/projects/{key}/tenants",
    "/projects/{key}/tenants/acme",
    "/builder",
    "/webhook",
]


def test_every_page_fits_a_phone_screen(browser: Any, server: Server, screenshots: Path) -> None:
    key, _ = server.project()
    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = phone.new_page()
        log_in(page, server.base_url)
        for path in PAGES:
            page.goto(server.base_url + path.format(key=key))
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, (path, overflow)
        page.goto(server.base_url + "/")
        shoot(page, screenshots, "overview-phone")
    finally:
        phone.close()


def test_a_tenant_can_be_added_with_the_keyboard_alone(page: Page, server: Server) -> None:
    key, _ = server.project()
    log_in(page, server.base_url, f"/projects/{key}/tenants")
    for _ in range(80):  # Tab through the page, as a keyboard user does, to the form's first field
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "tenant-key":
            break
    else:
        pytest.fail("Tab never reached the tenant key field")
    page.keyboard.type("globex")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "tenant-name"
    page.keyboard.type("Globex Corp")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Tenant globex added.")
    expect(page.locator('[data-tenant="globex"]')).to_contain_text("Globex Corp")


def test_form_errors_show_beside_their_fields(page: Page, server: Server) -> None:
    key, _ = server.project()
    log_in(page, server.base_url, f"/projects/{key}/plans")
    page.get_by_label("Key").fill("pro plan")
    page.locator('[id="plan-grant-listings.publish"]').check()
    page.locator('[id="plan-limit-listings.publish"]').fill("lots")
    page.get_by_role("button", name="Create plan").click()

    key_field = page.locator(".field").filter(has=page.locator("#plan-key"))
    expect(key_field.locator(".field-error")).to_contain_text("letters, digits")
    expect(page.locator("#plan-key")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#plan-key")).to_have_value("pro plan")
    name_field = page.locator(".field").filter(has=page.locator("#plan-name"))
    expect(name_field.locator(".field-error")).to_have_text("Required.")
    grant = page.locator(".grant").filter(has=page.locator('[id="plan-limit-listings.publish"]'))
    expect(grant.locator(".field-error")).to_have_text("Enter a whole number.")
    # Each message sits right under its own field, not in a list at the top.
    box = page.locator("#plan-key").bounding_box()
    error = key_field.locator(".field-error").bounding_box()
    assert box
    assert error
    assert 0 <= error["y"] - (box["y"] + box["height"]) < 40
