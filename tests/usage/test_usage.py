"""`/v1/usage` and `/v1/usage/batch`: exactly once per key, never over when enforced."""

from typing import Any

import pytest


def usage(setup: Any, expect: int, headers: dict[str, str] | None = None, **body: Any) -> Any:
    body = {"tenant": "acme", "feature": "listings.publish"} | body
    response = setup.api.post("/v1/usage", body, headers=headers or {})
    assert response.status_code == expect, response.text
    return response.json()


def used(setup: Any, feature: str = "listings.publish") -> int:
    answer = setup.api.post("/v1/check", {"tenant": "acme", "feature": feature}).json()
    return int(answer["used"])


def test_first_usage_is_recorded_with_201(realtyos: Any) -> None:
    body = usage(realtyos, 201, idempotency_key="k1", quantity=2)
    assert body == {
        "tenant": "acme",
        "feature": "listings.publish",
        "idempotency_key": "k1",
        "quantity": 2,
        "recorded": True,
        "duplicate": False,
        "used": 2,
        "limit": 3,
        "remaining": 1,
        "resets_at": "2026-12-01T00:00:00Z",
    }


def test_a_repeat_of_unlimited_usage_answers_the_first_body_with_no_remaining(
    realtyos: Any,
) -> None:
    first = usage(realtyos, 201, feature="ai.tokens", idempotency_key="m1", quantity=500)
    assert (first["limit"], first["remaining"], first["used"]) == (None, None, 500)
    repeat = usage(realtyos, 200, feature="ai.tokens", idempotency_key="m1", quantity=500)
    now = {"used": 500, "limit": None, "remaining": None, "resets_at": first["resets_at"]}
    assert repeat == first | {"duplicate": True, "current": now}


def test_usage_with_same_idempotency_key_counts_once(realtyos: Any) -> None:
    first = usage(realtyos, 201, idempotency_key="k1")
    usage(realtyos, 201, idempotency_key="k2")
    repeat = usage(realtyos, 200, idempotency_key="k1")
    now = {"used": 2, "limit": 3, "remaining": 1, "resets_at": first["resets_at"]}
    assert repeat == first | {"duplicate": True, "current": now}
    assert used(realtyos) == 2


def test_a_repeat_says_it_is_one_and_that_the_limit_has_since_been_reached(
    realtyos: Any,
) -> None:
    """The issue's case: pasted four times with one key, the answer still said `remaining: 2`.
    The first answer stays as it was; `current` and the header tell the retry how things are."""
    first = usage(realtyos, 201, idempotency_key="a1")
    usage(realtyos, 201, idempotency_key="a2", quantity=2)  # the limit of 3 is now reached
    for enforce in (False, True):
        response = realtyos.api.post(
            "/v1/usage",
            {"tenant": "acme", "feature": "listings.publish", "idempotency_key": "a1",
             "enforce": enforce},
        )  # fmt: skip
        assert response.status_code == 200, response.text
        assert response.headers["Idempotent-Replayed"] == "true"
        repeat = response.json()
        assert (repeat["duplicate"], repeat["used"], repeat["remaining"]) == (True, 1, 2)
        assert repeat["current"] == {
            "used": 3, "limit": 3, "remaining": 0, "resets_at": first["resets_at"]
        }  # fmt: skip
    fresh = realtyos.api.post(
        "/v1/usage", {"tenant": "acme", "feature": "listings.publish", "idempotency_key": "a3"}
    )
    assert "Idempotent-Replayed" not in fresh.headers
    assert "current" not in fresh.json()
    assert used(realtyos) == 4  # not enforced: the third call went over, and is counted


def test_idempotency_key_is_accepted_as_a_header(realtyos: Any) -> None:
    usage(realtyos, 201, headers={"Idempotency-Key": "hdr-1"})
    usage(realtyos, 200, headers={"Idempotency-Key": "hdr-1"})
    assert used(realtyos) == 1


def test_usage_without_idempotency_key_is_refused(realtyos: Any) -> None:
    error = usage(realtyos, 400)["error"]
    assert (error["code"], error["param"]) == ("invalid_request", "idempotency_key")
    assert used(realtyos) == 0


def test_reusing_a_key_for_another_quantity_is_a_conflict(realtyos: Any) -> None:
    usage(realtyos, 201, idempotency_key="k1", quantity=1)
    error = usage(realtyos, 409, idempotency_key="k1", quantity=2)["error"]
    assert error["code"] == "idempotency_key_reused"
    assert used(realtyos) == 1


def test_reusing_a_key_for_another_feature_is_a_conflict(realtyos: Any) -> None:
    usage(realtyos, 201, idempotency_key="k1")
    usage(realtyos, 409, idempotency_key="k1", feature="ai.tokens")
    assert used(realtyos, "ai.tokens") == 0


def test_idempotency_keys_are_per_tenant(realtyos: Any) -> None:
    realtyos.seed.tenant("realtyos", "other")
    usage(realtyos, 201, idempotency_key="shared")
    usage(realtyos, 201, idempotency_key="shared", tenant="other")
    assert used(realtyos) == 1


