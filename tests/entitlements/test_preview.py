"""`?dry_run=true` on catalogue changes: what each tenant would gain and lose, nothing changed."""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from billplane.entitlements import repository, service
from billplane.hotpath import Sql
from billplane.models import Project
from factories import subscribe

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
FREE = "/admin/api/projects/realtyos/plans/free"
PRO = "/admin/api/projects/realtyos/plans/pro"
ACME = "/admin/api/projects/realtyos/tenants/acme"


def preview(setup: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    joined = "&" if "?" in path else "?"
    answer = setup.admin.call("PATCH", f"{path}{joined}dry_run=true", json=body)
    return answer  # type: ignore[no-any-return]


def entitlements(setup: Any, tenant: str = "acme") -> dict[str, Any]:
    return setup.api.get(f"/v1/tenants/{tenant}/entitlements").json()  # type: ignore[no-any-return]


def use(setup: Any, quantity: int) -> None:
    body = {"tenant": "acme", "feature": "listings.publish", "quantity": quantity}
    assert setup.api.post("/v1/usage", {**body, "idempotency_key": "u"}).status_code == 201


def test_a_lower_limit_names_who_is_already_over_it_and_changes_nothing(realtyos: Any) -> None:
    realtyos.seed.tenant("realtyos", "other")
    use(realtyos, 2)
    before = entitlements(realtyos)
    answer = preview(
        realtyos, FREE, {"features": {"listings.publish": {"limit": 1}, "ai.tokens": True}}
    )
    assert answer["summary"] == {
        "tenants_checked": 2,
        "tenants_affected": 2,
        "gaining": 0,
        "losing": 0,
        "limits_raised": 0,
        "limits_lowered": 2,
        "over_limit": 1,
        "falling_to_no_plan": 0,
    }
    acme = answer["tenants"][0]
    assert acme == {
        "tenant": "acme",
        "plan_before": "free",
        "plan_after": "free",
        "gained": [],
        "lost": [],
        "limits_raised": [],
        "limits_lowered": [{"feature": "listings.publish", "before": 3, "after": 1}],
        "over_limit": [{"feature": "listings.publish", "limit": 1, "used": 2}],
        "falls_to_no_plan": False,
    }
    assert answer["tenants"][1]["over_limit"] == []  # `other` used nothing
    assert entitlements(realtyos) == before
    plan = realtyos.admin.call("GET", FREE)
    assert plan["features"]["listings.publish"] == {"limit": 3, "reset": "month"}
    audit = realtyos.admin.call("GET", "/admin/api/audit?project=realtyos")["data"]
    assert "plan.update" not in {entry["action"] for entry in audit}


def test_what_the_preview_says_is_what_applying_does(realtyos: Any, session: Any) -> None:
    subscribe(
        session,
        project="realtyos",
        tenant="acme",
        status="active",
        price="price_pro",
        period_start=NOW - timedelta(days=1),
        period_end=NOW + timedelta(days=29),
    )
    change = {"features": {"listings.publish": {"limit": 500, "reset": "month"}}}
    answer = preview(realtyos, f"{PRO}?migrate=all", change)
    (acme,) = answer["tenants"]
    assert acme["lost"] == ["ai.tokens", "exports"]
    assert acme["limits_raised"] == [{"feature": "listings.publish", "before": 100, "after": 500}]
    realtyos.admin.call("PATCH", f"{PRO}?migrate=all", json=change)
    granted = {f["feature"]: f for f in entitlements(realtyos)["features"]}
    assert granted["exports"]["reason"] == "not_in_plan"
    assert granted["listings.publish"]["limit"] == 500


def test_tenants_left_with_no_plan_are_named(realtyos: Any) -> None:
    answer = preview(realtyos, FREE, {"is_default": False, "stripe_price_id": "price_free"})
    (acme,) = answer["tenants"]
    assert (acme["plan_before"], acme["plan_after"], acme["falls_to_no_plan"]) == (
        "free",
        None,
        True,
    )
    assert acme["lost"] == ["ai.tokens", "listings.publish"]
    assert answer["summary"]["falling_to_no_plan"] == 1


def test_an_override_change_is_previewed_for_its_tenant(realtyos: Any) -> None:
    answer = preview(realtyos, ACME, {"overrides": {"exports": True}})
    assert [(t["tenant"], t["gained"]) for t in answer["tenants"]] == [("acme", ["exports"])]
    assert realtyos.admin.call("GET", ACME)["overrides"] == {}
    unchanged = preview(realtyos, ACME, {"name": "Acme Realty Inc"})
    assert (unchanged["summary"]["tenants_affected"], unchanged["tenants"]) == (0, [])


def test_a_change_that_would_fail_fails_the_preview_alike(realtyos: Any) -> None:
    body = {"status": "archived"}  # the default plan cannot be archived
    refused = realtyos.admin.call("PATCH", f"{FREE}?dry_run=true", expect=400, json=body)
    assert refused["error"]["param"] == "status"


def test_every_tenant_at_once_reads_what_one_tenant_at_a_time_does(
    realtyos: Any, session: Any, clock: Any
) -> None:
    """`repository.by_project` (the preview's) and the per-tenant statement agree, tenant by
    tenant: subscribed, overridden, archived, with usage in several periods, and plan-less."""
    for key in ("sub", "over", "gone", "bare"):
        realtyos.seed.tenant("realtyos", key)
    subscribe(
        session,
        project="realtyos",
        tenant="sub",
        status="past_due",
        price="price_pro",
        period_start=NOW - timedelta(days=1),
        period_end=NOW + timedelta(days=29),
    )
    realtyos.admin.call(
        "PATCH",
        "/admin/api/projects/realtyos/tenants/over",
        json={"overrides": {"exports": True, "listings.publish": {"limit": 9, "reset": "day"}}},
    )
    realtyos.admin.call(
        "PATCH", "/admin/api/projects/realtyos/tenants/gone", json={"status": "archived"}
    )
    for tenant, feature, quantity in [
        ("sub", "ai.tokens", 40),
        ("over", "listings.publish", 2),
        ("acme", "listings.publish", 1),
    ]:
        body = {"tenant": tenant, "feature": feature, "quantity": quantity}
        response = realtyos.api.post("/v1/usage", {**body, "idempotency_key": f"{tenant}-1"})
        assert response.status_code == 201, response.text
    project = session.scalars(select(Project).where(Project.key == "realtyos")).one()
    sql = Sql(session.connection().connection.cursor(), session.get_bind().dialect)
    now = clock()
    keys = service.period_keys(now)
    every = repository.by_project(sql, project_id=project.id, project_key="realtyos", **keys)
    assert sorted(f.tenant_key or "" for f in every) == ["acme", "bare", "gone", "over", "sub"]
    for found in every:
        one = repository.by_tenant(
            sql, project_id=project.id, tenant_id=found.tenant_id or 0, **keys
        )
        assert one is not None
        at_once = service.entitlements(service.access_of(sql, found, now, 3), now)
        alone = service.entitlements(service.access_of(sql, one, now, 3), now)
        assert at_once == alone, found.tenant_key
