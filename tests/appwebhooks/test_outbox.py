"""Events for client apps are written to the outbox in the transaction of the change they tell
of, only when the change alters something, only for endpoints that asked, with a sequence
number per tenant."""

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import factories
from billplane.appwebhooks.outbox import thresholds_crossed
from billplane.models import AppDelivery, AppEvent
from billplane.projects import service as features
from billplane.projects.service import get_project
from billplane.tenants import service as tenants
from conftest import Clock, Setup

TENANTS = "/admin/api/projects/realtyos/tenants"
PLANS = "/admin/api/projects/realtyos/plans"
URL = "https://app.realtyos.test/hooks"


def outbox(session: Session) -> list[dict[str, Any]]:
    """Each event written, oldest first: its type and its payload's `data`."""
    rows = session.scalars(select(AppEvent).order_by(AppEvent.id)).all()
    return [{"type": e.type, **e.payload["data"]} for e in rows]


def test_an_override_that_alters_what_a_tenant_may_do_is_told_with_its_new_terms(
    realtyos: Setup, session: Session
) -> None:
    endpoint = realtyos.seed.webhook_endpoint("realtyos", URL, ["tenant.entitlements.updated"])
    realtyos.admin.call(
        "PATCH", f"{TENANTS}/acme", json={"overrides": {"listings.publish": {"limit": 50}}}
    )

    [event] = outbox(session)
    assert event == {
        "type": "tenant.entitlements.updated",
        "project": "realtyos",
        "tenant": "acme",
        "sequence": 1,
        "plan": "free",
        "previous_plan": "free",
        "status": "active",
        "features": {
            "ai.tokens": True,
            "exports": False,
            "listings.publish": {"limit": 50, "reset": "month"},
        },
    }
    [delivery] = session.scalars(select(AppDelivery)).all()
    assert (delivery.endpoint_id, delivery.status) == (endpoint.endpoint.id, "pending")


def test_a_change_rolled_back_leaves_no_event(
    realtyos: Setup, session: Session, clock: Clock
) -> None:
    realtyos.seed.webhook_endpoint("realtyos", URL)
    project = get_project(session, "realtyos")
    changes = tenants.TenantChanges(status="archived")

    written: list[str] = []

    def change_then_fail() -> None:
        with session.begin_nested():
            tenants.update_tenant(
                session, project, "acme", changes, actor="admin", now=clock(), grace_days=3
            )
            written.extend(e["type"] for e in outbox(session))
            raise RuntimeError("the edge's transaction fails after the change")

    with pytest.raises(RuntimeError):
        change_then_fail()

    assert written == ["tenant.entitlements.updated"]  # it was there, in the same transaction

    assert outbox(session) == []
    assert session.scalar(select(func.count()).select_from(AppDelivery)) == 0


def test_nothing_is_written_when_nothing_changed_or_nobody_asked(
    realtyos: Setup, session: Session
) -> None:
    realtyos.admin.call("PATCH", f"{TENANTS}/acme", json={"status": "archived"})  # nobody asked
    realtyos.seed.webhook_endpoint("realtyos", URL, ["tenant.subscription.updated"])
    realtyos.admin.call("PATCH", f"{TENANTS}/acme", json={"status": "active"})  # not this type
    realtyos.seed.webhook_endpoint("realtyos", URL, ["tenant.entitlements.updated"])
    realtyos.admin.call("PATCH", f"{TENANTS}/acme", json={"name": "Acme Inc."})  # alters nothing

    assert outbox(session) == []


def test_a_plan_edit_tells_only_the_tenants_on_that_plan_in_sequence(
    realtyos: Setup, session: Session, clock: Clock
) -> None:
    for key in ("globex", "initech"):
        realtyos.seed.tenant("realtyos", key)
    factories.subscribe(
        session,
        project="realtyos",
        tenant="globex",
        status="active",
        price="price_pro",
        period_start=clock.now - timedelta(days=1),
        period_end=clock.now + timedelta(days=29),
    )
    realtyos.seed.webhook_endpoint("realtyos", URL, ["tenant.entitlements.updated"])
    pro = {"exports": True, "listings.publish": {"limit": 200}, "ai.tokens": True}
    free = {"listings.publish": {"limit": 5}, "ai.tokens": True}

    # Moved to the new version at once: globex bought the old one.
    realtyos.admin.call("PATCH", f"{PLANS}/pro?migrate=all", json={"features": pro})
    realtyos.admin.call("PATCH", f"{PLANS}/free", json={"features": free})

    told = [(e["tenant"], e["sequence"], e["plan"]) for e in outbox(session)]
    assert told == [
        ("globex", 1, "pro"),
        ("acme", 1, "free"),
        ("initech", 1, "free"),
    ]


