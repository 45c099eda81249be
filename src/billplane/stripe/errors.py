"""What can go wrong talking to Stripe, as domain errors (rendered like every other)."""

from billplane.errors import BillplaneError, InvalidInput, StripeUnavailable


class StripeNotConfigured(StripeUnavailable):
    code = "stripe_not_configured"


# Why Stripe could not serve a call, as types (the envelope's code stays `stripe_unavailable`):
# status pages tell a wrong key, which the operator must fix, from an outage, which passes.


class StripeKeyRefused(StripeUnavailable):
    """Stripe does not accept billplane's secret key (a wrong, revoked or expired one)."""


class StripeKeyForbidden(StripeUnavailable):
    """Stripe accepts the key but it may not do this (a restricted key without the right)."""


class StripeUnreachable(StripeUnavailable):
    """No answer from Stripe: no connection, a timeout, a proxy or firewall in the way."""


class StripeRateLimited(StripeUnavailable):
    """Stripe is rate-limiting billplane: a passing condition, not a wrong setting."""


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
