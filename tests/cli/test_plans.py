"""`billplane plan …`."""

from fastapi.testclient import TestClient

from cli.conftest import CliProject, Run, admin_get, ok, one_line_error


def test_plans_created_by_the_cli_are_served_by_the_server(
    project: CliProject, server: TestClient
) -> None:
    plans = admin_get(server, f"/admin/api/projects/{project.key}/plans")["data"]

    by_key = {p["key"]: p for p in plans}
    assert by_key["free"]["is_default"] is True
    assert by_key["free"]["stripe_price_id"] is None
    assert by_key["free"]["features"] == {"listings.publish": {"limit": 5, "reset": "month"}}
    assert by_key["pro"]["stripe_price_id"].startswith("price_")
    assert by_key["pro"]["features"] == {
        "exports": True,
        "listings.publish": {"limit": 50, "reset": "day"},
    }


def test_cli_plan_list_shows_grants(project: CliProject, run: Run) -> None:
    listed = ok(run("plan", "list", project.key))

    assert "listings.publish=5/month" in listed
    assert "exports, listings.publish=50/day" in listed


def test_cli_plan_with_unknown_feature_is_one_line_and_creates_nothing(
    project: CliProject, run: Run, server: TestClient
) -> None:
    message = one_line_error(
        run("plan", "create", project.key, "team", "--price", "price_team", "--feature", "sso"), 1
    )

    assert "feature_not_found" in message
    plans = admin_get(server, f"/admin/api/projects/{project.key}/plans")["data"]
    assert "team" not in [p["key"] for p in plans]


def test_cli_refuses_a_grant_with_an_unknown_reset(
    project: CliProject, run: Run, server: TestClient
) -> None:
    message = one_line_error(
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
    plans = admin_get(server, f"/admin/api/projects/{project.key}/plans")["data"]
    assert "team" not in [p["key"] for p in plans]


def test_cli_refuses_a_grant_that_is_not_a_number(project: CliProject, run: Run) -> None:
    message = one_line_error(
        run(
            "plan", "create", project.key, "team", "--price", "price_t", "--feature", "exports=lots"
        ),
        2,
    )

    assert "exports=lots" in message
