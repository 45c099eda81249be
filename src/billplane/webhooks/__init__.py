"""Stripe webhooks: verified, recorded once, applied in one transaction, replayable."""
