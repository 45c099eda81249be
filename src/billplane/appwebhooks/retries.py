"""When a failed delivery is tried again: exponential backoff for three days, then it gives up
(and an endpoint that failed for all of three days is disabled; see `sender`).

After the n-th failed attempt the next waits 5 s x 3^(n-1), at most 12 hours: 5 s, 15 s, 45 s,
~2 min, ~7 min, 20 min, 1 h, 3 h, 9 h, then every 12 h, and one last attempt at the three days'
end: 15 attempts in all for an app that never answers. The first delay is a setting
(BILLPLANE_APP_WEBHOOKS_FIRST_RETRY), so that tests with a real clock need not wait.
"""

from datetime import datetime, timedelta

RETRY_FOR = timedelta(days=3)
FIRST_DELAY = timedelta(seconds=5)
FACTOR = 3
LONGEST_DELAY = timedelta(hours=12)


# 3^40 times even a millisecond is past the longest delay: the exponent goes no higher.
MOST_DOUBLINGS = 40


def delay_after(attempts: int, first: timedelta = FIRST_DELAY) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt in a row (1 for the first)."""
    exponent = min(max(attempts - 1, 0), MOST_DOUBLINGS)
    seconds = first.total_seconds() * FACTOR**exponent
    return min(timedelta(seconds=min(seconds, LONGEST_DELAY.total_seconds())), LONGEST_DELAY)


def next_attempt(
    attempts: int, attempted_at: datetime, give_up_at: datetime, first: timedelta = FIRST_DELAY
) -> datetime | None:
    """When to try again after a failed attempt; None once the three days are over."""
    if attempted_at >= give_up_at:
        return None
    return min(attempted_at + delay_after(attempts, first), give_up_at)
