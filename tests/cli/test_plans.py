"""`billplane plan …`."""

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from billplane.models import Plan, Project
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
from factories import subscribe


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


def _served_plan(server: TestClient, project: CliProject, plan: str) -> Any:
    return admin_get(server, f"/admin/api/projects/{project.key}/plans/{plan}")


def test_plan_create_json_is_the_plan_the_admin_api_serves(
    project: CliProject, run: Run, server: TestClient
) -> None:
    created = json_of(
        run(
            "plan",
            "create",
            project.key,
            "team",
            "--name",
            "Team",
            "--price",
            "price_team",
            "--trial-days",
            "14",
            "--feature",
            "exports=off",
            "--json",
        )
    )

    assert created["features"] == {"exports": False}
    assert created["trial_days"] == 14
    assert created == _served_plan(server, project, "team")


def test_plan_show_json_is_what_the_admin_api_answers(
    project: CliProject, run: Run, server: TestClient
) -> None:
    shown = json_of(run("plan", "show", project.key, "pro", "--json"))

    assert shown == _served_plan(server, project, "pro")
    assert shown["stripe"] == {"checked": False, "reason": "Stripe is not configured"}


def test_plan_show_is_a_key_value_view(project: CliProject, run: Run) -> None:
    view = record_of(run("plan", "show", project.key, "pro"))

    assert view["key"] == "pro"
    assert view["status"] == "active"
    assert view["is_default"] == "no"
    assert view["features"] == "exports, listings.publish=50/day"
    assert view["stripe"] == "not checked: Stripe is not configured"


def test_plan_list_json_is_what_the_admin_api_answers(
    project: CliProject, run: Run, server: TestClient
) -> None:
    listed = json_of(run("plan", "list", project.key, "--json"))

    assert listed == admin_get(server, f"/admin/api/projects/{project.key}/plans")
    assert [p["key"] for p in listed["data"]] == ["free", "pro"]


def test_plan_list_is_a_table_with_headers(project: CliProject, run: Run) -> None:
    rows = table_of(run("plan", "list", project.key))

    assert [(r["KEY"], r["STATUS"], r["IS_DEFAULT"], r["FEATURES"]) for r in rows] == [
        ("free", "active", "yes", "listings.publish=5/month"),
        ("pro", "active", "no", "exports, listings.publish=50/day"),
    ]
    assert rows[0]["STRIPE_PRICE_ID"] == "-"


def test_plan_update_changes_only_what_is_given(
    project: CliProject, run: Run, server: TestClient
) -> None:
    before = _served_plan(server, project, "pro")

    updated = json_of(
        run(
            "plan",
            "update",
            project.key,
            "pro",
            "--name",
            "Pro+",
            "--trial-days",
            "7",
            "--feature",
            "listings.publish=80/month",
            "--json",
        )
    )

    assert updated == {
        **before,
        "name": "Pro+",
        "trial_days": 7,
        "version": 2,
        "features": {"listings.publish": {"limit": 80, "reset": "month"}},
    }
    assert updated == _served_plan(server, project, "pro")


def test_plan_update_takes_effect_on_the_servers_checks(
    project: CliProject, run: Run, server: TestClient
) -> None:
    ok(run("plan", "update", project.key, "free", "--feature", "listings.publish=9/month"))

    assert check(server, project.token).json()["limit"] == 9


def test_plan_update_no_features_removes_every_grant(
    project: CliProject, run: Run, server: TestClient
) -> None:
    view = record_of(run("plan", "update", project.key, "free", "--no-features"))

    assert view["features"] == "-"
    assert _served_plan(server, project, "free")["features"] == {}


def test_plan_update_default_moves_the_default(
    project: CliProject, run: Run, server: TestClient
) -> None:
    ok(run("plan", "update", project.key, "pro", "--default"))

    plans = admin_get(server, f"/admin/api/projects/{project.key}/plans")["data"]
    served = {p["key"]: p["is_default"] for p in plans}
    assert served == {"free": False, "pro": True}


def test_plan_update_with_no_price_follows_the_apis_rule(
    project: CliProject, run: Run, server: TestClient
) -> None:
    """A plan without a price must be the default: the service's rule, not the CLI's."""
    message = one_line_error(run("plan", "update", project.key, "pro", "--no-price", "--json"), 1)

    assert message.startswith("error (invalid_request): A plan without 'stripe_price_id'")
    assert _served_plan(server, project, "pro")["stripe_price_id"] is not None


def test_plan_update_refuses_a_price_and_no_price_together(project: CliProject, run: Run) -> None:
    message = one_line_error(
        run("plan", "update", project.key, "pro", "--price", "price_x", "--no-price"), 2
    )

    assert "--price and --no-price" in message


def test_plan_update_with_an_unknown_feature_changes_nothing(
    project: CliProject, run: Run, server: TestClient
) -> None:
    before = _served_plan(server, project, "pro")

    message = one_line_error(run("plan", "update", project.key, "pro", "--feature", "sso"), 1)

    assert "feature_not_found" in message
    assert _served_plan(server, project, "pro") == before


