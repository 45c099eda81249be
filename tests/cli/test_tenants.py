"""`billplane tenant …`."""

from fastapi.testclient import TestClient

from cli.conftest import ADMIN, CliProject, Run, admin_get, ok, one_line_error


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
