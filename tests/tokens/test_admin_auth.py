"""Every admin route answers only to BILLPLANE_ADMIN_TOKEN."""

import re

import fastapi.routing
import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from billplane.app import create_app
from billplane.db import Database
from billplane.settings import Settings
from conftest import ADMIN_TOKEN, Admin, Clock, Setup


def _routes(app: FastAPI) -> list[tuple[str, set[str]]]:
    """Every (path, methods) the app serves, including those of included routers."""
    # FastAPI >= 0.16x keeps included routers as one entry; `iter_route_contexts` flattens them.
    iterate = getattr(fastapi.routing, "iter_route_contexts", lambda routes: routes)
    return [
        (route.path, set(route.methods or ()))
        for route in iterate(app.routes)
        if getattr(route, "path", None) and getattr(route, "methods", None)
    ]


def _admin_routes() -> list[tuple[str, str]]:
    app = create_app(Settings(database_url="sqlite://", billplane_admin_token=ADMIN_TOKEN))
    return [
        (method, re.sub(r"\{[^}]+\}", "x", path))
        for path, methods in _routes(app)
        if path.startswith("/admin/")
        for method in sorted(methods - {"HEAD", "OPTIONS"})
    ]


ADMIN_ROUTES = _admin_routes()


def test_the_admin_api_has_routes_to_protect() -> None:
    paths = {path for _, path in ADMIN_ROUTES}

    assert "/admin/api/projects" in paths
    assert "/admin/api/tokens/x/rotate" in paths
    assert "/admin/api/audit" in paths
    assert len(ADMIN_ROUTES) >= 15


def _assert_401(response: httpx2.Response) -> None:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "unauthorized"
    assert error["message"]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_admin_route_without_a_token_is_401(client: TestClient, method: str, path: str) -> None:
    _assert_401(client.request(method, path))


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_admin_route_with_a_wrong_token_is_401(client: TestClient, method: str, path: str) -> None:
    wrong = {"Authorization": "Bearer " + ADMIN_TOKEN[:-1] + "y"}

    _assert_401(client.request(method, path, headers=wrong))


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_admin_route_with_a_project_token_is_401(realtyos: Setup, method: str, path: str) -> None:
    project_token = {"Authorization": f"Bearer {realtyos.token}"}

    _assert_401(realtyos.api.client.request(method, path, headers=project_token))


def test_admin_token_in_another_scheme_is_401(client: TestClient) -> None:
    _assert_401(
        client.get("/admin/api/projects", headers={"Authorization": f"Token {ADMIN_TOKEN}"})
    )


def test_refused_admin_write_changes_nothing(admin: Admin) -> None:
    response = admin.client.post(
        "/admin/api/projects",
        json={"key": "sneaky", "name": "Sneaky"},
        headers={"Authorization": "Bearer nope"},
    )

    _assert_401(response)
    keys = [p["key"] for p in admin.call("GET", "/admin/api/projects")["data"]]
    assert "sneaky" not in keys


def test_admin_api_is_off_without_an_admin_token(database: Database) -> None:
    app = create_app(Settings(database_url="sqlite://"), db=database)
    with TestClient(app, raise_server_exceptions=False) as off:
        response = off.get("/admin/api/projects", headers={"Authorization": "Bearer "})

    _assert_401(response)


WRONG = {"Authorization": "Bearer " + "w" * 32}


def test_repeated_wrong_admin_tokens_are_answered_429_with_retry_after(
    client: TestClient, clock: Clock
) -> None:
    """The issue's case: 200 wrong admin tokens in a row, each answered in milliseconds."""
    for _ in range(10):
        _assert_401(client.get("/admin/api/projects", headers=WRONG))
        clock.advance(seconds=1)

    refused = client.get("/admin/api/projects", headers=WRONG)

    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_attempts"
    assert refused.headers["retry-after"] == "50"
    # Refused before the token is compared: the right one waits too, then works.
    right = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert client.get("/admin/api/projects", headers=right).status_code == 429
    clock.advance(seconds=50)
    assert client.get("/admin/api/projects", headers=right).status_code == 200


def test_the_login_form_and_the_admin_api_share_one_count(client: TestClient, clock: Clock) -> None:
    """Both guess the same token: five at the form and five at the API use up the ten."""
    for _ in range(5):
        page = client.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        client.post("/login", data={"csrf": csrf.group(1), "token": "w" * 32})
        _assert_401(client.get("/admin/api/projects", headers=WRONG))
    assert client.get("/admin/api/projects", headers=WRONG).status_code == 429


def test_a_missing_token_is_no_guess(client: TestClient) -> None:
    for _ in range(20):
        _assert_401(client.get("/admin/api/projects"))
    right = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert client.get("/admin/api/projects", headers=right).status_code == 200
