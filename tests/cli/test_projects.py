"""`billplane project …` and `billplane feature create|list`."""

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
    record_of,
    table_of,
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


def test_project_create_without_json_shows_the_token_once_in_a_view(run: Run) -> None:
    key = new_key()

    result = run("project", "create", key, "--origin", "https://a.test")

    view = record_of(result)
    assert (view["key"], view["name"], view["origins"]) == (key, key, "https://a.test")
    assert view["token"].startswith(view["token_prefix"])
    assert view["token_id"].startswith("tok_")
    assert result.stdout.count(view["token"]) == 1
    assert result.stdout.rstrip().endswith("The token is shown only this once: store it now.")


def test_project_show_json_is_what_the_admin_api_answers(
    project: CliProject, run: Run, server: TestClient
) -> None:
    shown = json_of(run("project", "show", project.key, "--json"))

    assert shown == admin_get(server, f"/admin/api/projects/{project.key}")


def test_project_show_is_a_key_value_view(project: CliProject, run: Run) -> None:
    view = record_of(run("project", "show", project.key))

    assert view["key"] == project.key
    assert view["name"] == "CLI Co"
    assert view["origins"] == "https://cli.test"
    assert set(view) == {"key", "name", "origins", "created_at", "snapshot_ttl_seconds"}
    assert view["snapshot_ttl_seconds"] == "server default"


def test_project_list_json_lists_projects_as_the_admin_api_does(
    project: CliProject, run: Run, server: TestClient
) -> None:
    listed = json_of(run("project", "list", "--json"))

    assert listed["has_more"] is False
    by_key = {p["key"]: p for p in listed["data"]}
    assert by_key[project.key] == admin_get(server, f"/admin/api/projects/{project.key}")
    assert sorted(by_key) == sorted(all_project_keys(server))


def test_project_list_is_a_table_with_headers(project: CliProject, run: Run) -> None:
    rows = table_of(run("project", "list"))

    assert {"KEY": project.key, "NAME": "CLI Co", "ORIGINS": "https://cli.test"} in rows


def test_project_update_renames_and_replaces_origins(
    project: CliProject, run: Run, server: TestClient
) -> None:
    updated = json_of(
        run(
            "project",
            "update",
            project.key,
            "--name",
            "Renamed Co",
            "--origin",
            "https://one.test/",
            "--origin",
            "https://two.test",
            "--json",
        )
    )

    assert updated["name"] == "Renamed Co"
    assert updated["origins"] == ["https://one.test", "https://two.test"]
    assert updated == admin_get(server, f"/admin/api/projects/{project.key}")


def test_project_update_keeps_what_is_not_given_and_no_origins_clears(
    project: CliProject, run: Run, server: TestClient
) -> None:
    view = record_of(run("project", "update", project.key, "--no-origins"))

    assert (view["name"], view["origins"]) == ("CLI Co", "-")
    assert admin_get(server, f"/admin/api/projects/{project.key}")["origins"] == []


def test_project_update_sets_and_unsets_the_snapshot_lifetime(
    project: CliProject, run: Run, server: TestClient
) -> None:
    updated = json_of(run("project", "update", project.key, "--snapshot-ttl", "900", "--json"))

    assert updated["snapshot_ttl_seconds"] == 900
    assert updated == admin_get(server, f"/admin/api/projects/{project.key}")
    view = record_of(run("project", "update", project.key, "--default-snapshot-ttl"))
    assert view["snapshot_ttl_seconds"] == "server default"
    assert admin_get(server, f"/admin/api/projects/{project.key}")["snapshot_ttl_seconds"] is None


def test_project_update_without_a_change_is_a_usage_error(project: CliProject, run: Run) -> None:
    message = one_line_error(run("project", "update", project.key), 2)

    assert "nothing to change" in message


def test_project_update_refuses_an_origin_and_no_origins_together(
    project: CliProject, run: Run
) -> None:
    message = one_line_error(
        run("project", "update", project.key, "--origin", "https://a.test", "--no-origins"), 2
    )

    assert "--origin and --no-origins" in message


def test_project_update_refuses_an_origin_the_api_refuses(
    project: CliProject, run: Run, server: TestClient
) -> None:
    message = one_line_error(run("project", "update", project.key, "--origin", "nope"), 2)

    assert message.startswith("error (validation_error): origins.0:")
    assert admin_get(server, f"/admin/api/projects/{project.key}")["origins"] == [
        "https://cli.test"
    ]


def test_feature_create_json_is_the_feature(project: CliProject, run: Run) -> None:
    created = json_of(
        run(
            "feature", "create", project.key, "seats", "--type", "limit", "--unit", "seat", "--json"
        )
    )

    assert created == {
        "key": "seats",
        "name": "seats",
        "type": "limit",
        "unit": "seat",
        "status": "active",
    }


def test_feature_list_json_is_what_the_admin_api_answers(
    project: CliProject, run: Run, server: TestClient
) -> None:
    listed = json_of(run("feature", "list", project.key, "--json"))

    assert listed == admin_get(server, f"/admin/api/projects/{project.key}/features")
    assert [f["key"] for f in listed["data"]] == ["exports", "listings.publish"]


def test_feature_list_is_a_table_with_headers(project: CliProject, run: Run) -> None:
    rows = table_of(run("feature", "list", project.key))

    assert rows == [
        {"KEY": "exports", "NAME": "exports", "TYPE": "boolean", "UNIT": "-", "STATUS": "active"},
        {
            "KEY": "listings.publish",
            "NAME": "listings.publish",
            "TYPE": "limit",
            "UNIT": "listing",
            "STATUS": "active",
        },
    ]


def test_feature_list_of_a_project_without_features_says_none(run: Run) -> None:
    key = new_key()
    ok(run("project", "create", key))

    assert ok(run("feature", "list", key)) == "(none)\n"
    assert json_of(run("feature", "list", key, "--json")) == {"data": [], "has_more": False}
