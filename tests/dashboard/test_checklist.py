""" "What to do next": each item ticked from live records and from what Stripe answers, and the
first open item highlighted with the action to take and a link to take it."""

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from billplane.status.checklist import Stripe, checklist, next_item
from billplane.status.probes import HANDLED_EVENTS, EndpointStatus, KeyStatus, PriceStatus
from billplane.status.repository import ProjectSetup
from conftest import Admin, Clock, Setup
from dashboard.conftest import Operator, in_stripe, stripe_price
from dashboard.test_status import delivery
from factories import Seed
from stripe_double import StripeDouble

FIRST_APP = ["project", "feature", "plan", "tenant", "first_check"]
PAYMENTS = ["stripe_key", "priced_plan", "webhook_secret", "webhook_endpoint", "first_event"]


def states(page: str) -> dict[str, str]:
    return dict(re.findall(r'data-item="([a-z_]+)" data-state="([a-z]+)"', page))


def highlighted(page: str) -> str:
    found = re.findall(r'class="check-item [^"]*is-next[^"]*" data-item="([a-z_]+)"', page)
    assert len(found) <= 1
    return found[0] if found else ""


def next_link(page: str) -> str:
    block = page.split('data-testid="next-step"', 1)[1].split("</div>", 1)[0]
    found = re.search(r'<a class="btn btn-primary" href="([^"]+)"', block)
    assert found, block
    return found.group(1)


def test_an_empty_server_asks_for_a_project_first(operator: Operator) -> None:
    page = operator.page("/")
    assert list(states(page)) == FIRST_APP + PAYMENTS
    assert all(states(page)[key] == "open" for key in FIRST_APP)
    assert highlighted(page) == "project"
    assert next_link(page) == "/projects#new-project"
    assert "Create a project for your app" in page


