"""Billing history: each Stripe invoice of a tenant, as billplane last read it from Stripe."""

from typing import Any

from sqlalchemy.orm import Session

from billplane.appwebhooks import outbox
from billplane.billing import repository
from billplane.billing.service import Change, Context, audited, jsonable, stored_is_newer
from billplane.models import Invoice
from billplane.stripe.facts import InvoiceFacts


def record_invoice(session: Session, found: InvoiceFacts, ctx: Context) -> list[Change]:
    """Keep the invoice on its tenant's billing history, as Stripe says it is now."""
    known = repository.invoice(session, found.id)
    owner = known.tenant_id if known is not None else _invoice_tenant(session, found)
    if owner is None:
        return []
    tenant = repository.lock_tenant(session, owner)
    row = repository.invoice(session, found.id, fresh=True)
    if row is None:
        before = None
        row = Invoice(
            project_id=tenant.project_id,
            tenant_id=tenant.id,
            stripe_invoice_id=found.id,
            created_at=ctx.now,
        )
    elif stored_is_newer(row.stripe_updated_at, ctx):
        return []
    else:
        before = invoice_state(row)
    for name in (
        "number",
        "status",
        "currency",
        "amount_due",
        "amount_paid",
        "amount_remaining",
        "billing_reason",
        "attempt_count",
        "period_start",
        "period_end",
        "hosted_invoice_url",
    ):
        setattr(row, name, getattr(found, name))
    row.stripe_subscription_id = found.subscription
    row.stripe_customer_id = found.customer
    row.stripe_created_at = found.created
    row.stripe_updated_at = ctx.seen_at
    after = invoice_state(row)
    if before == after:
        return []
    row.updated_at = ctx.now
    if before is None:
        repository.add(session, row)
    action = "invoice.record" if before is None else "invoice.update"
    return [audited(session, tenant, action, ("invoice", found.id), before, after, ctx)]


def tell_payment_failed(session: Session, found: InvoiceFacts, ctx: Context) -> None:
    """`invoice.payment_failed` for the tenant's app, once per failed attempt to pay, unless
    the invoice is settled by now (the news came late, or again)."""
    row = repository.invoice(session, found.id)
    if row is None or found.status != "open" or found.amount_remaining <= 0:
        return
    tenant = repository.lock_tenant(session, row.tenant_id)
    project = repository.project(session, tenant.project_id)
    outbox.emit_in(
        session,
        project=(project.id, project.key),
        tenant=(tenant.id, tenant.key),
        event_type=outbox.PAYMENT_FAILED,
        data={
            "invoice": {
                "id": found.id,
                "number": found.number,
                "subscription": found.subscription,
                "status": found.status,
                "currency": found.currency,
                "amount_due": found.amount_due,
                "amount_remaining": found.amount_remaining,
                "attempt_count": found.attempt_count,
                "hosted_invoice_url": found.hosted_invoice_url,
            }
        },
        now=ctx.now,
        dedupe_key=f"{outbox.PAYMENT_FAILED}:{found.id}:{found.attempt_count}",
    )


def _invoice_tenant(session: Session, found: InvoiceFacts) -> int | None:
    if found.subscription and (sub := repository.subscription(session, found.subscription)):
        return sub.tenant_id
    if found.customer and (tenant := repository.tenant_by_customer(session, found.customer)):
        return tenant.id
    return None


def invoice_state(row: Invoice) -> dict[str, Any]:
    return jsonable(
        {
            "number": row.number,
            "status": row.status,
            "currency": row.currency,
            "amount_due": row.amount_due,
            "amount_paid": row.amount_paid,
            "amount_remaining": row.amount_remaining,
            "attempt_count": row.attempt_count,
            "period_start": row.period_start,
            "period_end": row.period_end,
        }
    )
