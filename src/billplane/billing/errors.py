"""The billing domain's refusals."""

from billplane.errors import Conflict, InvalidInput, NotFound


class UnverifiedLink(Conflict):
    """A Stripe object names a tenant billplane cannot confirm it created it for: parked (the
    event is kept as `failed`, to retry or replay once the records agree), never guessed."""

    code = "unverified_link"


class SubscriptionExists(Conflict):
    code = "subscription_exists"


class NoStripeCustomer(Conflict):
    code = "no_stripe_customer"


class PlanNotPurchasable(Conflict):
    code = "plan_not_purchasable"


class TenantArchived(Conflict):
    code = "tenant_archived"


class CheckoutNotComplete(Conflict):
    code = "checkout_not_complete"


class CheckoutSessionNotFound(NotFound):
    code = "checkout_session_not_found"


class UrlNotAllowed(InvalidInput):
    code = "url_not_allowed"
