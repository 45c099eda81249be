"""`/docs` and `/redoc` render in a real browser that can reach nothing but billplane itself."""

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route, expect

from conftest import ADMIN_TOKEN, fresh_database
from servers import running_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # The pages never read the database: one engine is enough.
    with (
        fresh_database("sqlite", tmp_path_factory.mktemp("docs")) as url,
        running_server(url, ADMIN_TOKEN) as base_url,
    ):
        yield base_url


def offline(page: Page, base_url: str) -> list[tuple[str, str]]:
    """Cut `page` off from every host but billplane's; returns the requests it refused, each
    as (resource type, URL)."""
    refused: list[tuple[str, str]] = []
    own = urlsplit(base_url).netloc

    def only_billplane(route: Route) -> None:
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            refused.append((route.request.resource_type, route.request.url))
            route.abort()

    page.route("**/*", only_billplane)
    return refused


def test_swagger_ui_renders_every_client_call_offline(page: Page, server: str) -> None:
    refused = offline(page, server)
    page.goto(f"{server}/docs")
    expect(page.locator('.opblock-summary-path[data-path="/v1/check"]')).to_be_visible()
    expect(page.locator('.opblock-summary-path[data-path="/v1/usage/batch"]')).to_be_visible()
    assert refused == []


def test_redoc_renders_the_api_offline(page: Page, server: str) -> None:
    refused = offline(page, server)
    page.goto(f"{server}/redoc")
    expect(page.get_by_role("heading", name="Can this tenant do this?").first).to_be_visible()
    # ReDoc's sidebar shows its maker's logo from their CDN: only that picture stays blank.
    assert [kind for kind, _ in refused] in ([], ["image"]), refused
