"""The `billplane` CLI administers the same database the server serves.

These tests commit real rows into the session's test database (the CLI owns its transactions),
so every key is random.
"""

import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from billplane.app import create_app
from billplane.cli import app as cli
from billplane.settings import Settings
from conftest import ADMIN_TOKEN, fresh_database

Run = Callable[..., Result]
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _key(prefix: str = "cli") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """This module's own database: the CLI commits for real, and what it leaves must not reach
    the session's shared database, where other tests expect to find only their own rows."""
    with fresh_database(request.param, tmp_path_factory.mktemp("cli")) as url:
        yield url


def _invoke(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"DATABASE_URL": database_url})


@pytest.fixture
def run(database_url: str) -> Run:
    def invoke(*args: str) -> Result:
        return _invoke(database_url, *args)

    return invoke


def _ok(result: Result) -> str:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result.stdout


def _json(result: Result) -> Any:
    return json.loads(_ok(result))


def _one_line_error(result: Result, exit_code: int) -> str:
    """The failure is one line on stderr, a chosen exit code, and no traceback."""
    assert result.exit_code == exit_code, (result.stdout, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    return lines[0]


@pytest.fixture
def server(database_url: str) -> Iterator[TestClient]:
    """A server on the same database, without the test-session override: it sees only commits."""
    app = create_app(Settings(database_url=database_url, billplane_admin_token=ADMIN_TOKEN))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    app.state.db.dispose()


@dataclass
class CliProject:
    key: str
    token: str
    token_id: str


@pytest.fixture
def project(run: Run) -> CliProject:
    """A project built only through the CLI: features, a free default plan, a pro plan, a tenant."""
    key = _key()
    created = _json(
        run("project", "create", key, "--name", "CLI Co", "--origin", "https://cli.test/")
    )
    _ok(run("feature", "create", key, "exports", "--type", "boolean"))
    _ok(run("feature", "create", key, "listings.publish", "--type", "limit", "--unit", "listing"))
    _ok(run("plan", "create", key, "free", "--default", "--feature", "listings.publish=5/month"))
    _ok(
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
    _ok(run("tenant", "create", key, "acme", "--name", "Acme", "--email", "ops@acme.test"))
    return CliProject(key=key, token=created["token"], token_id=created["token_id"])


def _check(
    server: TestClient, token: str, tenant: str = "acme", feature: str = "listings.publish"
) -> httpx2.Response:
    return server.post(
        "/v1/check",
        json={"tenant": tenant, "feature": feature},
        headers={"Authorization": f"Bearer {token}"},
    )


def _admin_get(server: TestClient, path: str) -> Any:
    response = server.get(path, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def _all_project_keys(server: TestClient) -> list[str]:
    """Every project key the server lists, page by page (other tests leave projects behind)."""
    keys: list[str] = []
    while True:
        after = f"&starting_after={keys[-1]}" if keys else ""
        page = _admin_get(server, f"/admin/api/projects?limit=100{after}")
        keys += [p["key"] for p in page["data"]]
        if not page["has_more"]:
            return keys


def test_cli_project_create_prints_a_token_once(run: Run) -> None:
    key = _key()

    created = _json(run("project", "create", key))

    assert created["key"] == key
    assert created["token"].startswith("bp_")
    assert created["token_id"].startswith("tok_")


def test_project_created_by_the_cli_is_served_by_the_server(
    project: CliProject, server: TestClient
) -> None:
    served = _admin_get(server, f"/admin/api/projects/{project.key}")

    assert served["name"] == "CLI Co"
    assert served["origins"] == ["https://cli.test"]
    assert project.key in _all_project_keys(server)


def test_features_created_by_the_cli_are_served_by_the_server(
    project: CliProject, server: TestClient
) -> None:
    features = _admin_get(server, f"/admin/api/projects/{project.key}/features")["data"]

    assert [(f["key"], f["type"], f["unit"]) for f in features] == [
        ("exports", "boolean", None),
        ("listings.publish", "limit", "listing"),
    ]


def test_plans_created_by_the_cli_are_served_by_the_server(
    project: CliProject, server: TestClient
) -> None:
    plans = _admin_get(server, f"/admin/api/projects/{project.key}/plans")["data"]

    by_key = {p["key"]: p for p in plans}
    assert by_key["free"]["is_default"] is True
    assert by_key["free"]["stripe_price_id"] is None
    assert by_key["free"]["features"] == {"listings.publish": {"limit": 5, "reset": "month"}}
    assert by_key["pro"]["stripe_price_id"].startswith("price_")
    assert by_key["pro"]["features"] == {
        "exports": True,
        "listings.publish": {"limit": 50, "reset": "day"},
    }


def test_tenant_created_by_the_cli_is_served_by_the_server(
    project: CliProject, server: TestClient
) -> None:
    detail = _admin_get(server, f"/admin/api/projects/{project.key}/tenants/acme")

    assert detail["name"] == "Acme"
    assert detail["email"] == "ops@acme.test"
    assert detail["plan"] == "free"


def test_token_printed_by_the_cli_is_accepted_by_the_server(
    project: CliProject, server: TestClient
) -> None:
    response = _check(server, project.token)

    assert response.status_code == 200, response.text
    assert response.json()["allowed"] is True
    assert response.json()["limit"] == 5


def test_tenant_token_created_by_the_cli_is_scoped_on_the_server(
    project: CliProject, run: Run, server: TestClient
) -> None:
    _ok(run("tenant", "create", project.key, "globex"))

    issued = _json(run("token", "create", project.key, "--name", "acme app", "--tenant", "acme"))

    assert issued["token"].startswith(issued["prefix"])
    assert _check(server, issued["token"], tenant="acme").status_code == 200
    other = _check(server, issued["token"], tenant="globex")
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "forbidden"
    tokens = _admin_get(server, f"/admin/api/projects/{project.key}/tokens")["data"]
    assert {t["id"]: t["tenant"] for t in tokens}[issued["id"]] == "acme"


def test_cli_token_rotate_takes_effect_on_the_server(
    project: CliProject, run: Run, server: TestClient
) -> None:
    assert _check(server, project.token).status_code == 200

    rotated = _json(run("token", "rotate", project.token_id))

    assert rotated["id"] == project.token_id
    assert rotated["token"] != project.token
    assert _check(server, project.token).status_code == 401
    assert _check(server, rotated["token"]).status_code == 200


def test_server_rotation_takes_effect_for_a_cli_token(
    project: CliProject, server: TestClient
) -> None:
    response = server.post(f"/admin/api/tokens/{project.token_id}/rotate", headers=ADMIN)

    assert response.status_code == 200, response.text
    assert _check(server, project.token).status_code == 401
    assert _check(server, response.json()["token"]).status_code == 200


def test_cli_token_revoke_takes_effect_on_the_server(
    project: CliProject, run: Run, server: TestClient
) -> None:
    assert _check(server, project.token).status_code == 200

    _ok(run("token", "revoke", project.token_id))

    refused = _check(server, project.token)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    tokens = _admin_get(server, f"/admin/api/projects/{project.key}/tokens")["data"]
    assert tokens[0]["revoked_at"] is not None


def test_cli_actions_are_audited_as_cli_without_secrets(
    project: CliProject, run: Run, server: TestClient
) -> None:
    rotated = _json(run("token", "rotate", project.token_id))

    entries = _admin_get(server, f"/admin/api/audit?project={project.key}")["data"]

    assert {e["actor"] for e in entries} == {"cli"}
    assert [e["action"] for e in reversed(entries)] == [
        "project.create",
        "token.create",
        "feature.create",
        "feature.create",
        "plan.create",
        "plan.create",
        "tenant.create",
        "token.rotate",
    ]
    trail = json.dumps(entries)
    assert project.token not in trail
    assert rotated["token"] not in trail


def test_cli_lists_show_rows_the_server_created(
    project: CliProject, run: Run, server: TestClient
) -> None:
    created = server.post(
        f"/admin/api/projects/{project.key}/tenants", json={"key": "from-server"}, headers=ADMIN
    )
    assert created.status_code == 201, created.text

    listed = _ok(run("tenant", "list", project.key))

    assert "from-server" in listed
    assert "acme" in listed


def test_cli_plan_list_shows_grants(project: CliProject, run: Run) -> None:
    listed = _ok(run("plan", "list", project.key))

    assert "listings.publish=5/month" in listed
    assert "exports, listings.publish=50/day" in listed


def test_cli_project_list_shows_the_project(project: CliProject, run: Run) -> None:
    listed = _ok(run("project", "list"))

    assert project.key in listed
    assert "https://cli.test" in listed


def test_cli_duplicate_project_is_one_line_and_exit_1(project: CliProject, run: Run) -> None:
    message = _one_line_error(run("project", "create", project.key), 1)

    assert "already_exists" in message
    assert project.key in message


def test_cli_feature_in_unknown_project_is_one_line_and_exit_1(run: Run) -> None:
    message = _one_line_error(run("feature", "create", _key("missing"), "exports"), 1)

    assert "project_not_found" in message


def test_cli_plan_with_unknown_feature_is_one_line_and_creates_nothing(
    project: CliProject, run: Run, server: TestClient
) -> None:
    message = _one_line_error(
        run("plan", "create", project.key, "team", "--price", "price_team", "--feature", "sso"), 1
    )

    assert "feature_not_found" in message
    plans = _admin_get(server, f"/admin/api/projects/{project.key}/plans")["data"]
    assert "team" not in [p["key"] for p in plans]


def test_cli_rotating_an_unknown_token_is_one_line_and_exit_1(database_url: str) -> None:
    message = _one_line_error(_invoke(database_url, "token", "rotate", "tok_nope"), 1)

    assert "token_not_found" in message


def test_cli_token_for_unknown_tenant_is_one_line_and_exit_1(project: CliProject, run: Run) -> None:
    message = _one_line_error(run("token", "create", project.key, "--tenant", "nobody"), 1)

    assert "tenant_not_found" in message


def test_cli_refuses_a_project_key_the_api_refuses(run: Run, server: TestClient) -> None:
    key = f"bad key/{secrets.token_hex(2)}"

    message = _one_line_error(run("project", "create", key), 2)

    assert message.startswith("error (validation_error): key:")
    assert key not in _all_project_keys(server)


def test_cli_refuses_a_project_key_longer_than_the_api_allows(run: Run) -> None:
    message = _one_line_error(run("project", "create", "k" * 65), 2)

    assert "key:" in message


def test_cli_refuses_an_origin_that_is_not_a_url(run: Run, server: TestClient) -> None:
    key = _key()

    message = _one_line_error(run("project", "create", key, "--origin", "not a url"), 2)

    assert "origins" in message
    assert server.get(f"/admin/api/projects/{key}", headers=ADMIN).status_code == 404


def test_cli_refuses_a_feature_key_the_api_refuses(
    project: CliProject, run: Run, server: TestClient
) -> None:
    message = _one_line_error(run("feature", "create", project.key, "sp ace"), 2)

    assert "key:" in message
    features = _admin_get(server, f"/admin/api/projects/{project.key}/features")["data"]
    assert "sp ace" not in [f["key"] for f in features]


def test_cli_refuses_an_unknown_feature_type(project: CliProject, run: Run) -> None:
    message = _one_line_error(run("feature", "create", project.key, "x", "--type", "quota"), 2)

    assert "type:" in message


def test_cli_refuses_a_grant_with_an_unknown_reset(
    project: CliProject, run: Run, server: TestClient
) -> None:
    message = _one_line_error(
        run(
            "plan",
            "create",
            project.key,
            "team",
            "--price",
            "price_t",
            "--feature",
            "listings.publish=5/weekly",
        ),
        2,
    )

    assert "reset" in message
    plans = _admin_get(server, f"/admin/api/projects/{project.key}/plans")["data"]
    assert "team" not in [p["key"] for p in plans]


def test_cli_refuses_a_grant_that_is_not_a_number(project: CliProject, run: Run) -> None:
    message = _one_line_error(
        run(
            "plan", "create", project.key, "team", "--price", "price_t", "--feature", "exports=lots"
        ),
        2,
    )

    assert "exports=lots" in message


def test_cli_refuses_a_tenant_key_the_api_refuses(
    project: CliProject, run: Run, server: TestClient
) -> None:
    message = _one_line_error(run("tenant", "create", project.key, "a/b"), 2)

    assert "key:" in message
    tenants = _admin_get(server, f"/admin/api/projects/{project.key}/tenants")["data"]
    assert [t["key"] for t in tenants] == ["acme"]


def test_cli_refuses_a_malformed_email(project: CliProject, run: Run) -> None:
    message = _one_line_error(run("tenant", "create", project.key, "globex", "--email", "nope"), 2)

    assert "email" in message


def test_cli_refuses_an_empty_token_name(project: CliProject, run: Run) -> None:
    message = _one_line_error(run("token", "create", project.key, "--name", ""), 2)

    assert "name" in message


def test_malformed_database_url_scheme_is_one_sentence_and_exit_2() -> None:
    result = CliRunner().invoke(cli, ["project", "list"], env={"DATABASE_URL": "mysql://db/x"})

    message = _one_line_error(result, 2)
    assert "DATABASE_URL" in message
    assert message.endswith(".")


def test_database_url_with_a_bad_port_is_one_sentence_and_exit_2() -> None:
    url = "postgresql://billing:hunter2@db.internal:notaport/billplane"

    result = CliRunner().invoke(cli, ["project", "list"], env={"DATABASE_URL": url})

    message = _one_line_error(result, 2)
    assert "DATABASE_URL" in message
    assert "hunter2" not in result.stderr


def test_malformed_sqlite_url_is_one_sentence_and_exit_2() -> None:
    result = CliRunner().invoke(cli, ["project", "list"], env={"DATABASE_URL": "sqlite://relative"})

    message = _one_line_error(result, 2)
    assert "DATABASE_URL" in message


def test_malformed_database_url_stops_db_upgrade_too() -> None:
    result = CliRunner().invoke(
        cli, ["db", "upgrade"], env={"DATABASE_URL": "postgresql://u@h:notaport/x"}
    )

    _one_line_error(result, 2)


def test_unreachable_database_is_one_line_without_the_password() -> None:
    url = "postgresql://billing:hunter2@127.0.0.1:1/billplane"

    result = CliRunner().invoke(cli, ["project", "list"], env={"DATABASE_URL": url})

    message = _one_line_error(result, 1)
    assert message.startswith("error (database): postgresql://127.0.0.1:1/billplane")
    assert "hunter2" not in result.stderr


def test_serve_refuses_a_malformed_database_url_in_one_sentence_without_the_password() -> None:
    import subprocess
    import sys
    from pathlib import Path

    billplane = Path(sys.executable).parent / "billplane"
    result = subprocess.run(
        [str(billplane), "serve"],
        env={"DATABASE_URL": "postgresql://u:hunter2secret@db:notaport/x", "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "billplane cannot start: DATABASE_URL is not a valid database URL."
    )
    assert "hunter2secret" not in result.stdout + result.stderr


def _command_paths(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if hasattr(command, "commands"):  # a group (Typer's own click, not `click.Group`)
        for name, sub in sorted(command.commands.items()):
            yield from _command_paths(sub, (*path, name))


COMMAND_PATHS = list(_command_paths(typer.main.get_command(cli)))


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda path: " ".join(path) or "billplane")
def test_every_commands_help_works(path: tuple[str, ...]) -> None:
    """`--help` of every command in the tree answers its usage (a help string is Rich markup:
    one stray `[/...]` in it used to crash `plan create --help`)."""
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert len(COMMAND_PATHS) > 10  # the tree was walked, not just its root


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("STRIPE_SECRET_KEY", "hello"),
        ("STRIPE_SECRET_KEY", "pk_test_51Hx9publishable"),  # the publishable key in its place
        ("STRIPE_SECRET_KEY", "sk_test_51Hx9 with a space"),
        ("STRIPE_WEBHOOK_SECRET", "sk_test_51Hx9secret"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_"),
        ("STRIPE_PUBLISHABLE_KEY", "sk_live_51Hx9secret"),
    ],
)
def test_a_stripe_key_of_the_wrong_kind_stops_the_start_in_one_sentence(
    setting: str, value: str
) -> None:
    result = CliRunner().invoke(cli, ["project", "list"], env={setting: value})

    message = _one_line_error(result, 2)
    assert message.startswith(f"billplane cannot start: {setting} must be a Stripe key")
    assert f"'{value}'" not in message  # a key of the wrong kind may still be a secret
