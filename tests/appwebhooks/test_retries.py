"""The retry schedule: 5 s, then three times longer each time, at most 12 hours; a shorter first
delay (BILLPLANE_APP_WEBHOOKS_FIRST_RETRY) scales the whole schedule and keeps its ceiling."""

from datetime import UTC, datetime, timedelta

from billplane.appwebhooks.retries import LONGEST_DELAY, delay_after, next_attempt


def test_the_default_schedule_triples_from_5_seconds_up_to_12_hours() -> None:
    delays = [delay_after(n).total_seconds() for n in range(1, 12)]

    assert delays[:4] == [5, 15, 45, 135]
    assert delays[-2:] == [LONGEST_DELAY.total_seconds()] * 2
    assert delay_after(10_000) == LONGEST_DELAY


def test_a_shorter_first_delay_scales_the_schedule_and_keeps_its_ceiling() -> None:
    first = timedelta(milliseconds=200)

    assert [delay_after(n, first).total_seconds() for n in (1, 2, 3)] == [0.2, 0.6, 1.8]
    assert delay_after(60, first) == LONGEST_DELAY


def test_the_last_attempt_is_at_the_three_days_end_and_none_after() -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    give_up = start + timedelta(days=3)

    assert next_attempt(14, give_up - timedelta(hours=1), give_up) == give_up
    assert next_attempt(15, give_up, give_up) is None
