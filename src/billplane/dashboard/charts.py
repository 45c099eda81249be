"""Pictures of the last 30 days, drawn on the server as SVG: no script, no build.

A chart is bars per UTC day (usage, or checks) with a band below them for what was refused the
same day, on the same time axis. Geometry is worked out here; `_macros.html` writes the SVG.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

DAYS = 30
WIDTH = 300  # the drawing's units (it scales to its box)
BARS_HEIGHT = 60
GAP = 4  # between the bars and the refusals' band
BAND_HEIGHT = 12
HEIGHT = BARS_HEIGHT + GAP + BAND_HEIGHT


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str  # shown on hover, and read by screen readers


@dataclass(frozen=True)
class DailyChart:
    label: str
    bars: list[Bar]
    marks: list[Bar]  # refusals, in the band below the bars
    total: int
    refused: int
    first_day: str
    last_day: str
    width: int = WIDTH
    height: int = HEIGHT
    bars_height: int = BARS_HEIGHT


def last_days(now: datetime, count: int = DAYS) -> list[str]:
    """The `count` UTC days up to today's, oldest first, as YYYY-MM-DD."""
    today = now.astimezone(UTC).date()
    return [(today - timedelta(days=back)).isoformat() for back in range(count - 1, -1, -1)]


def since(now: datetime, count: int = DAYS) -> datetime:
    """The first moment of the first of `last_days`."""
    first = datetime.fromisoformat(last_days(now, count)[0])
    return first.replace(tzinfo=UTC)


def daily(
    label: str,
    days: list[str],
    values: Mapping[str, int],
    refused: Mapping[str, int],
    *,
    unit: str,
) -> DailyChart:
    """Bars of `values` per day, each its share of the busiest day's height; `refused` in the
    band below, scaled the same way on its own."""
    step = WIDTH / len(days)
    width = step * 0.8
    peak = max((values.get(day, 0) for day in days), default=0)
    refused_peak = max((refused.get(day, 0) for day in days), default=0)
    bars, marks = [], []
    for index, day in enumerate(days):
        x = round(index * step + (step - width) / 2, 2)
        if amount := values.get(day, 0):
            height = max(1.0, round(amount / peak * BARS_HEIGHT, 2))
            bars.append(Bar(x, BARS_HEIGHT - height, width, height, f"{day}: {amount:,} {unit}"))
        if count := refused.get(day, 0):
            height = max(2.0, round(count / refused_peak * BAND_HEIGHT, 2))
            y = BARS_HEIGHT + GAP + BAND_HEIGHT - height
            marks.append(Bar(x, y, width, height, f"{day}: {count:,} refused"))
    return DailyChart(
        label=label,
        bars=bars,
        marks=marks,
        total=sum(values.get(day, 0) for day in days),
        refused=sum(refused.get(day, 0) for day in days),
        first_day=days[0],
        last_day=days[-1],
    )
