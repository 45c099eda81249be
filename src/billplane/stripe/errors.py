"""What can go wrong talking to Stripe, as domain errors (rendered like every other)."""

from billplane.errors import BillplaneError, InvalidInput, StripeUnavailable


class StripeNotConfigured(StripeUnavailable):
    code = "stripe_not_configured"


class StripeRejected(BillplaneError):
    """Stripe understood the request and refused it (an archived price, a deleted customer):
    billplane's records and Stripe disagree, which is a conflict rather than bad input."""

    status = 409
    code = "stripe_rejected"


class InvalidSignature(InvalidInput):
    code = "invalid_signature"


class WebhookNotConfigured(StripeUnavailable):
    code = "webhook_not_configured"


class LivemodeMismatch(InvalidInput):
    code = "livemode_mismatch"


class WebhookFailed(BillplaneError):
    """Processing an event failed: 500 on purpose, so that Stripe delivers it again."""

    status = 500
    code = "webhook_failed"