def test_enforced_usage_over_the_limit_is_402_and_counts_nothing(realtyos: Any) -> None:
    usage(realtyos, 201, idempotency_key="k1", quantity=2, enforce=True)
    error = usage(realtyos, 402, idempotency_key="k2", quantity=2, enforce=True)["error"]
    assert error["code"] == "limit_reached"
    assert (error["limit"], error["used"], error["remaining"]) == (3, 2, 1)
    assert used(realtyos) == 2


def test_enforced_usage_that_exactly_fits_is_recorded(realtyos: Any) -> None:
    body = usage(realtyos, 201, idempotency_key="k1", quantity=3, enforce=True)
    assert (body["used"], body["remaining"]) == (3, 0)


def test_a_refused_key_can_be_retried_once_there_is_room(realtyos: Any) -> None:
    """A 402 records nothing, so the same key is free to succeed later (e.g. after a reset)."""
    realtyos.admin.call(
        "PATCH",
        "/admin/api/projects/realtyos/tenants/acme",
        json={"overrides": {"listings.publish": {"limit": 1, "reset": "month"}}},
    )
    usage(realtyos, 201, idempotency_key="k1", enforce=True)
    usage(realtyos, 402, idempotency_key="k2", enforce=True)
    realtyos.admin.call(
        "PATCH",
        "/admin/api/projects/realtyos/tenants/acme",
        json={"overrides": {"listings.publish": {"limit": 2, "reset": "month"}}},
    )
    usage(realtyos, 201, idempotency_key="k2", enforce=True)
    assert used(realtyos) == 2


def test_unenforced_usage_may_pass_the_limit(realtyos: Any) -> None:
    body = usage(realtyos, 201, idempotency_key="k1", quantity=5)
    assert (body["used"], body["limit"], body["remaining"]) == (5, 3, 0)
    answer = realtyos.api.post("/v1/check", {"tenant": "acme", "feature": "listings.publish"})
    assert answer.json()["reason"] == "limit_reached"


def test_enforced_usage_of_a_feature_not_in_the_plan_is_402_not_in_plan(realtyos: Any) -> None:
    realtyos.admin.call(
        "PATCH",
        "/admin/api/projects/realtyos/plans/free",
        json={"features": {"ai.tokens": True}},
    )
    error = usage(realtyos, 402, idempotency_key="k1", enforce=True)["error"]
    assert error["code"] == "not_in_plan"
    assert used(realtyos) == 0


def test_metered_usage_is_never_blocked(realtyos: Any) -> None:
    body = usage(
        realtyos, 201, idempotency_key="k1", feature="ai.tokens", quantity=10**6, enforce=True
    )
    assert (body["used"], body["limit"], body["remaining"]) == (10**6, None, None)


def test_usage_of_an_on_off_feature_is_refused(realtyos: Any) -> None:
    error = usage(realtyos, 400, idempotency_key="k1", feature="exports")["error"]
    assert error["param"] == "feature"


def test_usage_of_an_unknown_feature_is_404(realtyos: Any) -> None:
    assert usage(realtyos, 404, idempotency_key="k1", feature="teleport")["error"]["code"] == (
        "unknown_feature"
    )


def test_a_typo_in_a_feature_key_is_answered_alike_by_check_and_usage(realtyos: Any) -> None:
    """Same code, same sentence, naming the closest key: a check still answers (allowed: false),
    a usage call is refused; neither counts anything."""
    checked = realtyos.api.post(
        "/v1/check", {"tenant": "acme", "feature": "listings.publsh"}
    ).json()
    error = usage(realtyos, 404, idempotency_key="k1", feature="listings.publsh")["error"]
    said = "No feature 'listings.publsh' in project 'realtyos'. Did you mean 'listings.publish'?"
    assert (checked["allowed"], checked["reason"], checked["message"]) == (
        False,
        "unknown_feature",
        said,
    )
    assert (error["code"], error["message"]) == ("unknown_feature", said)
    assert used(realtyos) == 0
    far = usage(realtyos, 404, idempotency_key="k2", feature="zzzzzz")["error"]["message"]
    assert far == "No feature 'zzzzzz' in project 'realtyos'."


def test_usage_for_an_unknown_tenant_is_404(realtyos: Any) -> None:
    error = usage(realtyos, 404, idempotency_key="k1", tenant="nobody")["error"]
    assert error["code"] == "tenant_not_found"


def test_usage_timestamp_more_than_five_minutes_ahead_is_refused(realtyos: Any) -> None:
    error = usage(realtyos, 422, idempotency_key="k1", timestamp="2026-11-21T12:05:01Z")["error"]
    assert (error["code"], error["param"]) == ("timestamp_out_of_range", "timestamp")
    assert "in the future" in error["message"]
    assert used(realtyos) == 0
    # A client clock a little fast is not refused (the test clock stands at 12:00).
    usage(realtyos, 201, idempotency_key="k1", timestamp="2026-11-21T12:04:59Z")