def test_plan_archive_and_restore(project: CliProject, run: Run, server: TestClient) -> None:
    archived = json_of(run("plan", "archive", project.key, "pro", "--json"))
    assert archived["status"] == "archived"
    assert _served_plan(server, project, "pro")["status"] == "archived"

    restored = record_of(run("plan", "restore", project.key, "pro"))
    assert restored["status"] == "active"
    assert _served_plan(server, project, "pro")["status"] == "active"


def test_plan_archive_of_the_default_plan_is_refused(
    project: CliProject, run: Run, server: TestClient
) -> None:
    message = one_line_error(run("plan", "archive", project.key, "free"), 1)

    assert message == (
        "error (invalid_request): The default plan must be active; to archive it, make another "
        "plan the default first."
    )
    assert _served_plan(server, project, "free")["status"] == "active"


def test_plan_edits_are_audited_as_the_apis_are(
    project: CliProject, run: Run, server: TestClient
) -> None:
    ok(run("plan", "archive", project.key, "pro"))

    entries = admin_get(server, f"/admin/api/audit?project={project.key}")["data"]

    latest = entries[0]
    assert (latest["actor"], latest["action"], latest["target"]) == (
        "cli",
        "plan.update",
        f"plan:{project.key}/pro",
    )
    assert (latest["before"]["status"], latest["after"]["status"]) == ("active", "archived")


def test_plan_update_dry_run_shows_the_effect_and_changes_nothing(
    project: CliProject, run: Run, server: TestClient
) -> None:
    args = ("plan", "update", project.key, "free", "--feature", "listings.publish=2/month")
    shown = ok(run(*args, "--dry-run"))

    assert shown.startswith("Dry run, nothing changed: 1 of 1 tenants affected")
    assert "listings.publish 5 -> 2" in shown
    assert check(server, project.token).json()["limit"] == 5
    preview = json_of(run(*args, "--dry-run", "--json"))
    assert preview["summary"]["limits_lowered"] == 1
    assert preview["tenants"][0]["limits_lowered"] == [
        {"feature": "listings.publish", "before": 5, "after": 2}
    ]
    archived = ok(run("plan", "archive", project.key, "pro", "--dry-run"))
    assert archived.startswith("Dry run, nothing changed: 0 of 1 tenants affected")
    assert _served_plan(server, project, "pro")["status"] == "active"


def _subscribe_to_pro(server_app: FastAPI, project: CliProject, tenant: str) -> None:
    """A live subscription to pro's price, stored as Stripe's webhooks would store it (the CLI
    cannot sell a plan)."""
    now = datetime.now(UTC)
    with server_app.state.db.session_scope(write=True) as session:
        price = session.scalars(
            select(Plan.stripe_price_id)
            .join(Project, Project.id == Plan.project_id)
            .where(Project.key == project.key, Plan.key == "pro")
        ).one()
        subscribe(
            session,
            project=project.key,
            tenant=tenant,
            status="active",
            price=price,
            period_start=now - timedelta(days=1),
            period_end=now + timedelta(days=29),
            subscription_id=f"sub_{project.key}_{tenant}",
        )


def test_plan_migrate_moves_the_named_tenants_to_the_newest_version(
    project: CliProject, run: Run, server: TestClient, server_app: FastAPI
) -> None:
    ok(run("tenant", "create", project.key, "globex"))
    for tenant in ("acme", "globex"):
        _subscribe_to_pro(server_app, project, tenant)
    ok(run("plan", "update", project.key, "pro", "--feature", "listings.publish=7/day"))
    assert check(server, project.token).json()["limit"] == 50  # acme keeps version 1

    preview = json_of(
        run("plan", "migrate", project.key, "pro", "--tenant", "acme", "--dry-run", "--json")
    )
    assert [t["tenant"] for t in preview["tenants"]] == ["acme"]
    assert check(server, project.token).json()["limit"] == 50
    moved = json_of(run("plan", "migrate", project.key, "pro", "--tenant", "acme", "--json"))

    assert moved == {
        "plan": "pro",
        "version": 2,
        "migrated": [{"tenant": "acme", "from_version": 1}],
    }
    assert check(server, project.token).json()["limit"] == 7
    assert check(server, project.token, tenant="globex").json()["limit"] == 50
    listed = json_of(run("plan", "versions", project.key, "pro", "--json"))["data"]
    assert [(v["version"], v["tenants"]) for v in listed] == [(1, 1), (2, 1)]
    assert "globex (from 1)" in ok(run("plan", "migrate", project.key, "pro", "--all"))


def test_plan_update_migrate_all_moves_subscribers_with_the_edit(
    project: CliProject, run: Run, server: TestClient, server_app: FastAPI
) -> None:
    _subscribe_to_pro(server_app, project, "acme")
    ok(
        run(
            "plan",
            "update",
            project.key,
            "pro",
            "--feature",
            "listings.publish=8/day",
            "--migrate-all",
        )
    )
    assert check(server, project.token).json()["limit"] == 8


def test_plan_migrate_needs_tenants_or_all(project: CliProject, run: Run) -> None:
    assert "--tenant" in one_line_error(run("plan", "migrate", project.key, "pro"), 2)
    both = run("plan", "migrate", project.key, "pro", "--tenant", "acme", "--all")
    assert "contradict" in one_line_error(both, 2)
    never = one_line_error(run("plan", "migrate", project.key, "pro", "--tenant", "acme"), 1)
    assert "invalid_request" in never
