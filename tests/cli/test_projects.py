"""`billplane project …` and `billplane feature …`."""

import secrets

from fastapi.testclient import TestClient

from cli.conftest import (
    ADMIN,
    CliProject,
    Run,
    admin_get,
    all_project_keys,
    json_of,
    new_key,
    ok,
    one_line_error,
)


def test_cli_project_create_prints_a_token_once(run: Run) -> None:
    key = new_key()

    created = json_of(run("project", "create", key, "--json"))

    assert created["key"] == key
    assert created["token"].startswith("bp_")
    assert created["token_id"].startswith("tok_")


def test_project_created_by_the_cli_is_served_by_the_server(
    project: CliProject, server: TestClient
) -> None:
    served = admin_get(server, f"/admin/api/projects/{project.key}")

    assert served["name"] == "CLI Co"
    assert served["origins"] == ["https://cli.test"]
    assert project.key in all_project_keys(server)


def test_features_created_by_the_cli_are_served_by_the_server(
    project: CliProject, server: TestClient
) -> None:
    features = admin_get(server, f"/admin/api/projects/{project.key}/features")["data"]

    assert [(f["key"], f["type"], f["unit"]) for f in features] == [
        ("exports", "boolean", None),
        ("listings.publish", "limit", "listing"),
    ]


def test_cli_project_list_shows_the_project(project: CliProject, run: Run) -> None:
    listed = ok(run("project", "list"))

    assert project.key in listed
    assert "https://cli.test" in listed


def test_cli_duplicate_project_is_one_line_and_exit_1(project: CliProject, run: Run) -> None:
    message = one_line_error(run("project", "create", project.key), 1)

    assert "already_exists" in message
    assert project.key in message


def test_cli_feature_in_unknown_project_is_one_line_and_exit_1(run: Run) -> None:
    message = one_line_error(run("feature", "create", new_key("missing"), "exports"), 1)

    assert "project_not_found" in message


def test_cli_refuses_a_project_key_the_api_refuses(run: Run, server: TestClient) -> None:
    key = f"bad key/{secrets.token_hex(2)}"

    message = one_line_error(run("project", "create", key), 2)

    assert message.startswith("error (validation_error): key:")
    assert key not in all_project_keys(server)


def test_cli_refuses_a_project_key_longer_than_the_api_allows(run: Run) -> None:
    message = one_line_error(run("project", "create", "k" * 65), 2)

    assert "key:" in message


def test_cli_refuses_an_origin_that_is_not_a_url(run: Run, server: TestClient) -> None:
    key = new_key()

    message = one_line_error(run("project", "create", key, "--origin", "not a url"), 2)

    assert "origins" in message
    assert server.get(f"/admin/api/projects/{key}", headers=ADMIN).status_code == 404


def test_cli_refuses_a_feature_key_the_api_refuses(
    project: CliProject, run: Run, server: TestClient
) -> None:
    message = one_line_error(run("feature", "create", project.key, "sp ace"), 2)

    assert "key:" in message
    features = admin_get(server, f"/admin/api/projects/{project.key}/features")["data"]
    assert "sp ace" not in [f["key"] for f in features]


def test_cli_refuses_an_unknown_feature_type(project: CliProject, run: Run) -> None:
    message = one_line_error(run("feature", "create", project.key, "x", "--type", "quota"), 2)

    assert "type:" in message
