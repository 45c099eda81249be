"""The pure access rules: which subscription grants, and which reset period a moment is in."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from billplane.entitlements.rules import SubscriptionState, period_for, subscription_grants_access
from billplane.entitlements.service import period_keys

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def state(
    status: str, *, start: datetime = NOW - timedelta(days=1), days: int = 30
) -> SubscriptionState:
    return SubscriptionState(
        status=status,
        stripe_price_id="price_pro",
        current_period_start=start,
        current_period_end=start + timedelta(days=days),
    )


@pytest.mark.parametrize("status", ["active", "trialing"])
def test_active_and_trialing_grant_access(status: str) -> None:
    assert subscription_grants_access(state(status), NOW, grace_days=3)


@pytest.mark.parametrize(
    "status", ["incomplete", "incomplete_expired", "unpaid", "canceled", "paused", "bogus"]
)
def test_other_statuses_deny_access(status: str) -> None:
    assert not subscription_grants_access(state(status), NOW, grace_days=3)


def test_past_due_grants_inside_the_grace_period() -> None:
    renewed = NOW - timedelta(days=2, hours=23)
    assert subscription_grants_access(state("past_due", start=renewed), NOW, grace_days=3)


def test_past_due_denies_once_the_grace_period_is_over() -> None:
    renewed = NOW - timedelta(days=3)
    assert not subscription_grants_access(state("past_due", start=renewed), NOW, grace_days=3)


def test_no_subscription_grants_nothing() -> None:
    assert not subscription_grants_access(None, NOW, grace_days=3)


def test_never_has_one_period_without_end() -> None:
    period = period_for("never", NOW, None)
    assert (period.key, period.resets_at) == ("never", None)


def test_day_resets_at_next_utc_midnight() -> None:
    late = datetime(2026, 11, 21, 23, 59, 59, tzinfo=UTC)
    period = period_for("day", late, None)
    assert period.resets_at == datetime(2026, 11, 22, tzinfo=UTC)
    assert period_for("day", late + timedelta(seconds=1), None).key != period.key


def test_day_is_computed_in_utc_whatever_the_callers_zone() -> None:
    from zoneinfo import ZoneInfo

    # 00:30 in Berlin (UTC+1 in November) on the 22nd is still the 21st in UTC.
    berlin = datetime(2026, 11, 22, 0, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    assert period_for("day", berlin, None).key == "d:2026-11-21"


@pytest.mark.parametrize(
    ("moment", "resets_at"),
    [
        (datetime(2026, 1, 31, 10, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)),
        (datetime(2026, 12, 31, 23, 59, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        (datetime(2028, 2, 29, tzinfo=UTC), datetime(2028, 3, 1, tzinfo=UTC)),
    ],
)
def test_month_resets_on_the_first_of_next_month(moment: datetime, resets_at: datetime) -> None:
    assert period_for("month", moment, None).resets_at == resets_at


def test_billing_period_follows_the_subscription() -> None:
    start = datetime(2026, 11, 10, 8, 30, tzinfo=UTC)
    period = period_for("billing_period", NOW, state("active", start=start))
    assert period.resets_at == start + timedelta(days=30)
    assert period.key == "bp:2026-11-10T08:30:00"


def test_billing_period_rolls_forward_when_a_renewal_is_late() -> None:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    sub = state("active", start=start, days=30)  # ended 2026-10-31; renewal not heard of yet
    period = period_for("billing_period", NOW, sub)
    assert period.resets_at == datetime(2026, 11, 30, tzinfo=UTC)


def test_billing_period_without_subscription_falls_back_to_the_month() -> None:
    assert period_for("billing_period", NOW, None) == period_for("month", NOW, None)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2027, 1, 1, 0, 0, tzinfo=UTC),
        datetime(2026, 12, 31, 20, 30, tzinfo=timezone(timedelta(hours=-5))),  # 01:30 UTC
    ],
)
def test_the_keys_a_check_reads_are_the_keys_of_the_days_and_months_periods(
    moment: datetime,
) -> None:
    """`period_keys` (formatted once a day) names the same periods as `period_for`, which the
    counters are written under: a wrong key would read another period's counter as this one's."""
    keys = period_keys(moment)
    assert keys["day_key"] == period_for("day", moment, None).key
    assert keys["month_key"] == period_for("month", moment, None).key
