"""The refusal log: every refused check and 402 kept, filtered and paged, pruned by age and count.

In these tests a refusal is written at once, in the test's transaction (`conftest`'s stand-in
for the writer); tests/usage/test_concurrency.py proves the real background path on a server.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billplane.hotpath import Sql
from billplane.models import Project, Refusal
from billplane.refusals import repository
from billplane.refusals.repository import Noted

LOG = "/admin/api/projects/realtyos/refusals"


def logged(setup: Any, query: str = "") -> list[dict[str, Any]]:
    return setup.admin.call("GET", f"{LOG}{query}")["data"]  # type: ignore[no-any-return]


def check(setup: Any, feature: str, quantity: int = 1) -> dict[str, Any]:
    body = {"tenant": "acme", "feature": feature, "quantity": quantity}
    return setup.api.post("/v1/check", body).json()  # type: ignore[no-any-return]


def test_refused_checks_are_kept_and_allowed_ones_are_not(realtyos: Any, clock: Any) -> None:
    assert check(realtyos, "listings.publish")["allowed"] is True
    assert check(realtyos, "listings.publish", quantity=5)["reason"] == "limit_reached"
    assert check(realtyos, "exports")["reason"] == "not_in_plan"
    assert check(realtyos, "teleport")["reason"] == "unknown_feature"
    rows = logged(realtyos)
    assert [(r["feature"], r["reason"]) for r in rows] == [
        ("teleport", "unknown_feature"),
        ("exports", "not_in_plan"),
        ("listings.publish", "limit_reached"),
    ]
    limit_reached = rows[2]
    del limit_reached["id"]
    assert limit_reached == {
        "tenant": "acme",
        "feature": "listings.publish",
        "reason": "limit_reached",
        "source": "check",
        "quantity": 5,
        "limit": 3,
        "used": 0,
        "at": clock().isoformat().replace("+00:00", "Z"),
    }


def test_402s_are_kept_from_usage_and_batches(realtyos: Any) -> None:
    usage = {"tenant": "acme", "feature": "listings.publish", "enforce": True}
    assert realtyos.api.post("/v1/usage", {**usage, "idempotency_key": "a", "quantity": 3})
    refused = realtyos.api.post("/v1/usage", {**usage, "idempotency_key": "b"})
    assert refused.status_code == 402
    events = [{**usage, "idempotency_key": f"e{i}"} for i in range(2)]
    not_enforced = {"tenant": "acme", "feature": "listings.publish", "idempotency_key": "free"}
    batch = realtyos.api.post("/v1/usage/batch", {"events": [*events, not_enforced]})
    assert [e["status"] for e in batch.json()["data"]] == [402, 402, 201]
    rows = logged(realtyos)
    assert [(r["source"], r["reason"], r["used"], r["limit"]) for r in rows] == [
        ("usage", "limit_reached", 3, 3)
    ] * 3


def test_filters_and_pages(realtyos: Any, clock: Any) -> None:
    check(realtyos, "exports")
    clock.advance(hours=1)
    middle = clock()
    check(realtyos, "listings.publish", quantity=9)
    clock.advance(hours=1)
    check(realtyos, "exports")
    assert len(logged(realtyos, "?reason=not_in_plan")) == 2
    assert [r["reason"] for r in logged(realtyos, "?feature=listings.publish")] == ["limit_reached"]
    assert logged(realtyos, "?tenant=other") == []
    since = middle.isoformat().replace("+00:00", "Z")
    assert [r["feature"] for r in logged(realtyos, f"?since={since}")] == [
        "exports",
        "listings.publish",
    ]
    assert [r["feature"] for r in logged(realtyos, f"?until={since}")] == ["exports"]
    first = realtyos.admin.call("GET", f"{LOG}?limit=2")
    assert (len(first["data"]), first["has_more"]) == (2, True)
    after = first["data"][-1]["id"]
    rest = realtyos.admin.call("GET", f"{LOG}?limit=2&starting_after={after}")
    assert (len(rest["data"]), rest["has_more"]) == (1, False)
    realtyos.admin.call("GET", "/admin/api/projects/nope/refusals", expect=404)


def test_refusals_older_than_the_window_go(realtyos: Any, clock: Any) -> None:
    check(realtyos, "exports")
    clock.advance(days=29)
    check(realtyos, "exports")
    assert len(logged(realtyos)) == 2
    clock.advance(days=2)  # the first is now 31 days old: the next write prunes it
    check(realtyos, "exports")
    assert len(logged(realtyos)) == 2


def test_a_project_keeps_its_newest_rows_only(realtyos: Any, session: Session) -> None:
    project_id = session.scalars(select(Project.id).where(Project.key == "realtyos")).one()
    now = datetime(2026, 11, 21, tzinfo=UTC)
    sql = Sql(session.connection().connection.cursor(), session.get_bind().dialect)
    noted = [
        Noted(project_id, "acme", f"f{i}", "no_plan", "check", 1, None, None, now) for i in range(5)
    ]
    repository.store(sql, noted)
    repository.prune_beyond(sql, project_id, 3)
    kept = session.scalars(select(Refusal.feature).order_by(Refusal.id)).all()
    assert kept == ["f2", "f3", "f4"]
    repository.prune_before(sql, now + timedelta(seconds=1))
    assert session.scalar(select(func.count()).select_from(Refusal)) == 0
