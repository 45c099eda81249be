"""Checkout, its confirmation and the customer portal: the rules, in steps the edge sequences.

Database steps and Stripe steps are separate functions so that no transaction stays open while
Stripe is asked something (a slow Stripe must never hold billplane's locks).
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from billplane.billing import repository
from billplane.billing import service as billing
from billplane.billing.errors import (
    CheckoutNotComplete,
    CheckoutSessionNotFound,
    NoStripeCustomer,
    PlanNotPurchasable,
    SubscriptionExists,
    TenantArchived,
)
from billplane.billing.origins import allowed_url, with_session_id
from billplane.credits import service as credits
from billplane.models import Project, Tenant
from billplane.plans import service as plans
from billplane.stripe.facts import (
    PROJECT_KEY,
    TENANT_KEY,
    TOPUP_PRICE_KEY,
    CheckoutSessionFacts,
    claimed_tenant,
)
from billplane.stripe.gateway import StripeGateway

PORTAL = "/v1/portal"


@dataclass(frozen=True)
class CheckoutOrder:
    """Everything a checkout needs from billplane's records, read in one transaction."""

    project_key: str
    tenant_id: int
    tenant_key: str
    tenant_name: str | None
    tenant_email: str | None
    tenant_version: datetime
    customer_id: str | None
    plan_key: str
    price_id: str
    trial_days: int
    success_url: str
    cancel_url: str
    topup_credits: int = 0  # a top-up's (payment mode): the credits `price_id` buys

    @property
    def metadata(self) -> dict[str, str]:
        return {PROJECT_KEY: self.project_key, TENANT_KEY: self.tenant_key}


def prepare_checkout(
    session: Session,
    project: Project,
    tenant: Tenant,
    *,
    plan_key: str,
    success_url: str,
    cancel_url: str,
) -> CheckoutOrder:
    success, cancel = _return_urls(project, success_url, cancel_url)
    if tenant.status != "active":
        # Checks refuse it: a subscription bought now would pay for nothing it could use.
        raise TenantArchived(
            f"Tenant '{tenant.key}' is archived: restore it before it can buy a plan."
        )
    plan = plans.get_plan(session, project, plan_key)
    if plan.status != "active":
        raise PlanNotPurchasable(f"Plan '{plan.key}' is archived: it cannot be bought.")
    if plan.stripe_price_id is None:
        raise PlanNotPurchasable(f"Plan '{plan.key}' is free (it has no Stripe price).")
    verdict = plan.stripe_price or {}
    if verdict.get("checked") and not verdict.get("usable"):
        raise PlanNotPurchasable(f"Plan '{plan.key}' cannot be bought: {verdict.get('reason')}")
    live = repository.live_subscriptions(session, tenant.id)
    if live:
        # Plan changes go through the portal and arrive as `customer.subscription.updated`.
        raise SubscriptionExists(
            f"Tenant '{tenant.key}' already has a {live[0].status} subscription; change or "
            f"cancel it in the customer portal (POST {PORTAL}).",
            extra={"portal": PORTAL},
        )
    return _order(
        project,
        tenant,
        (success, cancel),
        plan_key=plan.key,
        price_id=plan.stripe_price_id,
        trial_days=plan.trial_days,
    )


def prepare_topup(
    session: Session,
    project: Project,
    tenant: Tenant,
    *,
    price: str,
    success_url: str,
    cancel_url: str,
) -> CheckoutOrder:
    """A top-up: a one-time price a credit pool sells, bought in a payment-mode checkout."""
    success, cancel = _return_urls(project, success_url, cancel_url)
    if tenant.status != "active":
        raise TenantArchived(f"Tenant '{tenant.key}' is archived: restore it before it buys.")
    pool, credits_bought = credits.topup_pack(session, project, price)
    return _order(
        project,
        tenant,
        (success, cancel),
        plan_key=pool.key,
        price_id=price,
        trial_days=0,
        topup_credits=credits_bought,
    )


def _return_urls(project: Project, success_url: str, cancel_url: str) -> tuple[str, str]:
    """Where Stripe sends the buyer back, both on the project's origins."""
    success = allowed_url(success_url, project.origins, param="success_url")
    return success, allowed_url(cancel_url, project.origins, param="cancel_url")


