"""A plan's page lists its versions with how many tenants are on each; an edit applies to new
subscribers only or to everyone; tenants are moved to the newest version from the page."""

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from conftest import Setup
from dashboard.conftest import Operator
from factories import subscribe

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
PAGE = "/projects/realtyos/plans/pro"
PRO_LOWER = {
    "name": "Pro",
    "stripe_price_id": "price_pro",
    "trial_days": "0",
    "status": "active",
    "grant.listings.publish": "on",
    "limit.listings.publish": "10",
    "reset.listings.publish": "month",
    "grant.ai.tokens": "on",
}


def on_pro(setup: Setup, session: Session, *tenants: str) -> None:
    for key in tenants:
        if key != "acme":
            setup.seed.tenant("realtyos", key)
        subscribe(
            session,
            project="realtyos",
            tenant=key,
            status="active",
            price="price_pro",
            period_start=NOW - timedelta(days=1),
            period_end=NOW + timedelta(days=29),
            subscription_id=f"sub_{key}",
        )


def versions(page: str) -> dict[int, str]:
    """Version -> its row's text."""
    rows = re.findall(r'<tr data-version="(\d+)">(.*?)</tr>', page, re.S)
    return {int(v): re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).strip() for v, text in rows}


def tenants_on(page: str, version: int) -> int:
    return int(versions(page)[version].split()[-1])


def limit(setup: Setup, tenant: str) -> int:
    body = {"tenant": tenant, "feature": "listings.publish"}
    return int(setup.api.post("/v1/check", body).json()["limit"])


def test_the_plan_page_lists_versions_with_the_tenants_on_each(
    operator: Operator, realtyos: Setup, session: Session
) -> None:
    on_pro(realtyos, session, "acme", "globex")
    assert list(versions(operator.page(PAGE))) == [1]

    operator.post(PAGE, PRO_LOWER)  # new subscribers only: the form's default
    on_pro(realtyos, session, "initech")

    page = operator.page(PAGE)
    assert list(versions(page)) == [1, 2]
    assert (tenants_on(page, 1), tenants_on(page, 2)) == (2, 1)
    assert "newest" in versions(page)[2]
    assert [limit(realtyos, t) for t in ("acme", "globex", "initech")] == [100, 100, 10]


def test_an_edit_applied_to_everyone_moves_the_subscribers(
    operator: Operator, realtyos: Setup, session: Session
) -> None:
    on_pro(realtyos, session, "acme")
    operator.post(PAGE, {**PRO_LOWER, "apply_to": "all"})
    assert limit(realtyos, "acme") == 10
    assert tenants_on(operator.page(PAGE), 2) == 1


def test_moving_chosen_tenants_from_the_page_after_a_preview(
    operator: Operator, realtyos: Setup, session: Session
) -> None:
    on_pro(realtyos, session, "acme", "globex")
    operator.post(PAGE, PRO_LOWER)

    shown = operator.post(
        f"{PAGE}/migrate", {"tenants": "acme", "preview": "1"}, expect=200
    ).text.split('id="preview-title"')[1]
    assert "If you move these tenants" in shown
    assert "listings.publish 100 → 10" in shown
    assert limit(realtyos, "acme") == 100

    moved = operator.post(f"{PAGE}/migrate", {"tenants": "acme"})
    assert "Moved 1 tenant to version 2." in operator.follow(moved)
    assert [limit(realtyos, t) for t in ("acme", "globex")] == [10, 100]
    operator.post(f"{PAGE}/migrate", {"all": "on"})
    assert limit(realtyos, "globex") == 10


def test_moving_a_tenant_that_never_subscribed_is_a_form_error(
    operator: Operator, realtyos: Setup, session: Session
) -> None:
    on_pro(realtyos, session, "globex")
    operator.post(PAGE, PRO_LOWER)
    page = operator.post(f"{PAGE}/migrate", {"tenants": "acme"}, expect=422).text
    assert "never subscribed to plan" in page
    empty = operator.post(f"{PAGE}/migrate", {"tenants": " "}, expect=422).text
    assert 'id="migrate-tenants-error"' in empty
