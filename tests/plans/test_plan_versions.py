"""Plan versions: an edit of what a plan grants makes a new version; tenants who subscribed keep
theirs until an operator migrates them (chosen ones or all), in one audited action that tells
their apps."""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billplane.entitlements import repository, service
from billplane.hotpath import Sql
from billplane.models import AppEvent, AuditEntry, Project, TenantPlanVersion
from conftest import Setup
from factories import subscribe

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
PRO = "/admin/api/projects/realtyos/plans/pro"
FREE = "/admin/api/projects/realtyos/plans/free"
URL = "https://app.realtyos.test/hooks"
LOWER = {"features": {"listings.publish": {"limit": 10, "reset": "month"}, "ai.tokens": True}}


def on_pro(setup: Setup, session: Session, *tenants: str) -> None:
    for key in tenants:
        if key != "acme":
            setup.seed.tenant("realtyos", key)
        subscribe(
            session,
            project="realtyos",
            tenant=key,
            status="active",
            price="price_pro",
            period_start=NOW - timedelta(days=1),
            period_end=NOW + timedelta(days=29),
            subscription_id=f"sub_{key}",
        )


def limit(setup: Setup, tenant: str, feature: str = "listings.publish") -> Any:
    answer = setup.api.post("/v1/check", {"tenant": tenant, "feature": feature})
    assert answer.status_code == 200, answer.text
    return answer.json()["limit"] if feature == "listings.publish" else answer.json()["allowed"]


def entitled(setup: Setup, tenant: str) -> dict[str, Any]:
    answer = setup.api.get(f"/v1/tenants/{tenant}/entitlements")
    assert answer.status_code == 200, answer.text
    return {f["feature"]: f for f in answer.json()["features"]}


def versions(setup: Setup, plan: str = PRO) -> list[tuple[int, int]]:
    rows = setup.admin.call("GET", f"{plan}/versions")["data"]
    return [(row["version"], row["tenants"]) for row in rows]


def audit_actions(session: Session) -> list[str]:
    return list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def test_a_subscriber_keeps_its_version_after_an_edit_and_a_new_one_gets_the_newest(
    realtyos: Setup, session: Session
) -> None:
    on_pro(realtyos, session, "acme")

    plan = realtyos.admin.call("PATCH", PRO, json=LOWER)
    on_pro(realtyos, session, "globex")

    assert plan["version"] == 2
    assert plan["features"]["listings.publish"] == {"limit": 10, "reset": "month"}
    assert (limit(realtyos, "acme"), limit(realtyos, "globex")) == (100, 10)
    assert (limit(realtyos, "acme", "exports"), limit(realtyos, "globex", "exports")) == (
        True,
        False,
    )
    assert entitled(realtyos, "acme")["listings.publish"]["limit"] == 100
    assert entitled(realtyos, "globex")["listings.publish"]["limit"] == 10
    assert versions(realtyos) == [(1, 1), (2, 1)]


def test_an_edit_that_grants_the_same_makes_no_version(realtyos: Setup) -> None:
    realtyos.admin.call("PATCH", PRO, json={"name": "Professional", "status": "archived"})
    same = {"exports": True, "listings.publish": {"limit": 100}, "ai.tokens": True}
    assert realtyos.admin.call("PATCH", PRO, json={"features": same})["version"] == 1
    assert realtyos.admin.call("PATCH", PRO, json={"trial_days": 7})["version"] == 2
    assert [v for v, _ in versions(realtyos)] == [1, 2]


def test_tenants_on_the_default_plan_without_a_subscription_follow_its_newest_version(
    realtyos: Setup,
) -> None:
    assert limit(realtyos, "acme") == 3
    realtyos.admin.call("PATCH", FREE, json={"features": {"listings.publish": {"limit": 5}}})
    assert limit(realtyos, "acme") == 5
    assert versions(realtyos, FREE) == [(1, 0), (2, 1)]


def test_a_subscriber_on_an_older_price_keeps_its_plan_when_the_price_changes(
    realtyos: Setup, session: Session
) -> None:
    on_pro(realtyos, session, "acme")
    realtyos.admin.call("PATCH", PRO, json={"stripe_price_id": "price_pro_2026"})
    answer = realtyos.api.post("/v1/check", {"tenant": "acme", "feature": "exports"}).json()
    assert (answer["plan"], answer["allowed"]) == ("pro", True)
    # The old price stays the plan's: another plan cannot take it.
    refused = realtyos.admin.call(
        "PATCH", FREE, expect=409, json={"stripe_price_id": "price_pro", "is_default": True}
    )
    assert refused["error"]["code"] == "already_exists"


