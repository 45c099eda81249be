"""`billplane tenant …`."""

from typing import Any

from fastapi.testclient import TestClient

from cli.conftest import (
    ADMIN,
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


def test_tenant_created_by_the_cli_is_served_by_the_server(
    project: CliProject, server: TestClient
) -> None:
    detail = admin_get(server, f"/admin/api/projects/{project.key}/tenants/acme")

    assert detail["name"] == "Acme"
    assert detail["email"] == "ops@acme.test"
    assert detail["plan"] == "free"


def test_cli_lists_show_rows_the_server_created(
    project: CliProject, run: Run, server: TestClient
) -> None:
    created = server.post(
        f"/admin/api/projects/{project.key}/tenants", json={"key": "from-server"}, headers=ADMIN
    )
    assert created.status_code == 201, created.text

    listed = ok(run("tenant", "list", project.key))

    assert "from-server" in listed
    assert "acme" in listed


def test_cli_refuses_a_tenant_key_the_api_refuses(
    project: CliProject, run: Run, server: TestClient
) -> None:
    message = one_line_error(run("tenant", "create", project.key, "a/b"), 2)

    assert "key:" in message
    tenants = admin_get(server, f"/admin/api/projects/{project.key}/tenants")["data"]
    assert [t["key"] for t in tenants] == ["acme"]


def test_cli_refuses_a_malformed_email(project: CliProject, run: Run) -> None:
    message = one_line_error(run("tenant", "create", project.key, "globex", "--email", "nope"), 2)

    assert "email" in message


def _served_tenant(server: TestClient, project: CliProject, tenant: str = "acme") -> Any:
    return admin_get(server, f"/admin/api/projects/{project.key}/tenants/{tenant}")


def test_tenant_create_json_is_the_tenant(
    project: CliProject, run: Run, server: TestClient
) -> None:
    created = json_of(run("tenant", "create", project.key, "globex", "--name", "Globex", "--json"))

    assert created["key"] == "globex"
    assert created["overrides"] == {}
    listed = admin_get(server, f"/admin/api/projects/{project.key}/tenants")["data"]
    assert created in listed


def test_tenant_show_json_is_what_the_admin_api_answers(
    project: CliProject, run: Run, server: TestClient
) -> None:
    shown = json_of(run("tenant", "show", project.key, "acme", "--json"))

    assert shown == _served_tenant(server, project)
    assert shown["plan"] == "free"
    assert {e["feature"]: e["allowed"] for e in shown["entitlements"]} == {
        "exports": False,
        "listings.publish": True,
    }


def test_tenant_show_is_a_view_with_its_entitlements(project: CliProject, run: Run) -> None:
    result = run("tenant", "show", project.key, "acme")

    view = record_of(result)
    assert (view["key"], view["email"], view["plan"], view["subscription"]) == (
        "acme",
        "ops@acme.test",
        "free",
        "-",
    )
    entitlements = result.stdout.split("Entitlements:\n", 1)[1].split("\n\n", 1)[0]
    header, *rows = entitlements.splitlines()
    assert header.split() == [
        "FEATURE",
        "ALLOWED",
        "REASON",
        "LIMIT",
        "USED",
        "REMAINING",
        "RESETS_AT",
    ]
    assert rows[0].split()[:3] == ["exports", "no", "not_in_plan"]
    assert rows[1].split()[:6] == ["listings.publish", "yes", "ok", "5", "0", "5"]
    assert result.stdout.rstrip().endswith("Recent usage:\n(none)")


def test_tenant_list_json_is_what_the_admin_api_answers(
    project: CliProject, run: Run, server: TestClient
) -> None:
    listed = json_of(run("tenant", "list", project.key, "--json"))

    assert listed == admin_get(server, f"/admin/api/projects/{project.key}/tenants")


def test_tenant_list_is_a_table_with_headers(project: CliProject, run: Run) -> None:
    rows = table_of(run("tenant", "list", project.key))

    assert rows == [
        {
            "KEY": "acme",
            "NAME": "Acme",
            "EMAIL": "ops@acme.test",
            "STRIPE_CUSTOMER_ID": "-",
            "STATUS": "active",
        }
    ]


def test_tenant_update_override_takes_effect_on_the_servers_checks(
    project: CliProject, run: Run, server: TestClient
) -> None:
    updated = json_of(
        run(
            "tenant",
            "update",
            project.key,
            "acme",
            "--override",
            "listings.publish=500/month",
            "--override",
            "exports",
            "--json",
        )
    )

    assert updated["overrides"] == {
        "exports": True,
        "listings.publish": {"limit": 500, "reset": "month"},
    }
    assert updated == json_of(run("tenant", "list", project.key, "--json"))["data"][0]
    assert check(server, project.token).json()["limit"] == 500
    assert check(server, project.token, feature="exports").json()["allowed"] is True


def test_tenant_update_no_overrides_goes_back_to_the_plan(
    project: CliProject, run: Run, server: TestClient
) -> None:
    ok(run("tenant", "update", project.key, "acme", "--override", "listings.publish=500"))

    view = record_of(run("tenant", "update", project.key, "acme", "--no-overrides"))

    assert view["overrides"] == "-"
    assert check(server, project.token).json()["limit"] == 5


def test_tenant_update_changes_name_and_email_and_keeps_the_rest(
    project: CliProject, run: Run, server: TestClient
) -> None:
    ok(run("tenant", "update", project.key, "acme", "--override", "exports"))

    view = record_of(
        run("tenant", "update", project.key, "acme", "--name", "Acme Inc", "--email", "b@acme.test")
    )

    assert (view["name"], view["email"], view["overrides"]) == (
        "Acme Inc",
        "b@acme.test",
        "exports",
    )
    served = _served_tenant(server, project)
    assert (served["name"], served["email"]) == ("Acme Inc", "b@acme.test")


def test_tenant_update_without_a_change_is_a_usage_error(project: CliProject, run: Run) -> None:
    message = one_line_error(run("tenant", "update", project.key, "acme", "--json"), 2)

    assert "nothing to change" in message


def test_tenant_update_refuses_a_malformed_email(
    project: CliProject, run: Run, server: TestClient
) -> None:
    message = one_line_error(run("tenant", "update", project.key, "acme", "--email", "nope"), 2)

    assert message.startswith("error (validation_error): email:")
    assert _served_tenant(server, project)["email"] == "ops@acme.test"


def test_tenant_update_override_of_an_unknown_feature_changes_nothing(
    project: CliProject, run: Run, server: TestClient
) -> None:
    message = one_line_error(
        run("tenant", "update", project.key, "acme", "--override", "sso", "--name", "X"), 1
    )

    assert "feature_not_found" in message
    assert _served_tenant(server, project)["name"] == "Acme"


def test_tenant_update_refuses_an_override_that_is_not_a_grant(
    project: CliProject, run: Run
) -> None:
    message = one_line_error(
        run("tenant", "update", project.key, "acme", "--override", "exports=lots"), 2
    )

    assert "exports=lots" in message


def test_tenant_archive_and_restore(project: CliProject, run: Run, server: TestClient) -> None:
    archived = json_of(run("tenant", "archive", project.key, "acme", "--json"))
    served = admin_get(server, f"/admin/api/projects/{project.key}/tenants")["data"]
    assert archived == next(t for t in served if t["key"] == "acme")
    assert archived["status"] == "archived"
    answer = check(server, project.token).json()
    assert (answer["allowed"], answer["reason"]) == (False, "tenant_archived")

    restored = record_of(run("tenant", "restore", project.key, "acme"))
    assert restored["status"] == "active"
    assert check(server, project.token).json()["reason"] == "ok"


def test_tenant_list_shows_the_status(project: CliProject, run: Run) -> None:
    ok(run("tenant", "create", project.key, "globex"))
    ok(run("tenant", "archive", project.key, "acme"))

    rows = {row["KEY"]: row["STATUS"] for row in table_of(run("tenant", "list", project.key))}

    assert rows == {"acme": "archived", "globex": "active"}


def test_tenant_archive_of_an_unknown_tenant_is_one_line_and_exit_1(
    project: CliProject, run: Run
) -> None:
    message = one_line_error(run("tenant", "archive", project.key, "nobody"), 1)

    assert message == f"error (tenant_not_found): No tenant 'nobody' in project '{project.key}'."


def test_tenant_archive_is_audited_as_the_apis_is(
    project: CliProject, run: Run, server: TestClient
) -> None:
    ok(run("tenant", "archive", project.key, "acme"))

    latest = admin_get(server, f"/admin/api/audit?project={project.key}")["data"][0]

    assert (latest["actor"], latest["action"]) == ("cli", "tenant.update")
    assert (latest["before"]["status"], latest["after"]["status"]) == ("active", "archived")


def test_tenant_update_dry_run_shows_the_effect_and_changes_nothing(
    project: CliProject, run: Run, server: TestClient
) -> None:
    shown = ok(run("tenant", "update", project.key, "acme", "--override", "exports", "--dry-run"))

    assert shown.startswith("Dry run, nothing changed: 1 of 1 tenants affected (1 gaining")
    assert "exports" in shown
    served = check(server, project.token, feature="exports").json()
    assert (served["allowed"], served["reason"]) == (False, "not_in_plan")
