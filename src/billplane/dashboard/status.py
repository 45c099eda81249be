"""What the dashboard can tell of Stripe and of the webhook: computed from settings and records.

No label is hard-coded. What needs Stripe's own word (is the key valid, does a price exist, is an
endpoint registered) goes through the three probes at the bottom of this module, the only seam to
the Stripe module; until that module can answer, they say "unknown" rather than guess.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from billplane.models import StripeEvent
from billplane.settings import Settings

WEBHOOK_PATH = "/webhooks/stripe"

# DESIGN §3: the event types billplane acts on; every other type is stored as `ignored`.
HANDLED_EVENTS = (
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.created",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_failed",
    "customer.deleted",
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


@dataclass(frozen=True)
class PriceStatus:
    """What Stripe says of one price; `found` is None while billplane cannot ask Stripe."""

    found: bool | None
    active: bool = False
    amount: int | None = None  # minor units
    currency: str | None = None
    interval: str | None = None

    @property
    def usable(self) -> bool:
        return self.found is True and self.active

    @property
    def label(self) -> str:
        if self.found is None:
            return "unknown"
        if not self.found:
            return "not found in Stripe"
        if not self.active:
            return "inactive in Stripe"
        if self.amount is None or self.currency is None:
            return "active"
        price = f"{self.amount / 100:,.2f} {self.currency.upper()}"
        return f"active — {price}" + (f" / {self.interval}" if self.interval else "")


@dataclass(frozen=True)
class EndpointStatus:
    """Whether Stripe has a webhook endpoint for this server; None while it cannot be asked."""

    registered: bool | None
    missing_events: tuple[str, ...] = ()


def webhook_url(settings: Settings) -> str:
    return settings.billplane_public_url + WEBHOOK_PATH


def key_mode(secret_key: str) -> str:
    """Stripe keys say their mode in their prefix (sk_test_…, rk_live_…)."""
    return "live mode" if "_live_" in secret_key[:8] else "test mode"


def stripe_status(settings: Settings) -> Status:
    if not settings.stripe_secret_key:
        return Status("not configured", "idle", "Set STRIPE_SECRET_KEY to connect Stripe.")
    return probe_stripe_key(settings)


def webhook_status(settings: Settings, last: StripeEvent | None, now: datetime) -> Status:
    """From the newest recorded delivery: the webhook works when events arrive and apply."""
    if not settings.stripe_webhook_secret:
        return Status("secret missing", "bad", "Set STRIPE_WEBHOOK_SECRET (whsec_…) from Stripe.")
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


# --- The seam to the Stripe module ----------------------------------------------------------------
# Only the Stripe module may import the SDK. Until it offers a key check, a price lookup and a
# webhook endpoint listing, these answer "unknown": the dashboard never claims what it cannot see.


def probe_stripe_key(settings: Settings) -> Status:
    """Connected (and in which mode), or the error Stripe gave, for a configured key."""
    assert settings.stripe_secret_key
    mode = key_mode(settings.stripe_secret_key)
    return Status("unknown", "idle", f"A {mode} key is set; billplane cannot verify it yet.")


def price_status(settings: Settings, stripe_price_id: str) -> PriceStatus:
    return PriceStatus(found=None)


def endpoint_status(settings: Settings) -> EndpointStatus:
    return EndpointStatus(registered=None)
