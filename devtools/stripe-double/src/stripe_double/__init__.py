"""A stateful fake of Stripe's API for billplane's tests, reached through the official SDK.

with running_double(webhook_url=app_url + "/webhooks/stripe", webhook_secret=secret) as d:
    client = stripe.StripeClient("sk_test_x", base_addresses={"api": d.base_url})
    session = client.v1.checkout.sessions.create(params={...})
    d.complete_checkout(session.id)           # also renew, fail_payment, recover, cancel
    d.hold_deliveries(); ...; d.deliver(order="shuffled", duplicate=True, seed=1)
"""

from stripe_double.errors import StripeError
from stripe_double.events import Delivery, WebhookTarget, signature_header
from stripe_double.server import (
    DEFAULT_WEBHOOK_SECRET,
    BackgroundServer,
    StripeDouble,
    running_double,
)

__all__ = [
    "DEFAULT_WEBHOOK_SECRET",
    "BackgroundServer",
    "Delivery",
    "StripeDouble",
    "StripeError",
    "WebhookTarget",
    "running_double",
    "signature_header",
]