def test_usage_timestamp_older_than_35_days_is_refused(realtyos: Any) -> None:
    error = usage(realtyos, 422, idempotency_key="k1", timestamp="2026-10-17T11:59:59Z")["error"]
    assert (error["code"], error["param"]) == ("timestamp_out_of_range", "timestamp")
    assert "too long ago" in error["message"]
    usage(realtyos, 201, idempotency_key="k1", timestamp="2026-10-17T12:00:00Z")
    assert used(realtyos) == 1


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_usage_dated_at_the_ends_of_the_calendar_is_422_not_500(realtyos: Any, moment: str) -> None:
    """Year 1 at +14:00 is before year 1 in UTC: converting it overflowed into a 500."""
    error = usage(realtyos, 422, idempotency_key="k1", timestamp=moment)["error"]
    assert error["code"] == "timestamp_out_of_range"
    assert used(realtyos) == 0


def test_usage_timestamp_in_the_past_is_accepted(realtyos: Any) -> None:
    usage(realtyos, 201, idempotency_key="k1", timestamp="2026-11-21T11:00:00+00:00")
    assert used(realtyos) == 1


def test_batch_answers_each_event_in_order(realtyos: Any) -> None:
    events = [
        {"tenant": "acme", "feature": "listings.publish", "idempotency_key": "b1"},
        {"tenant": "acme", "feature": "teleport", "idempotency_key": "b2"},
        {
            "tenant": "acme",
            "feature": "listings.publish",
            "quantity": "two",
            "idempotency_key": "b3",
        },
        {"tenant": "acme", "feature": "listings.publish", "idempotency_key": "b1"},
        {
            "tenant": "acme",
            "feature": "listings.publish",
            "quantity": 5,
            "idempotency_key": "b4",
            "enforce": True,
        },
        {"tenant": "acme", "feature": "ai.tokens", "quantity": 7, "idempotency_key": "b5"},
        {"tenant": "acme", "feature": "listings.publish", "idempotency_key": "b6"},
    ]
    response = realtyos.api.post("/v1/usage/batch", {"events": events})
    assert response.status_code == 200, response.text
    results = response.json()["data"]
    assert [r["status"] for r in results] == [201, 404, 422, 200, 402, 201, 201]
    assert results[1]["error"]["code"] == "unknown_feature"
    assert results[2]["error"]["param"] == "quantity"
    assert results[3]["result"]["duplicate"] is True
    assert results[3]["result"]["current"]["used"] == 1  # b1 just before it in the batch
    assert results[4]["error"]["code"] == "limit_reached"
    assert results[6]["result"]["used"] == 2
    assert used(realtyos) == 2
    assert used(realtyos, "ai.tokens") == 7


def test_batch_refuses_only_its_events_dated_out_of_range(realtyos: Any) -> None:
    moments = [
        "2026-11-21T11:00:00Z",
        "0001-01-01T00:00:00+14:00",  # was a 500 for the whole batch, its first event kept
        "2026-11-01T00:00:00+02:00",
        "2027-11-21T12:00:00Z",
        "2026-09-01T00:00:00Z",
        None,
    ]
    events = [
        {"tenant": "acme", "feature": "ai.tokens", "idempotency_key": f"t{i}", "timestamp": moment}
        for i, moment in enumerate(moments)
    ]
    response = realtyos.api.post("/v1/usage/batch", {"events": events})
    assert response.status_code == 200, response.text
    results = response.json()["data"]
    assert [r["status"] for r in results] == [201, 422, 201, 422, 422, 201]
    assert {r["error"]["code"] for r in results if r["error"]} == {"timestamp_out_of_range"}
    assert used(realtyos, "ai.tokens") == 3


def test_batch_event_needs_its_own_idempotency_key(realtyos: Any) -> None:
    response = realtyos.api.post(
        "/v1/usage/batch", {"events": [{"tenant": "acme", "feature": "ai.tokens"}]}
    )
    assert response.json()["data"][0]["status"] == 400
    assert used(realtyos, "ai.tokens") == 0


def test_metered_use_without_a_plan_shows_in_entitlements(realtyos: Any) -> None:
    realtyos.admin.call(
        "PATCH",
        "/admin/api/projects/realtyos/plans/free",
        json={"is_default": False, "stripe_price_id": "price_free"},
    )
    usage(realtyos, 201, idempotency_key="k1", feature="ai.tokens", quantity=9)
    features = {
        f["feature"]: f
        for f in realtyos.api.get("/v1/tenants/acme/entitlements").json()["features"]
    }
    assert (features["ai.tokens"]["allowed"], features["ai.tokens"]["used"]) == (False, 9)


def test_unlimited_grant_of_a_limit_feature_counts_per_month(realtyos: Any) -> None:
    realtyos.admin.call(
        "PATCH",
        "/admin/api/projects/realtyos/tenants/acme",
        json={"overrides": {"listings.publish": True}},
    )
    body = usage(realtyos, 201, idempotency_key="k1", quantity=500, enforce=True)
    assert (body["used"], body["limit"], body["resets_at"]) == (500, None, "2026-12-01T00:00:00Z")
