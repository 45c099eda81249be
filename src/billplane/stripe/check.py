"""What the server can see of Stripe: the key, each plan's price, and the webhook endpoint.

`billplane stripe check` prints it, `GET /admin/api/stripe/check` answers it; nothing is changed.
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billplane.errors import StripeUnavailable
from billplane.plans import prices
from billplane.settings import Settings
from billplane.stripe.gateway import NOT_CONFIGURED, StripeGateway
from billplane.webhooks.handlers import HANDLED_TYPES

WEBHOOK_PATH = "/webhooks/stripe"


@dataclass(frozen=True)
class PricedPlan:
    project: str
    plan: str
    price_id: str


def check_stripe(
    stripe: StripeGateway,
    settings: Settings,
    plans: list[PricedPlan],
    clock: Callable[[], datetime],
) -> dict[str, Any]:
    url = settings.billplane_public_url + WEBHOOK_PATH
    report: dict[str, Any] = {
        "configured": stripe.configured,
        "mode": stripe.mode if stripe.configured else None,
        "key": {"valid": False, "error": None},
        "plans": [],
        "webhook": {
            "url": url,
            "secret_set": bool(settings.stripe_webhook_secret),
            "registered": None,
            "enabled": None,
            "missing_events": None,
        },
        "ok": False,
    }
    if not stripe.configured:
        report["key"]["error"] = f"{NOT_CONFIGURED}: set STRIPE_SECRET_KEY."
        return report
    try:
        stripe.verify_key()
    except StripeUnavailable as exc:
        report["key"]["error"] = exc.message
        return report
    report["key"]["valid"] = True
    report["plans"] = _plans(stripe, plans, clock)
    report["webhook"].update(_webhook(stripe, url))
    report["ok"] = (
        all(p["stripe"].get("usable") for p in report["plans"])
        and report["webhook"]["registered"] is True
        and report["webhook"]["enabled"] is True
        and not report["webhook"]["missing_events"]
        and report["webhook"]["secret_set"]
    )
    return report


def _plans(
    stripe: StripeGateway, plans: list[PricedPlan], clock: Callable[[], datetime]
) -> list[dict[str, Any]]:
    lookups = {(p.project, p.plan): prices.look_up(stripe, p.price_id, clock()) for p in plans}
    currencies: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for (project, plan), lookup in lookups.items():
        if lookup.price is not None:
            currencies[project].append((plan, lookup.price.currency))
    out = []
    for p in plans:
        others = {c for plan, c in currencies[p.project] if plan != p.plan}
        verdict = prices.verdict(lookups[(p.project, p.plan)], others, stripe_mode=stripe.mode)
        out.append({"project": p.project, "plan": p.plan, "price": p.price_id, "stripe": verdict})
    return out


def _webhook(stripe: StripeGateway, url: str) -> dict[str, Any]:
    try:
        endpoints = [e for e in stripe.webhook_endpoints() if e.url == url]
    except StripeUnavailable as exc:
        return {"registered": None, "error": exc.message}
    if not endpoints:
        return {"registered": False, "enabled": False, "missing_events": list(HANDLED_TYPES)}
    enabled = [e for e in endpoints if e.enabled] or endpoints
    events = set(enabled[0].enabled_events)
    missing = [] if "*" in events else [t for t in HANDLED_TYPES if t not in events]
    return {
        "registered": True,
        "enabled": enabled[0].enabled,
        "missing_events": missing,
        "endpoint": enabled[0].id,
    }
