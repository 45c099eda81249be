"""`billplane feature update|archive|restore`: the admin API's `PATCH` of a feature."""

from fastapi.testclient import TestClient

from cli.conftest import (
    CliProject,
    Run,
    admin_get,
    check,
    json_of,
    ok,
    one_line_error,
    record_of,
    table_of,
)


def _served(server: TestClient, project: CliProject, key: str) -> dict[str, object]:
    features = admin_get(server, f"/admin/api/projects/{project.key}/features")["data"]
    (found,) = [f for f in features if f["key"] == key]
    return dict(found)


def test_feature_update_renames_and_changes_the_unit(
    project: CliProject, run: Run, server: TestClient
) -> None:
    updated = json_of(
        run(
            "feature",
            "update",
            project.key,
            "listings.publish",
            "--name",
            "Listings",
            "--unit",
            "ad",
            "--json",
        )
    )

    assert updated == _served(server, project, "listings.publish")
    assert (updated["name"], updated["unit"], updated["type"]) == ("Listings", "ad", "limit")


def test_feature_update_no_unit_removes_it(
    project: CliProject, run: Run, server: TestClient
) -> None:
    shown = record_of(run("feature", "update", project.key, "listings.publish", "--no-unit"))

    assert shown["unit"] == "-"
    assert _served(server, project, "listings.publish")["unit"] is None


def test_feature_update_without_a_change_is_a_usage_error(project: CliProject, run: Run) -> None:
    message = one_line_error(run("feature", "update", project.key, "exports"), 2)

    assert message == "error (usage): nothing to change: give --name, --unit or --no-unit."


def test_feature_update_unit_and_no_unit_contradict(project: CliProject, run: Run) -> None:
    result = run("feature", "update", project.key, "exports", "--unit", "x", "--no-unit")

    assert "contradict" in one_line_error(result, 2)


def test_feature_update_of_an_unknown_feature_is_one_line_and_exit_1(
    project: CliProject, run: Run
) -> None:
    message = one_line_error(run("feature", "update", project.key, "sso", "--name", "SSO"), 1)

    assert message == f"error (feature_not_found): No feature 'sso' in project '{project.key}'."


def test_feature_archive_and_restore(project: CliProject, run: Run, server: TestClient) -> None:
    archived = json_of(run("feature", "archive", project.key, "listings.publish", "--json"))
    assert archived["status"] == "archived"
    answer = check(server, project.token).json()
    assert (answer["allowed"], answer["reason"]) == (False, "feature_archived")

    restored = record_of(run("feature", "restore", project.key, "listings.publish"))
    assert restored["status"] == "active"
    assert check(server, project.token).json()["reason"] == "ok"


def test_feature_list_shows_the_status(project: CliProject, run: Run) -> None:
    ok(run("feature", "archive", project.key, "exports"))

    rows = {row["KEY"]: row["STATUS"] for row in table_of(run("feature", "list", project.key))}

    assert rows == {"exports": "archived", "listings.publish": "active"}


def test_feature_edits_are_audited_as_the_apis_are(
    project: CliProject, run: Run, server: TestClient
) -> None:
    ok(run("feature", "archive", project.key, "exports"))

    latest = admin_get(server, f"/admin/api/audit?project={project.key}")["data"][0]

    assert (latest["actor"], latest["action"], latest["target"]) == (
        "cli",
        "feature.update",
        f"feature:{project.key}/exports",
    )
    assert (latest["before"]["status"], latest["after"]["status"]) == ("active", "archived")
