"""HTTP for checkout, its confirmation, the customer portal and a tenant's billing history."""

from typing import Any

from fastapi import APIRouter

from billplane.billing import checkout, repository
from billplane.billing import service as billing
from billplane.billing.schemas import (
    BillingHistoryOut,
    CheckoutIn,
    CheckoutOut,
    InvoiceOut,
    PortalIn,
    PortalOut,
)
from billplane.credits import topups
from billplane.credits.schemas import TopupIn, TopupOut
from billplane.entitlements import service as entitlements
from billplane.entitlements.schemas import EntitlementsOut
from billplane.http import Admin, AppClock, ClientToken, CurrentSettings, Stripe, Tx, errors
from billplane.models import Invoice
from billplane.projects.service import get_project
from billplane.schemas import Key, PageLimit, TenantKey
from billplane.tenants.service import get_tenant, tenant_for
from billplane.tokens.service import authenticate
from billplane.webhooks.handlers import gather_checkout

router = APIRouter(prefix="/v1", tags=["client"])
admin = APIRouter(prefix="/admin/api/projects/{project}/tenants/{tenant}", tags=["admin"])

CHECKOUT_ACTOR = "checkout"
CONFIRM_ACTOR = "checkout-confirm"

StripeSessionId = Key


@router.post(
    "/checkout",
    response_model=CheckoutOut,
    responses=errors(
        403,
        (404, "No such tenant or plan in the project (`tenant_not_found`, `plan_not_found`)."),
        (
            409,
            "The plan cannot be bought, the tenant is archived or already subscribes, or Stripe "
            "refused (`plan_not_purchasable`, `tenant_archived`, `subscription_exists`, "
            "`stripe_rejected`).",
        ),
        503,
    ),
    summary="Open a Stripe Checkout session",
)
def create_checkout(
    body: CheckoutIn,
    token: ClientToken,
    tx: Tx,
    stripe: Stripe,
    clock: AppClock,
    settings: CurrentSettings,
) -> Any:
    """A subscription checkout for the plan's price, tied to the tenant. Its `success_url`
    gets `session_id={CHECKOUT_SESSION_ID}` so the app can confirm on return."""
    with tx.read() as session:
        caller = authenticate(session, token)
        tenant = tenant_for(session, caller, body.tenant)
        order = checkout.prepare_checkout(
            session,
            caller.project,
            tenant,
            plan_key=body.plan,
            success_url=body.success_url,
            cancel_url=body.cancel_url,
        )
    customer = _customer_of(order, stripe, tx, clock, settings)
    opened = checkout.open_checkout(stripe, order, customer)
    return {"id": opened.id, "url": opened.url}


@router.post(
    "/topups",
    response_model=TopupOut,
    responses=errors(
        403,
        (
            404,
            "No such tenant, or no credit pool sells the price (`tenant_not_found`, "
            "`pool_not_found`).",
        ),
        (409, "The tenant is archived, or Stripe refused (`tenant_archived`, `stripe_rejected`)."),
        503,
    ),
    summary="Open a Stripe Checkout session for a top-up of credits",
)
def create_topup(
    body: TopupIn,
    token: ClientToken,
    tx: Tx,
    stripe: Stripe,
    clock: AppClock,
    settings: CurrentSettings,
) -> Any:
    """A payment-mode checkout of a one-time price a credit pool sells (its `packs`). Once
    paid, its credits land exactly once, whether the webhook (`checkout.session.completed`,
    `payment_status: paid`), `POST /v1/checkout/{id}/confirm`, or both arrive, in any order."""
    with tx.read() as session:
        caller = authenticate(session, token)
        tenant = tenant_for(session, caller, body.tenant)
        order = checkout.prepare_topup(
            session,
            caller.project,
            tenant,
            price=body.price,
            success_url=body.success_url,
            cancel_url=body.cancel_url,
        )
    customer = _customer_of(order, stripe, tx, clock, settings)
    opened = checkout.open_topup(stripe, order, customer)
    return {
        "id": opened.id,
        "url": opened.url,
        "pool": order.plan_key,
        "credits": order.topup_credits,
    }


