"""`billplane token …`: a token the CLI prints works on the server, and the reverse."""

import json

from fastapi.testclient import TestClient

from cli.conftest import (
    ADMIN,
    CliProject,
    Run,
    admin_get,
    check,
    invoke,
    json_of,
    ok,
    one_line_error,
    record_of,
    table_of,
)


def test_token_printed_by_the_cli_is_accepted_by_the_server(
    project: CliProject, server: TestClient
) -> None:
    response = check(server, project.token)

    assert response.status_code == 200, response.text
    assert response.json()["allowed"] is True
    assert response.json()["limit"] == 5


def test_tenant_token_created_by_the_cli_is_scoped_on_the_server(
    project: CliProject, run: Run, server: TestClient
) -> None:
    ok(run("tenant", "create", project.key, "globex"))

    issued = json_of(
        run("token", "create", project.key, "--name", "acme app", "--tenant", "acme", "--json")
    )

    assert issued["token"].startswith(issued["prefix"])
    assert check(server, issued["token"], tenant="acme").status_code == 200
    other = check(server, issued["token"], tenant="globex")
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "forbidden"
    tokens = admin_get(server, f"/admin/api/projects/{project.key}/tokens")["data"]
    assert {t["id"]: t["tenant"] for t in tokens}[issued["id"]] == "acme"


def test_cli_token_rotate_takes_effect_on_the_server(
    project: CliProject, run: Run, server: TestClient
) -> None:
    assert check(server, project.token).status_code == 200

    rotated = json_of(run("token", "rotate", project.token_id, "--json"))

    assert rotated["id"] == project.token_id
    assert rotated["token"] != project.token
    assert check(server, project.token).status_code == 401
    assert check(server, rotated["token"]).status_code == 200


def test_server_rotation_takes_effect_for_a_cli_token(
    project: CliProject, server: TestClient
) -> None:
    response = server.post(f"/admin/api/tokens/{project.token_id}/rotate", headers=ADMIN)

    assert response.status_code == 200, response.text
    assert check(server, project.token).status_code == 401
    assert check(server, response.json()["token"]).status_code == 200


def test_cli_token_revoke_takes_effect_on_the_server(
    project: CliProject, run: Run, server: TestClient
) -> None:
    assert check(server, project.token).status_code == 200

    ok(run("token", "revoke", project.token_id))

    refused = check(server, project.token)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    tokens = admin_get(server, f"/admin/api/projects/{project.key}/tokens")["data"]
    assert tokens[0]["revoked_at"] is not None


def test_cli_rotating_an_unknown_token_is_one_line_and_exit_1(database_url: str) -> None:
    message = one_line_error(invoke(database_url, "token", "rotate", "tok_nope"), 1)

    assert "token_not_found" in message


def test_cli_token_for_unknown_tenant_is_one_line_and_exit_1(project: CliProject, run: Run) -> None:
    message = one_line_error(run("token", "create", project.key, "--tenant", "nobody"), 1)

    assert "tenant_not_found" in message


def test_cli_refuses_an_empty_token_name(project: CliProject, run: Run) -> None:
    message = one_line_error(run("token", "create", project.key, "--name", ""), 2)

    assert "name" in message


def test_token_create_without_json_shows_the_secret_once_in_a_view(
    project: CliProject, run: Run, server: TestClient
) -> None:
    result = run("token", "create", project.key, "--name", "worker")

    view = record_of(result)
    assert (view["name"], view["tenant"], view["revoked_at"]) == ("worker", "-", "-")
    assert view["token"].startswith(view["prefix"])
    assert result.stdout.count(view["token"]) == 1
    assert result.stdout.rstrip().endswith("The token is shown only this once: store it now.")
    assert check(server, view["token"]).status_code == 200


def test_token_list_json_is_what_the_admin_api_answers_without_secrets(
    project: CliProject, run: Run, server: TestClient
) -> None:
    issued = json_of(run("token", "create", project.key, "--tenant", "acme", "--json"))

    listed = json_of(run("token", "list", project.key, "--json"))

    assert listed == admin_get(server, f"/admin/api/projects/{project.key}/tokens")
    assert {t["id"]: t["tenant"] for t in listed["data"]} == {
        project.token_id: None,
        issued["id"]: "acme",
    }
    text = json.dumps(listed) + ok(run("token", "list", project.key))
    assert project.token not in text
    assert issued["token"] not in text


def test_token_list_is_a_table_with_headers(project: CliProject, run: Run) -> None:
    ok(run("token", "revoke", project.token_id))

    rows = table_of(run("token", "list", project.key))

    assert [(r["ID"], r["NAME"], r["TENANT"]) for r in rows] == [(project.token_id, "default", "-")]
    assert rows[0]["REVOKED_AT"] != "-"
    assert set(rows[0]) == {"ID", "NAME", "PREFIX", "TENANT", "CREATED_AT", "REVOKED_AT"}


def test_token_revoke_json_is_the_revoked_token(
    project: CliProject, run: Run, server: TestClient
) -> None:
    revoked = json_of(run("token", "revoke", project.token_id, "--json"))

    assert revoked["id"] == project.token_id
    assert revoked["revoked_at"] is not None
    assert "token" not in revoked
    served = admin_get(server, f"/admin/api/projects/{project.key}/tokens")["data"]
    assert revoked in served


def test_token_rotate_without_json_shows_the_new_secret_once(
    project: CliProject, run: Run, server: TestClient
) -> None:
    result = run("token", "rotate", project.token_id)

    view = record_of(result)
    assert view["id"] == project.token_id
    assert view["rotated_at"] != "-"
    assert result.stdout.count(view["token"]) == 1
    assert "shown only this once" in result.stdout
    assert check(server, view["token"]).status_code == 200
