"""The double's own clock, which tests set and advance, and billing-interval arithmetic on it.

The clock stands still unless moved, so `created` stamps and periods are reproducible; a test
moves it with `advance()` or `set()` to stage renewals, trial ends or stale events.
"""

import calendar
import threading
import time
from datetime import UTC, datetime, timedelta

SECONDS_PER_DAY = 86_400


class Clock:
    """Unix seconds, frozen at construction (wall time by default) until moved."""

    def __init__(self, start: int | None = None) -> None:
        self._now = int(time.time()) if start is None else start
        self._lock = threading.Lock()

    @property
    def now(self) -> int:
        return self._now

    def set(self, timestamp: int) -> None:
        with self._lock:
            self._now = int(timestamp)

    def advance(self, seconds: int = 0, *, days: int = 0) -> int:
        """Move forward (never back: Stripe time does not run backwards) and return the new now."""
        step = seconds + days * SECONDS_PER_DAY
        if step < 0:
            raise ValueError("the clock only moves forward; use set() to rewind")
        with self._lock:
            self._now += step
            return self._now


def add_interval(timestamp: int, interval: str, count: int = 1) -> int:
    """`timestamp` moved by `count` billing intervals, months and years on the calendar."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    if interval == "day":
        return int((moment + timedelta(days=count)).timestamp())
    if interval == "week":
        return int((moment + timedelta(weeks=count)).timestamp())
    if interval == "month":
        return int(_add_months(moment, count).timestamp())
    if interval == "year":
        return int(_add_months(moment, 12 * count).timestamp())
    raise ValueError(f"unknown interval {interval!r}")


def _add_months(moment: datetime, months: int) -> datetime:
    # Jan 31 + 1 month is Feb 28/29, as Stripe bills: clamp to the month's last day.
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)
