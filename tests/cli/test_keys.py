"""`billplane keys …`: a rotation made by the CLI is the server's at its next snapshot, and the
CLI lists the keys as the admin API does."""

from collections.abc import Iterator

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from billplane.app import create_app
from billplane.cli import app as cli
from billplane.settings import Settings
from cli.conftest import CliProject, admin_get, json_of, one_line_error
from conftest import ADMIN_TOKEN

SECRET = "cli-tests-secret-" + "k" * 32


def keys(database_url: str, *args: str, secret: str | None = SECRET) -> Result:
    env = {"DATABASE_URL": database_url}
    if secret is not None:
        env["BILLPLANE_SECRET_KEY"] = secret
    return CliRunner().invoke(cli, ["keys", *args], env=env)


@pytest.fixture(scope="module")
def signing_app(database_url: str) -> Iterator[FastAPI]:
    """A server on the CLI's database that signs with the same secret."""
    settings = Settings(
        database_url=database_url, billplane_admin_token=ADMIN_TOKEN, billplane_secret_key=SECRET
    )
    app = create_app(settings)
    yield app
    app.state.db.dispose()


def test_keys_rotate_makes_the_key_the_server_signs_with_next(
    database_url: str, project: CliProject, signing_app: FastAPI
) -> None:
    first = json_of(keys(database_url, "rotate", "--json"))
    second = json_of(keys(database_url, "rotate", "--json"))

    assert second["retired"]["kid"] == first["key"]["kid"]
    assert second["retired"]["published_until"] is not None
    with TestClient(signing_app) as server:
        response = server.get(
            "/v1/tenants/acme/entitlements",
            headers={"Authorization": f"Bearer {project.token}", "Accept": "application/jwt"},
        )
        assert response.status_code == 200, response.text
        assert jwt.get_unverified_header(response.text)["kid"] == second["key"]["kid"]
        listed = json_of(keys(database_url, "list", "--json"))
        assert listed == admin_get(server, "/admin/api/signing-keys")
        assert [k["kid"] for k in listed["data"][:2]] == [second["key"]["kid"], first["key"]["kid"]]


def test_keys_rotate_without_the_secret_key_is_one_line_naming_it(database_url: str) -> None:
    message = one_line_error(keys(database_url, "rotate", secret=None), 1)

    assert message.startswith("error (signing_not_configured): ")
    assert "BILLPLANE_SECRET_KEY" in message