def test_migrating_chosen_tenants_moves_only_them(realtyos: Setup, session: Session) -> None:
    on_pro(realtyos, session, "acme", "globex", "initech")
    realtyos.admin.call("PATCH", PRO, json=LOWER)

    moved = realtyos.admin.call("POST", f"{PRO}/migrate", json={"tenants": ["acme", "globex"]})

    assert moved == {
        "plan": "pro",
        "version": 2,
        "migrated": [
            {"tenant": "acme", "from_version": 1},
            {"tenant": "globex", "from_version": 1},
        ],
    }
    assert [limit(realtyos, t) for t in ("acme", "globex", "initech")] == [10, 10, 100]
    assert versions(realtyos) == [(1, 1), (2, 2)]
    assert audit_actions(session).count("plan.migrate") == 1
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "plan.migrate")).one()
    assert entry.before == {"tenants": {"acme": 1, "globex": 1}}
    assert entry.after == {"version": 2, "tenants": ["acme", "globex"]}


def test_migrating_all_moves_every_tenant_on_an_older_version(
    realtyos: Setup, session: Session
) -> None:
    on_pro(realtyos, session, "acme", "globex")
    realtyos.admin.call("PATCH", PRO, json=LOWER)
    realtyos.admin.call("PATCH", PRO, json={"features": {"listings.publish": {"limit": 20}}})
    realtyos.admin.call("POST", f"{PRO}/migrate", json={"tenants": ["acme"]})

    moved = realtyos.admin.call("POST", f"{PRO}/migrate", json={"tenants": "all"})

    assert moved["migrated"] == [{"tenant": "globex", "from_version": 1}]
    assert [limit(realtyos, t) for t in ("acme", "globex")] == [20, 20]
    assert versions(realtyos) == [(1, 0), (2, 0), (3, 2)]
    nothing_left = realtyos.admin.call("POST", f"{PRO}/migrate", json={"tenants": "all"})
    assert nothing_left["migrated"] == []


def test_an_edit_applied_to_all_moves_every_subscriber_at_once(
    realtyos: Setup, session: Session
) -> None:
    on_pro(realtyos, session, "acme", "globex")
    realtyos.admin.call("PATCH", f"{PRO}?migrate=all", json=LOWER)
    assert [limit(realtyos, t) for t in ("acme", "globex")] == [10, 10]
    assert audit_actions(session)[-2:] == ["plan.update", "plan.migrate"]


def test_the_migration_tells_each_moved_tenants_app_in_its_transaction(
    realtyos: Setup, session: Session
) -> None:
    on_pro(realtyos, session, "acme", "globex")
    realtyos.admin.call("PATCH", PRO, json=LOWER)
    realtyos.seed.webhook_endpoint("realtyos", URL, ["tenant.entitlements.updated"])

    realtyos.admin.call("POST", f"{PRO}/migrate", json={"tenants": ["globex"]})

    [event] = session.scalars(select(AppEvent)).all()
    assert (event.type, event.payload["data"]["tenant"]) == (
        "tenant.entitlements.updated",
        "globex",
    )
    assert event.payload["data"]["features"]["listings.publish"] == {"limit": 10, "reset": "month"}
    assert event.payload["data"]["features"]["exports"] is False


def test_a_migration_that_fails_moves_nobody_and_records_nothing(
    realtyos: Setup, session: Session
) -> None:
    on_pro(realtyos, session, "acme", "globex")
    realtyos.seed.tenant("realtyos", "never")
    realtyos.admin.call("PATCH", PRO, json=LOWER)
    realtyos.seed.webhook_endpoint("realtyos", URL, ["tenant.entitlements.updated"])
    before = audit_actions(session)

    unknown = realtyos.admin.call(
        "POST", f"{PRO}/migrate", expect=404, json={"tenants": ["acme", "nobody"]}
    )
    stranger = realtyos.admin.call(
        "POST", f"{PRO}/migrate", expect=400, json={"tenants": ["acme", "never"]}
    )

    assert unknown["error"]["code"] == "tenant_not_found"
    assert (stranger["error"]["code"], stranger["error"]["param"]) == ("invalid_request", "migrate")
    assert set(session.scalars(select(TenantPlanVersion.version))) == {1}
    assert audit_actions(session) == before
    assert session.scalars(select(AppEvent)).all() == []
    assert limit(realtyos, "acme") == 100


