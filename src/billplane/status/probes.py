"""What billplane can see of Stripe and of its webhook, for every place that shows it: the
dashboard's header, overview and pages, `GET /admin/api/status`, `GET /admin/api/stripe/check`
and `billplane stripe check` (`stripe_report`). Computed from settings, records and Stripe's own
answers (through the Stripe gateway), never hard-coded.

What Stripe could not be asked (not configured, unreachable) is "unknown", never assumed fine.
Every probe asks Stripe: call them outside any database transaction.
"""

import time
import weakref
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from billplane.errors import BillplaneError
from billplane.models import StripeEvent
from billplane.plans import prices
from billplane.settings import Settings
from billplane.stripe.errors import (
    StripeKeyForbidden,
    StripeKeyRefused,
    StripeRateLimited,
    StripeUnreachable,
)
from billplane.stripe.gateway import NOT_CONFIGURED, StripeGateway
from billplane.webhooks import WEBHOOK_PATH
from billplane.webhooks.handlers import HANDLED_TYPES

# The event types billplane acts on; every other type is stored as `ignored`.
HANDLED_EVENTS: tuple[str, ...] = tuple(HANDLED_TYPES)
# The key's status is in the header of every page: ask Stripe at most once a minute for it.
KEY_CHECK_SECONDS = 60.0
# Currencies Stripe counts in whole units (no cents).
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga"}
    | {"pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)

Tone = Literal["ok", "warn", "bad", "idle"]


@dataclass(frozen=True)
class Status:
    """One status as a person reads it: a short label, a colour, and the why in `detail`."""

    label: str
    tone: Tone
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.tone == "ok"


# Why the key is not known good: Stripe refused it or forbade the call (fix the key), or Stripe
# could not be asked (unreachable, rate-limiting, an error on its side: try again).
KeyProblem = Literal["refused", "forbidden", "unreachable", "rate_limited", "failed"]


@dataclass(frozen=True)
class KeyStatus(Status):
    """The Stripe key's status, with what went wrong as a type rather than as words."""

    problem: KeyProblem | None = None


@dataclass(frozen=True)
class PriceStatus:
    """What Stripe says of one price; `found` is None while billplane cannot ask Stripe."""

    found: bool | None
    active: bool = False
    amount: int | None = None  # minor units
    currency: str | None = None
    interval: str | None = None  # None for a one-time price
    why: str | None = None  # why it is unknown

    @property
    def usable(self) -> bool:
        """Checkout (mode subscription) needs an active, recurring price."""
        return self.found is True and self.active and self.interval is not None

    @property
    def label(self) -> str:
        if self.found is None:
            return "unknown"
        if not self.found:
            return "not found in Stripe"
        if not self.active:
            return "inactive in Stripe"
        if self.interval is None:
            return "one-time price: a plan needs a recurring one"
        if self.amount is None or self.currency is None:
            return "active"
        return f"active — {money(self.amount, self.currency)} / {self.interval}"


def money(amount: int, currency: str) -> str:
    if currency.lower() in ZERO_DECIMAL:
        return f"{amount:,} {currency.upper()}"
    return f"{amount / 100:,.2f} {currency.upper()}"


@dataclass(frozen=True)
class EndpointStatus:
    """Whether Stripe has a webhook endpoint for this server; None while it cannot be asked."""

    registered: bool | None
    enabled: bool | None = None
    missing_events: tuple[str, ...] = ()
    endpoint_id: str | None = None
    why: str | None = None  # why it is unknown, not registered or disabled

    @property
    def sending(self) -> bool:
        """Stripe sends this server every event billplane acts on."""
        return bool(self.registered and self.enabled and not self.missing_events)


def webhook_url(settings: Settings) -> str:
    return settings.billplane_public_url + WEBHOOK_PATH


def stripe_status(stripe: StripeGateway) -> KeyStatus:
    """`connected — test mode` once Stripe accepts the key; `error: …` when Stripe refuses it;
    `unknown — …` when Stripe could not say (unreachable, rate-limiting)."""
    if not stripe.configured:
        return KeyStatus("not configured", "idle", "Set STRIPE_SECRET_KEY to connect Stripe.")
    cached = _key_checks.get(stripe)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    status = _check_key(stripe)
    _key_checks[stripe] = (time.monotonic() + KEY_CHECK_SECONDS, status)
    return status


_key_checks: "weakref.WeakKeyDictionary[StripeGateway, tuple[float, KeyStatus]]" = (
    weakref.WeakKeyDictionary()
)


def _check_key(stripe: StripeGateway) -> KeyStatus:
    try:
        stripe.verify_key()
    except BillplaneError as exc:
        for kind, problem, label, tone in _KEY_PROBLEMS:
            if isinstance(exc, kind):
                return KeyStatus(label, tone, exc.message, problem=problem)
        problem, label, tone = _KEY_FAILED
        return KeyStatus(label, tone, exc.message, problem=problem)
    return KeyStatus(f"connected — {stripe.mode} mode", "ok")


# What Stripe's answer says of the key: only a refusal by Stripe itself is an `error:` the
# operator must fix; when Stripe could not answer, whether the key is valid is `unknown`.
_KEY_PROBLEMS: tuple[tuple[type[BillplaneError], KeyProblem, str, Tone], ...] = (
    (StripeKeyRefused, "refused", "error: key refused", "bad"),
    (StripeKeyForbidden, "forbidden", "error: key lacks permissions", "bad"),
    (StripeUnreachable, "unreachable", "unknown — Stripe unreachable", "warn"),
    (StripeRateLimited, "rate_limited", "unknown — Stripe rate-limiting", "warn"),
)
_KEY_FAILED: tuple[KeyProblem, str, Tone] = (
    "failed",
    "unknown — Stripe answered with an error",
    "warn",
)


def webhook_status(settings: Settings, last: StripeEvent | None, now: datetime) -> Status:
    """From the newest recorded delivery: the webhook works when events arrive and apply."""
    if not settings.stripe_webhook_secret:
        # Alarming only once payments are meant to work: without a key it is just a next step.
        tone: Tone = "bad" if settings.stripe_secret_key else "idle"
        return Status("secret missing", tone, "Set STRIPE_WEBHOOK_SECRET (whsec_…) from Stripe.")
    if last is None:
        return Status("waiting for first event", "warn", "No delivery from Stripe has arrived.")
    if last.outcome == "failed":
        return Status("failing", "bad", f"The newest event ({last.type}) failed: {last.error}")
    return Status(f"last event {ago(last.received_at, now)}", "ok", f"{last.type}: {last.outcome}")


def ago(then: datetime, now: datetime) -> str:
    minutes = int((now - then).total_seconds() // 60)
    if minutes < 1:
        return "<1 min ago"
    if minutes < 120:
        return f"{minutes} min ago"
    if minutes < 48 * 60:
        return f"{minutes // 60} h ago"
    return f"{minutes // (24 * 60)} days ago"


def price_status(lookup: prices.PriceLookup) -> PriceStatus:
    """What a person reads of one price, from the same lookup a plan's verdict is made of."""
    if lookup.unchecked is not None:
        return PriceStatus(found=None, why=lookup.unchecked.rstrip(".") + ".")
    price = lookup.price
    if price is None:
        return PriceStatus(found=False)
    return PriceStatus(
        found=True,
        active=price.active,
        amount=price.amount,
        currency=price.currency,
        interval=price.interval if price.type == "recurring" else None,
    )


def endpoint_status(stripe: StripeGateway, settings: Settings) -> EndpointStatus:
    """Whether Stripe sends the handled events to this server's webhook URL: of the endpoints
    for this URL (a trailing slash aside), the enabled one that misses the fewest events."""
    if not stripe.configured:
        return EndpointStatus(registered=None, why="Stripe is not configured.")
    try:
        endpoints = stripe.webhook_endpoints()
    except BillplaneError as exc:
        return EndpointStatus(registered=None, why=exc.message)
    url = webhook_url(settings)
    ours = [e for e in endpoints if e.url.rstrip("/") == url]
    if not ours:
        return EndpointStatus(
            registered=False,
            enabled=False,
            missing_events=HANDLED_EVENTS,
            why=f"No endpoint in Stripe sends to {url}.",
        )

    def missing(events: tuple[str, ...]) -> tuple[str, ...]:
        return () if "*" in events else tuple(t for t in HANDLED_EVENTS if t not in events)

    best = min(ours, key=lambda e: (not e.enabled, len(missing(e.enabled_events))))
    return EndpointStatus(
        registered=True,
        enabled=best.enabled,
        missing_events=missing(best.enabled_events),
        endpoint_id=best.id,
        why=None if best.enabled else "It is disabled in Stripe.",
    )


@dataclass(frozen=True)
class PricedPlan:
    project: str
    plan: str
    price_id: str


class KeyReport(BaseModel):
    valid: bool
    error: str | None
    problem: KeyProblem | None = None  # why it is not valid, when Stripe was asked


class PlanPriceReport(BaseModel):
    project: str
    plan: str
    price: str
    stripe: dict[str, Any]  # the plan's stored price verdict (see `plans.prices.verdict`)


class WebhookReport(BaseModel):
    url: str
    secret_set: bool
    registered: bool | None
    enabled: bool | None
    missing_events: list[str] | None
    endpoint: str | None = None  # Stripe's id of the endpoint that sends here
    error: str | None = None  # why Stripe could not be asked


class StripeReport(BaseModel):
    """What billplane can see of Stripe (`billplane stripe check` prints the same)."""

    configured: bool
    mode: str | None  # test | live
    key: KeyReport
    plans: list[PlanPriceReport]
    webhook: WebhookReport
    ok: bool


def stripe_report(
    stripe: StripeGateway,
    settings: Settings,
    plans: list[PricedPlan],
    clock: Callable[[], datetime],
) -> StripeReport:
    """Everything at once, for `billplane stripe check` and `GET /admin/api/stripe/check`: the
    key, each plan's price with its verdict, and the webhook endpoint. Changes nothing. Fields
    that could not be learnt are left unset (and out of the JSON)."""
    webhook = WebhookReport(
        url=webhook_url(settings),
        secret_set=bool(settings.stripe_webhook_secret),
        registered=None,
        enabled=None,
        missing_events=None,
    )
    report = StripeReport(
        configured=stripe.configured,
        mode=stripe.mode if stripe.configured else None,
        key=KeyReport(valid=False, error=None),
        plans=[],
        webhook=webhook,
        ok=False,
    )
    if not stripe.configured:
        report.key.error = f"{NOT_CONFIGURED}: set STRIPE_SECRET_KEY."
        return report
    key = _check_key(stripe)
    if not key.ok:
        report.key.error = key.detail
        report.key.problem = key.problem
        return report
    report.key.valid = True
    report.plans = _plan_verdicts(stripe, plans, clock)
    endpoint = endpoint_status(stripe, settings)
    if endpoint.registered is None:
        webhook.error = endpoint.why
    else:
        webhook.registered = endpoint.registered
        webhook.enabled = endpoint.enabled
        webhook.missing_events = list(endpoint.missing_events)
        if endpoint.endpoint_id:
            webhook.endpoint = endpoint.endpoint_id
    report.ok = (
        all(p.stripe.get("usable") for p in report.plans)
        and endpoint.sending
        and webhook.secret_set
    )
    return report


def _plan_verdicts(
    stripe: StripeGateway, plans: list[PricedPlan], clock: Callable[[], datetime]
) -> list[PlanPriceReport]:
    lookups = {(p.project, p.plan): prices.look_up(stripe, p.price_id, clock()) for p in plans}
    currencies: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for (project, plan), lookup in lookups.items():
        if lookup.price is not None:
            currencies[project].append((plan, lookup.price.currency))
    out = []
    for p in plans:
        others = {c for plan, c in currencies[p.project] if plan != p.plan}
        verdict = prices.verdict(lookups[(p.project, p.plan)], others, stripe_mode=stripe.mode)
        out.append(
            PlanPriceReport(project=p.project, plan=p.plan, price=p.price_id, stripe=verdict)
        )
    return out