def test_the_next_item_moves_as_the_records_appear(
    operator: Operator, seed: Seed, client: TestClient
) -> None:
    token = seed.project("realtyos").token.secret
    steps: list[tuple[str, str, Callable[[], object]]] = [
        ("feature", "/projects/realtyos#new-feature", lambda: None),
        (
            "plan",
            "/projects/realtyos/plans#new-plan",
            lambda: seed.feature("realtyos", "exports", "boolean"),
        ),
        (
            "tenant",
            "/projects/realtyos/tenants#new-tenant",
            lambda: seed.plan("realtyos", "free", is_default=True, features={"exports": True}),
        ),
        ("first_check", "/builder?project=realtyos", lambda: seed.tenant("realtyos", "acme")),
    ]
    for done, (expected, link, make) in enumerate(steps, start=1):
        make()
        page = operator.page("/")
        assert [k for k in FIRST_APP if states(page)[k] == "done"] == FIRST_APP[:done]
        assert highlighted(page) == expected
        assert next_link(page) == link

    check = client.post(
        "/v1/check",
        json={"tenant": "acme", "feature": "exports"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert check.status_code == 200
    assert check.json()["allowed"] is True
    page = operator.page("/")
    assert all(states(page)[key] == "done" for key in FIRST_APP)
    # Then Stripe: with no key set, that is the next thing to do, with Stripe's key page.
    assert highlighted(page) == "stripe_key"
    assert next_link(page) == "https://dashboard.stripe.com/apikeys"


def test_without_stripe_the_stripe_items_are_open_or_unknown_never_done(
    operator: Operator, realtyos: Setup
) -> None:
    page = operator.page("/")
    assert {states(page)[k] for k in PAYMENTS} <= {"open", "unknown"}
    assert states(page)["webhook_endpoint"] == "unknown"
    assert "Stripe is not configured" in page


def test_stripe_items_follow_what_stripe_says(
    stripe_operator: Operator,
    stripe_seed: Seed,
    double: StripeDouble,
    session: Session,
    clock: Clock,
) -> None:
    stripe_seed.project("realtyos")
    stripe_seed.feature("realtyos", "exports", "boolean")
    page = stripe_operator.page("/")
    assert states(page)["stripe_key"] == "done"
    assert states(page)["webhook_secret"] == "done"
    assert states(page)["priced_plan"] == "open"
    assert states(page)["webhook_endpoint"] == "open"
    assert states(page)["first_event"] == "open"

    # A plan whose price Stripe does not know is not enough; an active recurring one is.
    stripe_seed.plan("realtyos", "ghost", stripe_price_id="price_ghost")
    page = stripe_operator.page("/")
    assert states(page)["priced_plan"] == "open"
    assert "price_ghost (not found in Stripe)" in page
    stripe_seed.plan("realtyos", "pro", stripe_price_id=stripe_price(double))
    assert states(stripe_operator.page("/"))["priced_plan"] == "done"

    # An endpoint for another URL does not count; ours with too few events names the missing.
    url = "https://billing.example.com/webhooks/stripe"
    in_stripe(
        double,
        "/v1/webhook_endpoints",
        {"url": "https://other.example/hook", "enabled_events[0]": "*"},
    )
    assert states(stripe_operator.page("/"))["webhook_endpoint"] == "open"
    in_stripe(double, "/v1/webhook_endpoints", {"url": url, "enabled_events[0]": "invoice.paid"})
    page = stripe_operator.page("/")
    assert states(page)["webhook_endpoint"] == "open"
    assert "customer.subscription.updated" in page
    events = {f"enabled_events[{i}]": name for i, name in enumerate(HANDLED_EVENTS)}
    in_stripe(double, "/v1/webhook_endpoints", {"url": url, **events})
    assert states(stripe_operator.page("/"))["webhook_endpoint"] == "done"

    session.add(delivery(clock.now - timedelta(minutes=1)))
    session.flush()
    assert states(stripe_operator.page("/"))["first_event"] == "done"


def test_an_inactive_price_leaves_the_plan_item_open(
    stripe_operator: Operator, stripe_seed: Seed, double: StripeDouble
) -> None:
    stripe_seed.project("realtyos")
    price = stripe_price(double)
    in_stripe(double, f"/v1/prices/{price}", {"active": "false"})
    stripe_seed.plan("realtyos", "pro", stripe_price_id=price)
    page = stripe_operator.page("/")
    assert states(page)["priced_plan"] == "open"
    assert "inactive in Stripe" in page


def test_everything_done_says_so(stripe_operator: Operator) -> None:
    items = checklist(
        [ProjectSetup("p", "P", 1, 1, 1, ("price_1",), first_check_at=None, granting_plans=1)],
        Stripe(
            key=KeyStatus("connected — test mode", "ok"),
            key_set=True,
            webhook_secret_set=True,
            prices={"price_1": PriceStatus(True, True, 2000, "usd", "month")},
            endpoint=EndpointStatus(registered=True, enabled=True),
            events_received=3,
            webhook_url="https://b.example/webhooks/stripe",
        ),
    )
    assert [i.key for i in items if i.state != "done"] == ["first_check"]
    first = next_item(items)
    assert first is not None
    assert first.key == "first_check"


def test_a_one_time_price_is_not_a_plan_price(stripe_operator: Operator) -> None:
    one_time = PriceStatus(True, True, 5000, "usd", None)
    assert not one_time.usable
    assert "recurring" in one_time.label
    assert PriceStatus(True, True, 500, "jpy", "month").label == "active — 500 JPY / month"
    assert PriceStatus(True, True, 2000, "usd", "month").label == "active — 20.00 USD / month"


def test_how_the_pieces_fit_is_explained(operator: Operator) -> None:
    page = operator.page("/")
    section = page.split("How the pieces fit", 1)[1]
    order = [
        section.index(f"<strong>{piece}</strong>")
        for piece in ["Project", "Plan", "Tenant", "Client app"]
    ]
    assert order == sorted(order)


def test_every_view_of_the_webhook_endpoint_agrees(
    stripe_operator: Operator, double: StripeDouble
) -> None:
    """The dashboard's overview and webhook page, `/admin/api/status` and
    `/admin/api/stripe/check` read one probe: a trailing slash in Stripe is the same URL, and a
    disabled endpoint is registered but not done anywhere."""
    admin = Admin(stripe_operator.client)

    def views() -> tuple[str, str, dict[str, Any]]:
        status = admin.call("GET", "/admin/api/status")
        [item] = [i for i in status["checklist"] if i["key"] == "webhook_endpoint"]
        overview = states(stripe_operator.page("/"))["webhook_endpoint"]
        assert overview == item["state"]
        return item["state"], item["action"] or "", admin.call("GET", "/admin/api/stripe/check")

    events = {f"enabled_events[{i}]": name for i, name in enumerate(HANDLED_EVENTS)}
    url = "https://billing.example.com/webhooks/stripe/"  # as an operator may paste it
    endpoint = in_stripe(double, "/v1/webhook_endpoints", {"url": url, **events})
    state, _, report = views()
    assert state == "done"
    assert report["webhook"] == {
        "url": url.rstrip("/"),
        "secret_set": True,
        "registered": True,
        "enabled": True,
        "missing_events": [],
        "endpoint": endpoint["id"],
    }
    assert "yes, with every event" in stripe_operator.page("/webhook")

    in_stripe(double, f"/v1/webhook_endpoints/{endpoint['id']}", {"disabled": "true"})
    state, action, report = views()
    assert state == "open"
    assert "disabled" in action
    assert report["webhook"]["registered"] is True
    assert report["webhook"]["enabled"] is False
    assert report["ok"] is False
    assert ">disabled</span>" in stripe_operator.page("/webhook")


def test_before_a_project_exists_every_checklist_link_opens_a_page(operator: Operator) -> None:
    page = operator.page("/")
    links = re.findall(r'<a (?:class="[^"]*" )?href="(/[^"]*)"', page.split("What to do next")[1])
    assert links
    for link in links:
        assert operator.client.get(link.split("#")[0]).status_code == 200, link
    assert "/projects/plans" not in page
    assert "/projects/tenants" not in page


def test_a_plan_that_grants_nothing_leaves_the_plan_item_open(
    operator: Operator, admin: Admin, seed: Seed
) -> None:
    seed.project("realtyos")
    seed.feature("realtyos", "exports", "boolean")
    seed.plan("realtyos", "free", is_default=True, features={})
    assert states(operator.page("/"))["plan"] == "open"
    admin.call(
        "PATCH",
        "/admin/api/projects/realtyos/plans/free",
        json={"features": {"exports": True}},
    )
    assert states(operator.page("/"))["plan"] == "done"
