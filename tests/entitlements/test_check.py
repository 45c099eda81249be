"""`/v1/check` and entitlements: every reason, the numbers, the effective plan and overrides."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from factories import subscribe

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def check(setup: Any, feature: str, tenant: str = "acme", **extra: Any) -> dict[str, Any]:
    response = setup.api.post("/v1/check", {"tenant": tenant, "feature": feature, **extra})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def use(setup: Any, feature: str, quantity: int, key: str, tenant: str = "acme") -> Any:
    body = {"tenant": tenant, "feature": feature, "quantity": quantity, "idempotency_key": key}
    response = setup.api.post("/v1/usage", body)
    assert response.status_code == 201, response.text
    return response.json()


def test_allowed_on_the_default_plan_with_numbers(realtyos: Any) -> None:
    answer = check(realtyos, "listings.publish")
    assert answer == {
        "allowed": True,
        "reason": "ok",
        "tenant": "acme",
        "feature": "listings.publish",
        "plan": "free",
        "subscription_status": None,
        "limit": 3,
        "used": 0,
        "remaining": 3,
        "resets_at": "2026-12-01T00:00:00Z",
    }


def test_boolean_feature_answers_without_numbers(realtyos: Any) -> None:
    answer = check(realtyos, "exports")
    assert (answer["allowed"], answer["reason"]) == (False, "not_in_plan")
    assert "limit" not in answer
    assert "used" not in answer


def test_metered_feature_is_counted_but_has_no_limit(realtyos: Any) -> None:
    use(realtyos, "ai.tokens", 1500, "ai-1")
    answer = check(realtyos, "ai.tokens", quantity=10**9)
    assert answer["allowed"] is True
    assert (answer["used"], answer["limit"], answer["remaining"]) == (1500, None, None)


def test_limit_reached_when_the_quantity_does_not_fit(realtyos: Any) -> None:
    use(realtyos, "listings.publish", 2, "l-1")
    assert check(realtyos, "listings.publish")["allowed"] is True
    answer = check(realtyos, "listings.publish", quantity=2)
    assert (answer["allowed"], answer["reason"]) == (False, "limit_reached")
    assert (answer["used"], answer["remaining"]) == (2, 1)


def test_unknown_feature_is_a_reason_not_an_error(realtyos: Any) -> None:
    answer = check(realtyos, "teleport")
    assert (answer["allowed"], answer["reason"], answer["plan"]) == (
        False,
        "unknown_feature",
        "free",
    )


def test_no_plan_without_subscription_or_default(realtyos: Any) -> None:
    realtyos.admin.call(
        "PATCH",
        "/admin/api/projects/realtyos/plans/free",
        json={"is_default": False, "stripe_price_id": "price_free"},
    )
    answer = check(realtyos, "listings.publish")
    assert (answer["allowed"], answer["reason"], answer["plan"]) == (False, "no_plan", None)


def test_subscription_inactive_when_it_lapsed_and_there_is_no_default(
    realtyos: Any, session: Any
) -> None:
    realtyos.admin.call(
        "PATCH",
        "/admin/api/projects/realtyos/plans/free",
        json={"is_default": False, "stripe_price_id": "price_free"},
    )
    subscribe(
        session,
        project="realtyos",
        tenant="acme",
        status="canceled",
        price="price_pro",
        period_start=NOW - timedelta(days=40),
        period_end=NOW - timedelta(days=10),
    )
    answer = check(realtyos, "exports")
    assert (answer["allowed"], answer["reason"]) == (False, "subscription_inactive")
    assert answer["subscription_status"] == "canceled"


@pytest.mark.parametrize(
    ("status", "started_days_ago", "plan"),
    [
        ("active", 1, "pro"),
        ("trialing", 1, "pro"),
        ("past_due", 2, "pro"),  # inside the 3-day grace the test settings use
        ("past_due", 4, "free"),  # grace over: back to the default plan
        ("unpaid", 1, "free"),
        ("canceled", 1, "free"),
        ("incomplete", 1, "free"),
        ("paused", 1, "free"),
    ],
)
def test_effective_plan_follows_subscription_status(
    realtyos: Any, session: Any, status: str, started_days_ago: int, plan: str
) -> None:
    start = NOW - timedelta(days=started_days_ago)
    subscribe(
        session,
        project="realtyos",
        tenant="acme",
        status=status,
        price="price_pro",
        period_start=start,
        period_end=start + timedelta(days=30),
    )
    answer = check(realtyos, "exports")
    assert answer["plan"] == plan
    assert answer["allowed"] is (plan == "pro")
    assert answer["subscription_status"] == status


def test_active_subscription_to_an_unknown_price_falls_back_to_default(
    realtyos: Any, session: Any
) -> None:
    subscribe(
        session,
        project="realtyos",
        tenant="acme",
        status="active",
        price="price_other",
        period_start=NOW,
        period_end=NOW + timedelta(days=30),
    )
    assert check(realtyos, "exports")["plan"] == "free"


def test_cancel_at_period_end_keeps_access_until_the_period_ends(
    realtyos: Any, session: Any
) -> None:
    subscribe(
        session,
        project="realtyos",
        tenant="acme",
        status="active",
        price="price_pro",
        period_start=NOW - timedelta(days=20),
        period_end=NOW + timedelta(days=10),
        cancel_at_period_end=True,
    )
    assert check(realtyos, "exports")["allowed"] is True


def test_check_never_changes_usage(realtyos: Any) -> None:
    use(realtyos, "listings.publish", 1, "l-1")
    for _ in range(5):
        check(realtyos, "listings.publish", quantity=3)
    assert check(realtyos, "listings.publish")["used"] == 1


def test_day_limit_resets_at_utc_midnight(realtyos: Any, clock: Any) -> None:
    realtyos.admin.call(
        "PATCH",
        "/admin/api/projects/realtyos/plans/free",
        json={"features": {"listings.publish": {"limit": 2, "reset": "day"}}},
    )
    clock.now = datetime(2026, 11, 21, 23, 59, tzinfo=UTC)
    use(realtyos, "listings.publish", 2, "d-1")
    before = check(realtyos, "listings.publish")
    assert (before["allowed"], before["resets_at"]) == (False, "2026-11-22T00:00:00Z")
    clock.now = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)
    after = check(realtyos, "listings.publish")
    assert (after["allowed"], after["used"], after["remaining"]) == (True, 0, 2)


def test_month_limit_resets_on_the_first(realtyos: Any, clock: Any) -> None:
    clock.now = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    use(realtyos, "listings.publish", 3, "m-1")
    assert check(realtyos, "listings.publish")["reason"] == "limit_reached"
    clock.advance(hours=1)
    answer = check(realtyos, "listings.publish")
    assert (answer["allowed"], answer["used"], answer["resets_at"]) == (
        True,
        0,
        "2027-01-01T00:00:00Z",
    )


def test_never_limit_does_not_reset(realtyos: Any, clock: Any) -> None:
    realtyos.admin.call(
        "PATCH",
        "/admin/api/projects/realtyos/plans/free",
        json={"features": {"listings.publish": {"limit": 3, "reset": "never"}}},
    )
    use(realtyos, "listings.publish", 3, "n-1")
    clock.advance(days=400)
    answer = check(realtyos, "listings.publish")
    assert (answer["reason"], answer["used"], answer["resets_at"]) == ("limit_reached", 3, None)


def test_billing_period_limit_resets_when_the_period_ends(
    realtyos: Any, session: Any, clock: Any
) -> None:
    realtyos.admin.call(
        "PATCH",
        "/admin/api/projects/realtyos/plans/pro",
        json={"features": {"listings.publish": {"limit": 5, "reset": "billing_period"}}},
    )
    start = datetime(2026, 11, 10, 8, 0, tzinfo=UTC)
    subscribe(
        session,
        project="realtyos",
        tenant="acme",
        status="active",
        price="price_pro",
        period_start=start,
        period_end=start + timedelta(days=30),
    )
    use(realtyos, "listings.publish", 5, "bp-1")
    answer = check(realtyos, "listings.publish")
    assert (answer["reason"], answer["resets_at"]) == ("limit_reached", "2026-12-10T08:00:00Z")
    clock.now = start + timedelta(days=30)
    assert check(realtyos, "listings.publish")["used"] == 0


def test_override_limit_wins_over_the_plan(realtyos: Any) -> None:
    realtyos.admin.call(
        "PATCH",
        "/admin/api/projects/realtyos/tenants/acme",
        json={"overrides": {"listings.publish": {"limit": 50, "reset": "month"}}},
    )
    answer = check(realtyos, "listings.publish")
    assert (answer["limit"], answer["plan"]) == (50, "free")


def test_override_can_grant_a_feature_the_plan_lacks(realtyos: Any) -> None:
    realtyos.admin.call(
        "PATCH", "/admin/api/projects/realtyos/tenants/acme", json={"overrides": {"exports": True}}
    )
    assert check(realtyos, "exports")["allowed"] is True


def test_override_can_switch_a_feature_off(realtyos: Any, session: Any) -> None:
    subscribe(
        session,
        project="realtyos",
        tenant="acme",
        status="active",
        price="price_pro",
        period_start=NOW,
        period_end=NOW + timedelta(days=30),
    )
    realtyos.admin.call(
        "PATCH", "/admin/api/projects/realtyos/tenants/acme", json={"overrides": {"exports": False}}
    )
    answer = check(realtyos, "exports")
    assert (answer["allowed"], answer["reason"], answer["plan"]) == (False, "not_in_plan", "pro")


def test_override_applies_only_to_its_tenant(realtyos: Any) -> None:
    realtyos.seed.tenant("realtyos", "other")
    realtyos.admin.call(
        "PATCH", "/admin/api/projects/realtyos/tenants/acme", json={"overrides": {"exports": True}}
    )
    assert check(realtyos, "exports", tenant="other")["allowed"] is False


def test_entitlements_list_every_feature(realtyos: Any, session: Any) -> None:
    end = NOW + timedelta(days=30)
    subscribe(
        session,
        project="realtyos",
        tenant="acme",
        status="trialing",
        price="price_pro",
        period_start=NOW,
        period_end=end,
        trial_end=end,
    )
    use(realtyos, "listings.publish", 4, "e-1")
    response = realtyos.api.get("/v1/tenants/acme/entitlements")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["plan"] == "pro"
    assert body["subscription"] == {
        "status": "trialing",
        "current_period_end": "2026-12-21T12:00:00Z",
        "cancel_at_period_end": False,
        "trial_end": "2026-12-21T12:00:00Z",
    }
    features = {f["feature"]: f for f in body["features"]}
    assert set(features) == {"exports", "listings.publish", "ai.tokens"}
    assert features["exports"]["allowed"] is True
    assert (features["listings.publish"]["used"], features["listings.publish"]["remaining"]) == (
        4,
        96,
    )
    assert features["ai.tokens"]["limit"] is None


def test_entitlements_of_an_unknown_tenant_is_404(realtyos: Any) -> None:
    response = realtyos.api.get("/v1/tenants/nobody/entitlements")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "tenant_not_found"
