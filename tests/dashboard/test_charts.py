"""The dashboard's pictures: usage and checks per day of the last 30, refusals on the same days."""

from datetime import UTC, datetime

from billplane.dashboard import charts
from conftest import Setup
from dashboard.conftest import Operator

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def test_bars_are_shares_of_the_busiest_day_and_refusals_sit_below() -> None:
    days = charts.last_days(NOW)
    assert (len(days), days[0], days[-1]) == (30, "2026-10-23", "2026-11-21")
    assert charts.since(NOW) == datetime(2026, 10, 23, tzinfo=UTC)
    chart = charts.daily(
        "x",
        days,
        {"2026-11-20": 10, "2026-11-21": 5, "2026-09-01": 99},
        {"2026-11-21": 3},
        unit="calls",
    )
    assert [(b.title, b.height) for b in chart.bars] == [
        ("2026-11-20: 10 calls", charts.BARS_HEIGHT),
        ("2026-11-21: 5 calls", charts.BARS_HEIGHT / 2),
    ]
    assert chart.bars[0].y == 0
    assert chart.bars[1].y == charts.BARS_HEIGHT / 2
    assert chart.bars[1].x > chart.bars[0].x  # later days to the right
    (mark,) = chart.marks
    assert mark.title == "2026-11-21: 3 refused"
    assert mark.x == chart.bars[1].x  # the same day, the same place on the axis
    assert mark.y >= charts.BARS_HEIGHT  # in the band below the bars
    assert (chart.total, chart.refused) == (15, 3)  # a day before the window is not counted


def test_tenant_page_draws_usage_and_refusals_per_day(operator: Operator, realtyos: Setup) -> None:
    usage = {"tenant": "acme", "feature": "listings.publish"}
    yesterday = {"idempotency_key": "a", "quantity": 2, "timestamp": "2026-11-20T10:00:00Z"}
    assert realtyos.api.post("/v1/usage", {**usage, **yesterday}).status_code == 201
    assert realtyos.api.post("/v1/usage", {**usage, "idempotency_key": "b"}).status_code == 201
    realtyos.api.post("/v1/check", {**usage, "quantity": 3})  # 3 more than the 0 left: refused
    page = operator.page("/projects/realtyos/tenants/acme")
    pictures = page.split('id="days-title"')[1].split('id="refusals-title"')[0]
    assert "<title>2026-11-20: 2 listing</title>" in pictures
    assert "<title>2026-11-21: 1 listing</title>" in pictures
    assert "<title>2026-11-21: 1 refused</title>" in pictures
    assert 'aria-label="listings.publish: 3 in all, 1 refused' in pictures


def test_overview_draws_checks_and_refusals_per_project(
    operator: Operator, realtyos: Setup
) -> None:
    assert "No client app has asked" in operator.page("/")
    body = {"tenant": "acme", "feature": "listings.publish"}
    for quantity in (1, 2, 9):
        realtyos.api.post("/v1/check", {**body, "quantity": quantity})
    activity = operator.page("/").split('id="activity-title"')[1]
    assert "realtyos: checks per day" in activity
    assert "<title>2026-11-21: 3 checks</title>" in activity
    assert "<title>2026-11-21: 1 refused</title>" in activity