def test_bad_migration_bodies_get_the_error_envelope(realtyos: Setup) -> None:
    bodies: list[dict[str, Any]] = [
        {},
        {"tenants": []},
        {"tenants": "everyone"},
        {"tenants": ["acme"], "x": 1},
    ]
    for body in bodies:
        answer = realtyos.admin.call("POST", f"{PRO}/migrate", expect=422, json=body)
        assert answer["error"]["code"] == "validation_error"
    missing = realtyos.admin.call(
        "POST",
        "/admin/api/projects/realtyos/plans/gold/migrate",
        expect=404,
        json={"tenants": "all"},
    )
    assert missing["error"]["code"] == "plan_not_found"
    wrong = realtyos.admin.call("PATCH", f"{PRO}?migrate=some", expect=422, json=LOWER)
    assert wrong["error"]["code"] == "validation_error"


def test_a_migration_previewed_names_who_it_affects_and_moves_nobody(
    realtyos: Setup, session: Session
) -> None:
    on_pro(realtyos, session, "acme", "globex")
    realtyos.admin.call("PATCH", PRO, json=LOWER)

    answer = realtyos.admin.call("POST", f"{PRO}/migrate?dry_run=true", json={"tenants": "all"})

    assert [t["tenant"] for t in answer["tenants"]] == ["acme", "globex"]
    assert answer["tenants"][0]["lost"] == ["exports"]
    assert answer["tenants"][0]["limits_lowered"] == [
        {"feature": "listings.publish", "before": 100, "after": 10}
    ]
    assert limit(realtyos, "acme") == 100
    assert "plan.migrate" not in audit_actions(session)


def test_explain_names_the_version_chosen(realtyos: Setup, session: Session) -> None:
    on_pro(realtyos, session, "acme")
    realtyos.admin.call("PATCH", PRO, json=LOWER)
    body = {"tenant": "acme", "feature": "listings.publish", "explain": True}

    plan = realtyos.api.post("/v1/check", body).json()["explain"]["plan"]

    assert (plan["key"], plan["version"], plan["newest_version"]) == ("pro", 1, 2)
    assert "Version 1 applies: the one the tenant subscribed to (the newest is 2)." in plan["why"]


def test_every_tenant_at_once_reads_the_versions_one_tenant_at_a_time_does(
    realtyos: Setup, session: Session, clock: Any
) -> None:
    """The preview's and app webhooks' reading (`by_project`) picks each tenant's version as the
    check's one statement does: kept, newest, default."""
    on_pro(realtyos, session, "acme", "globex")
    realtyos.admin.call("PATCH", PRO, json=LOWER)
    realtyos.admin.call("PATCH", FREE, json={"features": {"listings.publish": {"limit": 4}}})
    realtyos.admin.call("POST", f"{PRO}/migrate", json={"tenants": ["globex"]})
    on_pro(realtyos, session, "initech")
    realtyos.seed.tenant("realtyos", "bare")
    project = session.scalars(select(Project).where(Project.key == "realtyos")).one()
    sql = Sql(session.connection().connection.cursor(), session.get_bind().dialect)
    now = clock()
    keys = service.period_keys(now)

    every = repository.by_project(sql, project_id=project.id, project_key="realtyos", **keys)

    chosen = {}
    for found in every:
        one = repository.by_tenant(
            sql, project_id=project.id, tenant_id=found.tenant_id or 0, **keys
        )
        assert one is not None
        at_once, alone = service.access_of(sql, found, now, 3), service.access_of(sql, one, now, 3)
        assert service.entitlements(at_once, now) == service.entitlements(alone, now)
        assert at_once.plan == alone.plan
        plan = at_once.plan
        assert plan is not None
        chosen[found.tenant_key] = (plan.key, plan.version, plan.kept)
    assert chosen == {
        "acme": ("pro", 1, True),
        "globex": ("pro", 2, True),
        "initech": ("pro", 2, True),
        "bare": ("free", 2, False),
    }
