""" "What to do next": the setup checklist, ticked from live records and what Stripe says.

Two tracks. The first gets a client app answered (project → feature → plan → tenant → first check)
and needs no Stripe at all, since a free default plan already grants features and limits; the
second takes payments. The first open item of the first track not yet done is the one to do next.
An item billplane cannot verify is `unknown`, never ticked on trust.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from billplane.status.probes import HANDLED_EVENTS, EndpointStatus, KeyStatus, PriceStatus
from billplane.status.repository import ProjectSetup

State = Literal["done", "open", "unknown"]

FIRST_APP = "Answer your first client app"
PAYMENTS = "Take payments with Stripe"
STRIPE_KEYS_URL = "https://dashboard.stripe.com/apikeys"


@dataclass(frozen=True)
class Item:
    key: str
    group: str
    title: str
    state: State
    action: str  # the exact next step, in one sentence
    link: str | None = None
    link_text: str | None = None


@dataclass(frozen=True)
class Stripe:
    """What the server can see of Stripe, for the checklist."""

    key: KeyStatus
    key_set: bool
    webhook_secret_set: bool
    prices: Mapping[str, PriceStatus]
    endpoint: EndpointStatus
    events_received: int
    webhook_url: str


def checklist(projects: list[ProjectSetup], stripe: Stripe) -> list[Item]:
    return [*_first_app(projects), *_payments(projects, stripe)]


def grouped(items: list[Item]) -> list[tuple[str, list[Item]]]:
    """The items by track, in the order the tracks are to be done."""
    return [(group, [i for i in items if i.group == group]) for group in (FIRST_APP, PAYMENTS)]


def next_item(items: list[Item]) -> Item | None:
    return next((item for item in items if item.state == "open"), None)


def _first_app(projects: list[ProjectSetup]) -> list[Item]:
    first = projects[0].key if projects else None
    # Before a project exists, every step's link leads to creating one.
    base = f"/projects/{first}" if first else None

    def link(section: str) -> str:
        return f"{base}{section}" if base else "/projects#new-project"

    def item(key: str, title: str, done: bool, action: str, link: str, text: str) -> Item:
        return Item(key, FIRST_APP, title, "done" if done else "open", action, link, text)

    return [
        item(
            "project",
            "Create a project",
            bool(projects),
            "Create a project for your app; its project token is shown once, right after.",
            "/projects#new-project",
            "New project",
        ),
        item(
            "feature",
            "Define a feature",
            any(p.features for p in projects),
            "Add a feature: something a plan unlocks, e.g. listings.publish with a monthly limit.",
            link("#new-feature"),
            "Add a feature",
        ),
        item(
            "plan",
            "Create a plan",
            any(p.granting_plans for p in projects),
            "Create a plan that grants a feature; a free default plan needs no Stripe price.",
            link("/plans#new-plan"),
            "New plan",
        ),
        item(
            "tenant",
            "Add a tenant",
            any(p.tenants for p in projects),
            "Add a tenant: the billing identity of one client, keyed by your app's own id.",
            link("/tenants#new-tenant"),
            "New tenant",
        ),
        item(
            "first_check",
            "First check from a client app",
            any(p.first_check_at for p in projects),
            "Call POST /v1/check from your app with the project token: copy a snippet.",
            f"/builder?project={first}" if first else "/builder",
            "API call builder",
        ),
    ]


def _payments(projects: list[ProjectSetup], stripe: Stripe) -> list[Item]:
    return [
        _stripe_key(stripe),
        _priced_plan(projects, stripe),
        Item(
            "webhook_secret",
            PAYMENTS,
            "Webhook signing secret set",
            "done" if stripe.webhook_secret_set else "open",
            "Set STRIPE_WEBHOOK_SECRET to the endpoint's signing secret (whsec_…) and restart.",
            "/webhook",
            "Webhook setup",
        ),
        _endpoint(stripe),
        Item(
            "first_event",
            PAYMENTS,
            "First event received",
            "done" if stripe.events_received else "open",
            "Send a test event from the endpoint's page in Stripe, or complete a test checkout.",
            "/webhook",
            "Recent events",
        ),
    ]


def _stripe_key(stripe: Stripe) -> Item:
    title = "Stripe key set and valid"
    key = stripe.key

    def item(state: State, action: str, link: bool = True) -> Item:
        if not link:
            return Item("stripe_key", PAYMENTS, title, state, action)
        return Item("stripe_key", PAYMENTS, title, state, action, STRIPE_KEYS_URL, "Stripe keys")

    if key.ok:
        return item("done", key.label, link=False)
    if not stripe.key_set:
        return item(
            "open", "Set STRIPE_SECRET_KEY (sk_test_… to start) in the environment and restart."
        )
    if key.problem == "refused":
        return item("open", "Stripe refused the key: set a valid STRIPE_SECRET_KEY and restart.")
    if key.problem == "forbidden":
        action = (
            "Stripe accepts the key but it may not read customers: set a secret key (sk_…) or "
            "give the restricted key that right, and restart."
        )
        return item("open", action)
    if key.problem == "unreachable":
        action = (
            "Stripe could not be reached, so the key is not checked yet: check that this server "
            "can reach Stripe, then reload."
        )
        return item("unknown", action, link=False)
    # Rate-limited, or an error on Stripe's side: nothing to fix here but to wait.
    return item("unknown", key.detail or key.label, link=False)


def _priced_plan(projects: list[ProjectSetup], stripe: Stripe) -> Item:
    title = "A plan whose price exists in Stripe and is active"
    first = projects[0].key if projects else None
    link = f"/projects/{first}/plans" if first else "/projects"
    prices = [price for p in projects for price in p.prices]
    if not prices:
        action = "Give a plan the id of a recurring Stripe price (price_…)."
        return Item("priced_plan", PAYMENTS, title, "open", action, link, "Plans")
    statuses = [stripe.prices.get(price, PriceStatus(found=None)) for price in prices]
    if any(s.usable for s in statuses):
        return Item("priced_plan", PAYMENTS, title, "done", "A plan's price is active in Stripe.")
    if all(s.found is None for s in statuses):
        why = next((s.why for s in statuses if s.why), None)
        action = f"billplane could not ask Stripe about the prices: {why or 'unknown reason.'}"
        return Item("priced_plan", PAYMENTS, title, "unknown", action, link, "Plans")
    bad = ", ".join(f"{p} ({s.label})" for p, s in zip(prices, statuses, strict=True))
    action = f"Fix the plans' prices in Stripe or here: {bad}."
    return Item("priced_plan", PAYMENTS, title, "open", action, link, "Plans")


def _endpoint(stripe: Stripe) -> Item:
    title = "Webhook endpoint registered in Stripe"
    endpoint = stripe.endpoint
    if endpoint.registered is None:
        why = endpoint.why or "unknown reason."
        action = f"billplane could not ask Stripe about its webhook endpoints: {why}"
        return Item("webhook_endpoint", PAYMENTS, title, "unknown", action, "/webhook", "Webhook")
    if not endpoint.registered:
        action = (
            f"In Stripe, add an endpoint for {stripe.webhook_url} "
            f"with the {len(HANDLED_EVENTS)} events listed."
        )
        return Item("webhook_endpoint", PAYMENTS, title, "open", action, "/webhook", "Webhook")
    if not endpoint.enabled:
        action = f"In Stripe, enable the endpoint for {stripe.webhook_url}: it is disabled."
        return Item("webhook_endpoint", PAYMENTS, title, "open", action, "/webhook", "Webhook")
    if endpoint.missing_events:
        action = "Add these events to the endpoint in Stripe: " + ", ".join(endpoint.missing_events)
        return Item("webhook_endpoint", PAYMENTS, title, "open", action, "/webhook", "Webhook")
    return Item("webhook_endpoint", PAYMENTS, title, "done", "Stripe sends the listed events here.")