@pytest.mark.parametrize(
    ("before", "after", "limit", "crossed"),
    [
        (0, 7, 10, ()),
        (7, 8, 10, (80,)),
        (7, 10, 10, (80, 100)),
        (8, 9, 10, ()),
        (9, 12, 10, (100,)),
        (10, 11, 10, ()),
        (0, 5, None, ()),
        (0, 5, 0, ()),
        (0, 1, 1, (80, 100)),
    ],
)
def test_thresholds_are_crossed_once_on_the_way_up(
    before: int, after: int, limit: int | None, crossed: tuple[int, ...]
) -> None:
    assert thresholds_crossed(before, after, limit) == crossed


def test_usage_reaching_80_and_100_percent_is_told_once_each_per_period(
    realtyos: Setup, session: Session, clock: Clock
) -> None:
    realtyos.admin.call(
        "PATCH", f"{TENANTS}/acme", json={"overrides": {"listings.publish": {"limit": 10}}}
    )
    realtyos.seed.webhook_endpoint("realtyos", URL, ["tenant.usage.threshold"])

    def use(quantity: int, key: str, **extra: Any) -> int:
        body = {"tenant": "acme", "feature": "listings.publish", "quantity": quantity}
        answer = realtyos.api.post("/v1/usage", {**body, "idempotency_key": key, **extra})
        return int(answer.status_code)

    assert [use(7, "a"), use(1, "b"), use(1, "c"), use(1, "b")] == [201, 201, 201, 200]
    batch = [
        {"tenant": "acme", "feature": "listings.publish", "idempotency_key": key}
        for key in ("d", "e")
    ]
    assert realtyos.api.post("/v1/usage/batch", {"events": batch}).status_code == 200
    assert use(1, "f", enforce=True) == 402
    clock.now = clock.now.replace(month=12, day=2)
    assert [use(7, "g"), use(1, "h")] == [201, 201]

    told = [(e["threshold"], e["used"], e["limit"], e["period"]) for e in outbox(session)]
    assert told == [
        (80, 8, 10, "m:2026-11"),
        (100, 10, 10, "m:2026-11"),
        (80, 8, 10, "m:2026-12"),
    ]
    assert [e["sequence"] for e in outbox(session)] == [1, 2, 3]


def test_a_previewed_change_writes_no_event(realtyos: Setup, session: Session) -> None:
    realtyos.seed.webhook_endpoint("realtyos", URL, ["tenant.entitlements.updated"])

    preview = realtyos.admin.call(
        "PATCH", f"{TENANTS}/acme?dry_run=true", json={"status": "archived"}
    )

    assert preview["tenants"]
    assert outbox(session) == []


def test_archiving_a_feature_tells_the_tenants_granted_it_and_restoring_it_tells_them_again(
    realtyos: Setup, session: Session, clock: Clock
) -> None:
    realtyos.seed.tenant("realtyos", "globex")
    factories.subscribe(
        session,
        project="realtyos",
        tenant="globex",
        status="active",
        price="price_pro",
        period_start=clock.now - timedelta(days=1),
        period_end=clock.now + timedelta(days=29),
    )
    realtyos.seed.webhook_endpoint("realtyos", URL, ["tenant.entitlements.updated"])
    path = "/admin/api/projects/realtyos/features/exports"  # granted by pro only

    realtyos.admin.call("PATCH", path, json={"name": "CSV exports"})  # alters nothing
    assert outbox(session) == []
    realtyos.admin.call("PATCH", path, json={"status": "archived"})
    realtyos.admin.call("PATCH", path, json={"status": "archived"})  # already: nothing more
    realtyos.admin.call("PATCH", path, json={"status": "active"})

    told = [(e["tenant"], e["sequence"], e["features"]["exports"]) for e in outbox(session)]
    assert told == [("globex", 1, False), ("globex", 2, True)]


def test_a_feature_archived_in_a_transaction_rolled_back_leaves_no_event(
    realtyos: Setup, session: Session, clock: Clock
) -> None:
    realtyos.seed.webhook_endpoint("realtyos", URL, ["tenant.entitlements.updated"])
    project = get_project(session, "realtyos")
    written: list[str] = []

    def archive_then_fail() -> None:
        with session.begin_nested():
            features.update_feature(
                session, project, "listings.publish", features.FeatureChanges(status="archived"),
                actor="admin", now=clock(), grace_days=3,
            )  # fmt: skip
            written.extend(e["tenant"] for e in outbox(session))
            raise RuntimeError("the edge's transaction fails after the change")

    with pytest.raises(RuntimeError):
        archive_then_fail()

    assert written == ["acme"]  # written in the change's own transaction
    assert outbox(session) == []


def test_a_new_feature_tells_no_one_as_no_plan_grants_it_yet(
    realtyos: Setup, session: Session
) -> None:
    realtyos.seed.webhook_endpoint("realtyos", URL, ["tenant.entitlements.updated"])

    realtyos.admin.call(
        "POST", "/admin/api/projects/realtyos/features", 201,
        json={"key": "reports", "name": "Reports", "type": "boolean"},
    )  # fmt: skip

    assert outbox(session) == []
