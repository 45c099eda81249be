"""Browser tests: Debian's Chromium driven by Playwright against a real `billplane serve`.

Playwright's own browser download is never used (`executable_path`); if /usr/bin/chromium is
missing, the setup installs Debian's package when it can (root, as on CI) and fails otherwise.
Screenshots go to a temporary folder, or to $BILLPLANE_SCREENSHOTS (`make screenshots` sets it to
docs/screenshots) to refresh the pictures the README shows.
"""

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from conftest import ADMIN_TOKEN

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The machine has two cores shared with the server under test: be patient, never hurried.
TIMEOUT_MS = 30_000


def _ensure_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail("Debian's Chromium is missing: run `apt-get install -y chromium` (as root).")
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(command, check=True, env=env, capture_output=True, timeout=900)
    assert CHROMIUM.exists(), "apt-get installed chromium, but not at /usr/bin/chromium"


# Per module, not per session: while Playwright's sync API is open, its event loop counts as
# running in this thread, and every later test that calls asyncio.run() would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    _ensure_chromium()
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = browser.new_context(viewport={"width": 1280, "height": 800})
    opened.set_default_timeout(TIMEOUT_MS)
    yield opened
    opened.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("BILLPLANE_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def log_in(page: Page, base_url: str, next_path: str = "/") -> None:
    page.goto(f"{base_url}{next_path}")
    expect(page).to_have_url(f"{base_url}/login?next={next_path.replace('/', '%2F')}")
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base_url}{next_path}")
    # The URL changes when the page starts to load; its deferred scripts (the confirm dialog)
    # run before "load". A click before then is a click on the page without script.
    page.wait_for_load_state("load")


def shoot(page: Page, folder: Path, name: str, *, full_page: bool = False) -> Path:
    """A screenshot, checked to be a real picture of some size. A one-time secret on the page
    is masked: pictures meant for the docs never carry a token, even a throwaway one."""
    path = folder / f"{name}.png"
    secret = page.locator("#one-time-secret")
    page.screenshot(path=str(path), full_page=full_page, mask=[secret], mask_color="#c7d2fe")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    assert len(data) > 10_000, path
    return path
