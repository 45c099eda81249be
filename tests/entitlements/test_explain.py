"""`"explain": true` on `/v1/check` and `?explain=true` on entitlements: how an answer was reached.

The answer itself never changes with `explain`; what is added says which subscription was
considered, which plan was chosen and why, where the grant came from, and which counter was read.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from factories import subscribe

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def check(setup: Any, feature: str, **extra: Any) -> dict[str, Any]:
    response = setup.api.post("/v1/check", {"tenant": "acme", "feature": feature, **extra})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def subscribed(session: Any, status: str, price: str, started_days_ago: int) -> None:
    start = NOW - timedelta(days=started_days_ago)
    subscribe(
        session,
        project="realtyos",
        tenant="acme",
        status=status,
        price=price,
        period_start=start,
        period_end=start + timedelta(days=30),
    )


def test_explain_adds_how_and_changes_nothing_else(realtyos: Any) -> None:
    body = {"tenant": "acme", "feature": "listings.publish", "quantity": 1}
    usage = {**body, "idempotency_key": "x-1", "quantity": 2}
    assert realtyos.api.post("/v1/usage", usage).status_code == 201
    plain = check(realtyos, "listings.publish")
    explained = check(realtyos, "listings.publish", explain=True)
    why = explained.pop("explain")
    assert explained == plain
    assert "explain" not in plain
    assert why == {
        "subscription": None,
        "plan": {
            "key": "free",
            "source": "default",
            "version": 1,
            "newest_version": 1,
            "why": "The tenant has no subscription: the project's default plan applies. Version 1 "
            "applies: the newest, which a default plan's tenants follow.",
        },
        "tenant_archived": False,
        "feature_archived": False,
        "grant": {"source": "plan", "enabled": True, "limit": 3, "reset": "month"},
        "period": {
            "reset": "month",
            "key": "m:2026-11",
            "resets_at": "2026-12-01T00:00:00Z",
            "used": 2,
        },
    }


def test_a_subscribed_price_chooses_its_plan(realtyos: Any, session: Any) -> None:
    subscribed(session, "active", "price_pro", started_days_ago=1)
    why = check(realtyos, "exports", explain=True)["explain"]
    assert why["subscription"] == {
        "status": "active",
        "stripe_price_id": "price_pro",
        "grants_access": True,
        "grace_until": None,
    }
    assert (why["plan"]["key"], why["plan"]["source"]) == ("pro", "price")
    assert why["grant"]["source"] == "plan"
    assert why["period"] is None  # an on/off feature counts nothing


@pytest.mark.parametrize(
    ("status", "price", "days", "source", "grants", "why"),
    [
        ("past_due", "price_pro", 2, "price", True, "is for a price of this plan"),
        ("past_due", "price_pro", 4, "default", False, "is past_due, which grants no access"),
        ("active", "price_other", 1, "default", True, "No active plan of the project has the"),
    ],
)
def test_why_the_plan_was_chosen(
    realtyos: Any,
    session: Any,
    status: str,
    price: str,
    days: int,
    source: str,
    grants: bool,
    why: str,
) -> None:
    subscribed(session, status, price, started_days_ago=days)
    explained = check(realtyos, "exports", explain=True)["explain"]
    assert explained["plan"]["source"] == source
    assert why in explained["plan"]["why"]
    assert explained["subscription"]["grants_access"] is grants
    if status == "past_due":  # the 3-day grace of the test settings, from the period's start
        until = NOW - timedelta(days=days) + timedelta(days=3)
        assert explained["subscription"]["grace_until"] == until.isoformat().replace("+00:00", "Z")


def test_an_override_is_named_as_the_grants_source(realtyos: Any) -> None:
    realtyos.admin.call(
        "PATCH",
        "/admin/api/projects/realtyos/tenants/acme",
        json={"overrides": {"listings.publish": {"limit": 50, "reset": "day"}}},
    )
    why = check(realtyos, "listings.publish", explain=True)["explain"]
    assert why["grant"] == {"source": "override", "enabled": True, "limit": 50, "reset": "day"}
    assert (why["period"]["reset"], why["period"]["key"]) == ("day", "d:2026-11-21")


def test_no_plan_and_no_grant(realtyos: Any) -> None:
    realtyos.admin.call(
        "PATCH",
        "/admin/api/projects/realtyos/plans/free",
        json={"is_default": False, "stripe_price_id": "price_free"},
    )
    answer = check(realtyos, "exports", explain=True)
    assert answer["reason"] == "no_plan"
    assert answer["explain"]["plan"] == {
        "key": None,
        "source": "none",
        "version": None,
        "newest_version": None,
        "why": "The tenant has no subscription, and the project has no default plan.",
    }
    assert answer["explain"]["grant"] == {
        "source": "none",
        "enabled": None,
        "limit": None,
        "reset": None,
    }


def test_an_unknown_feature_explains_the_tenant_side_only(realtyos: Any) -> None:
    answer = check(realtyos, "teleport", explain=True)
    assert answer["reason"] == "unknown_feature"
    assert set(answer["explain"]) == {"subscription", "plan", "tenant_archived"}


def test_entitlements_explain_each_feature(realtyos: Any) -> None:
    path = "/v1/tenants/acme/entitlements"
    plain = realtyos.api.get(path).json()
    explained = realtyos.api.get(f"{path}?explain=true").json()
    assert explained.pop("explain")["plan"]["source"] == "default"
    sources = {f["feature"]: f.pop("explain")["grant"]["source"] for f in explained["features"]}
    assert explained == plain
    assert sources == {"exports": "none", "listings.publish": "plan", "ai.tokens": "plan"}