def _order(
    project: Project,
    tenant: Tenant,
    urls: tuple[str, str],
    *,
    plan_key: str,
    price_id: str,
    trial_days: int,
    topup_credits: int = 0,
) -> CheckoutOrder:
    """What a checkout for the tenant needs once it was judged buyable (see `CheckoutOrder`)."""
    success, cancel = urls
    return CheckoutOrder(
        project_key=project.key,
        tenant_id=tenant.id,
        tenant_key=tenant.key,
        tenant_name=tenant.name,
        tenant_email=tenant.email,
        tenant_version=tenant.updated_at,
        customer_id=tenant.stripe_customer_id,
        plan_key=plan_key,
        price_id=price_id,
        trial_days=trial_days,
        success_url=with_session_id(success),
        cancel_url=cancel,
        topup_credits=topup_credits,
    )


def open_topup(
    stripe: StripeGateway, order: CheckoutOrder, customer_id: str
) -> CheckoutSessionFacts:
    return stripe.open_payment_checkout(
        customer=customer_id,
        price=order.price_id,
        success_url=order.success_url,
        cancel_url=order.cancel_url,
        client_reference_id=billing.checkout_reference(order.project_key, order.tenant_key),
        metadata={**order.metadata, TOPUP_PRICE_KEY: order.price_id},
    )


def create_customer(stripe: StripeGateway, order: CheckoutOrder) -> str:
    """A Stripe customer for the tenant, carrying the metadata that links it back."""
    # Two checkouts racing for a tenant without a customer get the same one from Stripe: the
    # key changes only when the tenant does (e.g. once its deleted customer is unlinked).
    version = int(order.tenant_version.timestamp() * 1_000_000)
    key = f"billplane-customer-{order.project_key}-{order.tenant_id}-{version}"
    created = stripe.create_customer(
        metadata=order.metadata,
        email=order.tenant_email,
        name=order.tenant_name,
        idempotency_key=key,
    )
    return created.id


def remember_customer(
    session: Session, order: CheckoutOrder, customer_id: str, ctx: billing.Context
) -> str:
    """Store the new customer on the tenant, unless one was stored meanwhile (then that one)."""
    tenant = repository.lock_tenant(session, order.tenant_id)
    if tenant.stripe_customer_id is not None:
        return tenant.stripe_customer_id
    billing.link_customer(session, tenant, customer_id, ctx)
    return customer_id


def open_checkout(
    stripe: StripeGateway, order: CheckoutOrder, customer_id: str
) -> CheckoutSessionFacts:
    return stripe.open_checkout(
        customer=customer_id,
        price=order.price_id,
        success_url=order.success_url,
        cancel_url=order.cancel_url,
        client_reference_id=billing.checkout_reference(order.project_key, order.tenant_key),
        metadata=order.metadata,
        trial_days=order.trial_days,
    )


def find_session(
    stripe: StripeGateway, project: Project, session_id: str
) -> tuple[CheckoutSessionFacts, str]:
    """The session as Stripe has it (never as the caller says), and the key of the tenant it
    was opened for; only a session billplane opened for this project is found at all."""
    found = stripe.find_checkout_session(session_id)
    claimed = claimed_tenant(found.metadata) if found is not None else None
    if found is None or claimed is None or claimed[0] != project.key:
        raise CheckoutSessionNotFound(f"No checkout session '{session_id}' for this project.")
    return found, claimed[1]


def ensure_complete(found: CheckoutSessionFacts) -> None:
    if found.status != "complete":
        raise CheckoutNotComplete(
            f"Checkout session '{found.id}' is {found.status}, not complete: the customer "
            "has not paid (yet)."
        )


def portal_customer(project: Project, tenant: Tenant, return_url: str) -> tuple[str, str]:
    """(customer, return URL) for a portal session."""
    url = allowed_url(return_url, project.origins, param="return_url")
    if tenant.stripe_customer_id is None:
        raise NoStripeCustomer(
            f"Tenant '{tenant.key}' has no Stripe customer yet: it gets one at its first "
            "checkout (POST /v1/checkout)."
        )
    return tenant.stripe_customer_id, url
