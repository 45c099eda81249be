"""The `billplane` CLI administers the same database the server serves.

These tests commit real rows into the package's own database (the CLI owns its transactions),
so every key is random. A server on the same database tells what the CLI's commits look like
through the admin API.
"""

import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from billplane.app import create_app
from billplane.cli import app as cli
from billplane.settings import Settings
from conftest import ADMIN_TOKEN, fresh_database
from factories import SECRET_KEY

Run = Callable[..., Result]
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def new_key(prefix: str = "cli") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@pytest.fixture(scope="package", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The CLI tests' own database: the CLI commits for real, and what it leaves must not reach
    the session's shared database, where other tests expect to find only their own rows."""
    with fresh_database(request.param, tmp_path_factory.mktemp("cli")) as url:
        yield url


def invoke(database_url: str, *args: str) -> Result:
    env = {"DATABASE_URL": database_url, "BILLPLANE_SECRET_KEY": SECRET_KEY}
    return CliRunner().invoke(cli, list(args), env=env)


@pytest.fixture
def run(database_url: str) -> Run:
    def invoke_here(*args: str) -> Result:
        return invoke(database_url, *args)

    return invoke_here


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result.stdout


def json_of(result: Result) -> Any:
    return json.loads(ok(result))


def one_line_error(result: Result, exit_code: int) -> str:
    """The failure is one line on stderr, a chosen exit code, and no traceback."""
    assert result.exit_code == exit_code, (result.stdout, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    return lines[0]


def table_of(result: Result) -> list[dict[str, str]]:
    """A table the CLI printed, as one dict per row by its (upper-case) headers."""
    header, *lines = ok(result).splitlines()
    starts = [i for i, ch in enumerate(header) if ch != " " and (i == 0 or header[i - 1] == " ")]
    names = header.split()
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    return [
        {name: line[start:end].strip() for name, (start, end) in zip(names, bounds, strict=True)}
        for line in lines
    ]


def record_of(result: Result) -> dict[str, str]:
    """A key/value view the CLI printed (up to its first blank line), as a dict."""
    view = ok(result).split("\n\n", 1)[0]
    return dict(line.split(None, 1) for line in view.splitlines() if "  " in line)


@pytest.fixture(scope="package")
def server_app(database_url: str) -> Iterator[FastAPI]:
    """A server on the same database, without the test-session override: it sees only commits.
    One for the package: the tests only read through it (see `apps` for what a new app costs)."""
    app = create_app(
        Settings(
            database_url=database_url,
            billplane_admin_token=ADMIN_TOKEN,
            billplane_secret_key=SECRET_KEY,
        )
    )
    yield app
    app.state.db.dispose()


@pytest.fixture
def server(server_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(server_app, raise_server_exceptions=False) as client:
        yield client


@dataclass
class CliProject:
    key: str
    token: str
    token_id: str


@pytest.fixture
def project(run: Run) -> CliProject:
    """A project built only through the CLI: features, a free default plan, a pro plan, a tenant."""
    key = new_key()
    created = json_of(
        run("project", "create", key, "--name", "CLI Co", "--origin", "https://cli.test/", "--json")
    )
    ok(run("feature", "create", key, "exports", "--type", "boolean"))
    ok(run("feature", "create", key, "listings.publish", "--type", "limit", "--unit", "listing"))
    ok(run("plan", "create", key, "free", "--default", "--feature", "listings.publish=5/month"))
    ok(
        run(
            "plan",
            "create",
            key,
            "pro",
            "--price",
            f"price_{secrets.token_hex(4)}",
            "--feature",
            "exports",
            "--feature",
            "listings.publish=50/day",
        )
    )
    ok(run("tenant", "create", key, "acme", "--name", "Acme", "--email", "ops@acme.test"))
    return CliProject(key=key, token=created["token"], token_id=created["token_id"])


def check(
    server: TestClient, token: str, tenant: str = "acme", feature: str = "listings.publish"
) -> httpx2.Response:
    return server.post(
        "/v1/check",
        json={"tenant": tenant, "feature": feature},
        headers={"Authorization": f"Bearer {token}"},
    )


def admin_get(server: TestClient, path: str) -> Any:
    response = server.get(path, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def all_project_keys(server: TestClient) -> list[str]:
    """Every project key the server lists, page by page (other tests leave projects behind)."""
    keys: list[str] = []
    while True:
        after = f"&starting_after={keys[-1]}" if keys else ""
        page = admin_get(server, f"/admin/api/projects?limit=100{after}")
        keys += [p["key"] for p in page["data"]]
        if not page["has_more"]:
            return keys