def _customer_of(
    order: checkout.CheckoutOrder,
    stripe: Stripe,
    tx: Tx,
    clock: AppClock,
    settings: CurrentSettings,
) -> str:
    """The tenant's Stripe customer: the one it has, else one made now and stored on it."""
    if order.customer_id is not None:
        return order.customer_id
    created = checkout.create_customer(stripe, order)
    with tx.write() as session:
        now = clock()
        ctx = billing.Context(
            actor=CHECKOUT_ACTOR,
            now=now,
            seen_at=now,
            grace_days=settings.billplane_past_due_grace_days,
        )
        return checkout.remember_customer(session, order, created, ctx)


@router.post(
    "/checkout/{session_id}/confirm",
    response_model=EntitlementsOut,
    responses=errors(
        403,
        (
            404,
            "No such Checkout session for this project, or its tenant is gone "
            "(`checkout_session_not_found`, `tenant_not_found`).",
        ),
        (
            409,
            "The session is not complete, or it cannot be tied to its tenant "
            "(`checkout_not_complete`, `unverified_link`).",
        ),
        503,
    ),
    summary="Apply a completed checkout now, without waiting for the webhook",
)
def confirm_checkout(
    session_id: StripeSessionId,
    token: ClientToken,
    tx: Tx,
    stripe: Stripe,
    clock: AppClock,
    settings: CurrentSettings,
) -> Any:
    """Reads the session from Stripe and applies it exactly as the webhook does (either may
    come first; the result is the same). Returns the tenant's entitlements."""
    with tx.read() as session:
        caller = authenticate(session, token)
    found, tenant_key = checkout.find_session(stripe, caller.project, session_id)
    with tx.read() as session:
        tenant_for(session, caller, tenant_key)
    checkout.ensure_complete(found)
    gathered = gather_checkout(found, stripe, clock)
    with tx.write() as session:
        ctx = billing.Context(
            actor=CONFIRM_ACTOR,
            now=clock(),
            seen_at=gathered.seen_at,
            grace_days=settings.billplane_past_due_grace_days,
        )
        billing.apply_checkout(session, found, gathered.subscription, ctx)
    with tx.read() as session:
        tenant = tenant_for(session, caller, tenant_key)
        return entitlements.entitlements_of(
            session, caller.project, tenant, clock(), settings.billplane_past_due_grace_days
        )


@router.post(
    "/portal",
    response_model=PortalOut,
    responses=errors(
        403,
        (404, "No tenant with this key in the token's project (`tenant_not_found`)."),
        (
            409,
            "The tenant has no Stripe customer yet, or Stripe refused "
            "(`no_stripe_customer`, `stripe_rejected`).",
        ),
        503,
    ),
    summary="Open a Stripe customer portal session",
)
def open_portal(body: PortalIn, token: ClientToken, tx: Tx, stripe: Stripe) -> Any:
    """Where the tenant changes plan, card or cancels; 409 until it has a Stripe customer."""
    with tx.read() as session:
        caller = authenticate(session, token)
        tenant = tenant_for(session, caller, body.tenant)
        customer, return_url = checkout.portal_customer(caller.project, tenant, body.return_url)
    portal_id, url = stripe.open_portal(customer=customer, return_url=return_url)
    return {"id": portal_id, "url": url}


def invoice_out(row: Invoice) -> InvoiceOut:
    return InvoiceOut(
        id=row.stripe_invoice_id,
        number=row.number,
        status=row.status,
        currency=row.currency,
        amount_due=row.amount_due,
        amount_paid=row.amount_paid,
        amount_remaining=row.amount_remaining,
        billing_reason=row.billing_reason,
        attempt_count=row.attempt_count,
        period_start=row.period_start,
        period_end=row.period_end,
        subscription=row.stripe_subscription_id,
        hosted_invoice_url=row.hosted_invoice_url,
        created=row.stripe_created_at,
    )


@admin.get("/invoices", response_model=BillingHistoryOut, summary="A tenant's billing history")
def list_invoices(project: Key, tenant: TenantKey, _: Admin, tx: Tx, limit: PageLimit = 100) -> Any:
    """Invoices newest first, as billplane last read each from Stripe (`data`), and the
    tenant's paid top-ups of credits, newest first, with how much of each was refunded
    (`topups`)."""
    with tx.read() as session:
        found = get_tenant(session, get_project(session, project), tenant)
        rows = repository.invoices_of(session, found.id, limit=limit + 1)
        return {
            "data": [invoice_out(r) for r in rows[:limit]],
            "has_more": len(rows) > limit,
            "topups": topups.history(session, found.id, limit),
        }
