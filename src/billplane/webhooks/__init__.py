"""Stripe events into billing state: webhooks verified, recorded once, applied in one
transaction and replayable (`pipeline`), and the same effects pulled from Stripe when webhooks
were missed (`sync`)."""

# Where Stripe delivers events: the route (`billplane.api.webhooks`) and every report of the
# webhook URL (`billplane.status.probes.webhook_url`) use this one path.
WEBHOOK_PATH = "/webhooks/stripe"
